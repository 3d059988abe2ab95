"""A command forked by tests/prestarted.py ends as the same command in a fresh interpreter does, in all the tests
read of it: exit status, output, arguments, environment, session, exit handlers, threads and seeds."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests import prestarted

BEHAVIOURS = ["report", "exit_message", "exit_status", "raise", "signal", "thread_and_atexit"]


def behave(name: str, folder: Path) -> None:
    """What the child does (``python -m tests.test_prestarted <name> <folder>``)."""
    if name == "report":
        print(json.dumps({
            "argv": sys.argv[1:], "cwd": os.getcwd(), "path0": sys.path[0], "main": __name__,
            "variable": os.environ.get("PRESTARTED_VARIABLE"), "own_session": os.getsid(0) == os.getpid(),
        }))  # fmt: skip
        print("to stderr", file=sys.stderr)
    elif name == "exit_message":
        sys.exit("a message for the user")
    elif name == "exit_status":
        sys.exit(143)
    elif name == "raise":
        raise ValueError("what went wrong")
    elif name == "signal":
        os.kill(os.getpid(), signal.SIGTERM)
    elif name == "thread_and_atexit":
        import atexit
        import time

        atexit.register(lambda: print("exit handler ran", flush=True))
        threading.Thread(target=lambda: (time.sleep(0.3), (folder / "thread").write_text("done"))).start()
    print(f"seed {random.random()}", file=sys.stderr)


def command(name: str, folder: Path) -> list[str]:
    return [sys.executable, "-m", "tests.test_prestarted", name, str(folder)]


@pytest.mark.parametrize("name", BEHAVIOURS)
def test_a_forked_command_ends_as_a_fresh_one(name, tmp_path, monkeypatch):
    monkeypatch.setenv("PRESTARTED_VARIABLE", "set by the test")
    ended = {}
    for way in ("fresh", "forked"):
        folder = tmp_path / way
        folder.mkdir()
        monkeypatch.setattr(prestarted, "FRESH", way == "fresh")
        done = prestarted.run(command(name, folder), timeout=60)
        # the last line of stderr that is neither the seed nor a traceback's frame: a message, the exception
        last = [line for line in done.stderr.splitlines() if not line.startswith(("seed ", "  "))][-1:]
        ended[way] = (done.returncode, done.stdout.replace(str(folder), "<folder>"), last)
    assert ended["forked"] == ended["fresh"]
    status, stdout, _ = ended["forked"]
    if name == "thread_and_atexit":  # the non-daemon thread was waited for, the exit handler ran
        assert stdout == "exit handler ran\n" and (tmp_path / "forked" / "thread").read_text() == "done"
    if name == "report":
        assert json.loads(stdout)["own_session"] and json.loads(stdout)["variable"] == "set by the test"
    if name == "signal":
        assert status == -signal.SIGTERM


def test_two_forked_commands_draw_their_own_seeds(tmp_path):
    seeds = {prestarted.run(command("report", tmp_path), timeout=60).stderr.splitlines()[-1] for _ in range(2)}
    assert len(seeds) == 2


def test_a_command_the_server_cannot_run_starts_fresh(monkeypatch):
    monkeypatch.setattr(prestarted, "FRESH", False)  # the rules themselves, also under VAE_TESTS_FRESH_PYTHON=1
    assert prestarted.forkable(command("report", Path(".")))
    # a benchmark is forked (the processes it times it starts itself, fresh); another program's module is not
    assert prestarted.forkable([sys.executable, "-m", "benchmarks.whole_process"])
    assert not prestarted.forkable([sys.executable, "-m", "pytest", "-q"])
    assert not prestarted.forkable([sys.executable, "-c", "print()"])
    fresh = prestarted.popen([sys.executable, "-c", "pass"], stdout=subprocess.DEVNULL)
    assert isinstance(fresh, subprocess.Popen) and fresh.wait() == 0


if __name__ == "__main__":
    behave(sys.argv[1], Path(sys.argv[2]))
