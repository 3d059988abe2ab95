"""``python train.py`` (evaluate.py, ``-m`` a module of the project) as a process forked from one that has already
imported what they import.

A tiny run of the suite spends most of its process on the imports (torch, Lightning, torchmetrics, torchvision:
about 8 of the 10 CPU-seconds of a 3-batch run on a 2-core CPU), and the suite starts dozens of them. Here one
server process per test process imports them once (multiprocessing's forkserver) and forks a child for each
command: the child sets the command's working folder, environment, output files, arguments and a session of its
own, runs the script as ``__main__``, and exits as the interpreter would (non-daemon threads joined, atexit
handlers run, output flushed; an uncaught exception printed with exit status 1). To the test it is a process like
another: a pid whose process group can be signalled, an exit status (negative for a signal), its output.

What it does not show is the start of a fresh interpreter, which the runs' own processes never test: DDP's other
ranks, the parallel launcher's workers and the benchmarks' timed processes start as fresh interpreters still,
and tests/test_train.py checks the entry scripts' start-up itself. ``VAE_TESTS_FRESH_PYTHON=1`` starts every
command as a fresh interpreter instead, as users do (the same tests, slower).
"""

import atexit
import multiprocessing
import os
import random
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from multiprocessing import reduction
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SCRIPTS = ("train.py", "evaluate.py")
PACKAGES = ("vae.", "tests.", "benchmarks.")  # ``python -m`` of their modules: the report, a test's own script
# what the scripts import before their main runs, and what a run imports on its way (the data, the pictures)
PRELOAD = ["torch", "lightning.pytorch", "hydra", "omegaconf", "numpy", "vae.training", "vae.evaluation"]
FRESH = os.environ.get("VAE_TESTS_FRESH_PYTHON") == "1"


def forkable(command: list[str]) -> bool:
    """Whether ``command`` is ``python <script> ...`` of an entry script or ``python -m <module> ...`` of the
    project's (and forking is on)."""
    if FRESH or len(command) < 2 or command[0] != sys.executable:
        return False
    return command[1] in SCRIPTS or (command[1] == "-m" and len(command) > 2 and command[2].startswith(PACKAGES))


class _Fd:
    """A file descriptor sent to the forked child (its number means nothing there)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self):
        return _received, (reduction.DupFd(self.fd),)


def _received(duplicate) -> int:
    return duplicate.detach()


def _exit_status(code) -> int:
    """The status ``sys.exit(code)`` gives, as the interpreter computes it (a message: printed, status 1)."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


def _child(command: list[str], env: dict, stdout: int, stderr: int) -> None:
    os.setsid()  # a process group of its own, as start_new_session gives
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(PROJECT)
    module = command[1] == "-m"
    sys.argv = command[2:] if module else command[1:]  # runpy.run_module puts the module's file first
    sys.path[0] = str(PROJECT)  # the script's folder (or the working one, for -m), as python puts it first
    random.seed()  # a fresh interpreter's seeds come from the system; the server's are shared by all children
    import numpy

    numpy.random.seed()
    status = 0
    try:
        if module:
            runpy.run_module(command[2], run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(command[1], run_name="__main__")
    except SystemExit as done:
        status = _exit_status(done.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        status = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
        status = 1
    threading._shutdown()  # what the interpreter does at its exit, in its order
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    if status < 0:  # ended by the signal, as the interpreter does on an uncaught KeyboardInterrupt
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    os._exit(status)


_context = None


def _server():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


class Forked:
    """The part of ``subprocess.Popen`` the tests use, for a forked child: pid, poll, wait, communicate."""

    def __init__(self, command: list[str], stdout=None, stderr=None, env: dict | None = None) -> None:
        self.args, self.returncode = command, None
        self._captured = {}  # "stdout"/"stderr" -> the temporary file a PIPE stands for
        self._devnull = []  # open until the child has its copies (sent to it by start)
        out = self._target("stdout", stdout, 1)
        err = out if stderr == subprocess.STDOUT else self._target("stderr", stderr, 2)
        env = dict(os.environ if env is None else env)
        self._process = _server().Process(target=_child, args=(command, env, _Fd(out), _Fd(err)))
        self._process.start()
        for file in self._devnull:
            file.close()
        self.pid = self._process.pid

    def _target(self, name: str, where, default: int) -> int:
        """The descriptor the child writes ``name`` to: the caller's, a file, /dev/null or a capture file."""
        if where is None:
            return default
        if where == subprocess.DEVNULL:
            self._devnull.append(open(os.devnull, "w"))
            where = self._devnull[-1]
        if where == subprocess.PIPE:
            self._captured[name] = tempfile.TemporaryFile("w+")
            return self._captured[name].fileno()
        return where if isinstance(where, int) else where.fileno()

    def poll(self) -> int | None:
        self.returncode = self._process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str | None, str | None]:
        self.wait(timeout)
        return tuple(self._read(name) for name in ("stdout", "stderr"))

    def _read(self, name: str) -> str | None:
        file = self._captured.get(name)
        if file is None:
            return None
        file.seek(0)
        text = file.read()
        file.close()
        return text


def popen(command: list[str], **popen) -> "Forked | subprocess.Popen":
    """``subprocess.Popen(command, cwd=PROJECT, start_new_session=True, text=True, **popen)``, forked when it can
    be (:func:`forkable`)."""
    if forkable(command):
        return Forked(command, popen.get("stdout"), popen.get("stderr"), popen.get("env"))
    return subprocess.Popen(command, cwd=PROJECT, start_new_session=True, text=True, **popen)


def run(command: list[str], timeout: float | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """``subprocess.run(command, cwd=PROJECT, capture_output=True, text=True)``, forked when it can be."""
    process = popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if check:
        done.check_returncode()
    return done
