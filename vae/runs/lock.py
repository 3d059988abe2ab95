"""One process per run folder (and per sweep folder): a lock held while the run runs, naming its holder.

The lock is ``fcntl.flock`` on a file in the folder, so the kernel releases it when the holding process
dies, however it dies: a lock whose holder is gone is free again, and a file left behind by a killed holder
is recognised as stale and taken over. The file holds who holds it (host, process id and its start, the
SLURM job when there is one, the command), so a refusal can say whom to wait for or stop, and it is
emptied on a clean release.

Across hosts (a cluster's shared file system) a flock is only as good as the file system's locking, so a
file left by another host is never taken over on a guess: the process refuses and says how to tell, unless
it is the same SLURM job (a requeued job runs again under its id). Where the file system has no flock at
all, the recorded holder alone decides, by the same rules.

filelock guards the short read-modify-writes of shared files (``launches.json``, MLflow's store); it is not
used here because a check of whether a folder is live must not write to the folder (a sweep continued
into its folder leaves every file of a finished run as it was, modification times included).
"""

import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
RUN_LOCK = ".run.lock"  # in a run folder
SWEEP_LOCK = ".sweep.lock"  # in a sweep folder, held by the sweep's own process
LOCKS = (RUN_LOCK, SWEEP_LOCK)
_NO_FLOCK = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP)  # file systems that cannot flock


class FolderIsLive(RuntimeError):
    """Another process runs in the folder (or may: a holder on another host); nothing was changed."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a folder's lock."""

    host: str
    pid: int
    started: str  # when it took the lock
    process_start: str | None = None  # the process's start in /proc (a reused pid has another)
    slurm_job: str | None = None
    command: str = ""

    @classmethod
    def this_process(cls) -> "Holder":
        job = os.environ.get("SLURM_JOB_ID")
        array = os.environ.get("SLURM_ARRAY_JOB_ID")
        if array and os.environ.get("SLURM_ARRAY_TASK_ID"):
            job = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        command = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])[:300] if sys.argv else ""
        return cls(socket.gethostname(), os.getpid(), time.strftime("%Y-%m-%dT%H:%M:%S"), _start_of(os.getpid()),
                   job, command)  # fmt: skip

    def describe(self) -> str:
        job = f", SLURM job {self.slurm_job}" if self.slurm_job else ""
        return f"process {self.pid} on {self.host}{job}, since {self.started} ({self.command})"

    def is_gone(self) -> bool | None:
        """Whether the process has ended: None when this machine cannot tell (another host)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's process of that pid
            pass
        start = _start_of(self.pid)
        return start is not None and self.process_start is not None and start != self.process_start


def _start_of(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), None off Linux."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _recorded_holder(text: str) -> Holder | None:
    try:
        return Holder(**json.loads(text)) if text.strip() else None
    except (ValueError, TypeError):  # a half-written file: its writer died while writing it
        return None


class FolderLock:
    """The lock of ``folder`` (``name`` in it: RUN_LOCK or SWEEP_LOCK), as a context manager.

    Raises:
        FolderIsLive: on acquiring, when another process holds it, or a process of another host left it.
    """

    def __init__(self, folder: Path, name: str = RUN_LOCK, what: str = "run") -> None:
        self.path, self.what, self.fd = Path(folder) / name, what, None

    def acquire(self) -> "FolderLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            locked = _flock(fd)
            left = _recorded_holder(os.pread(fd, 65536, 0).decode(errors="replace"))
            me = Holder.this_process()
            if locked is False or (left and not _may_take_over(left, me, flocked=locked is True)):
                raise FolderIsLive(self._refusal(left, flocked=locked is True))
            if left:
                log.info(f"{self.path}: taking over the lock left by {left.describe()}, which has ended")
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me.__dict__).encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def release(self) -> None:
        """Empties the file (released cleanly) and lets the lock go."""
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _refusal(self, holder: Holder | None, flocked: bool) -> str:
        who = holder.describe() if holder else "another process (it has not said who it is yet)"
        if flocked:  # we hold the flock: the holder is on another host, and this machine cannot tell
            return (
                f"{self.path.parent} was left locked by {who}, on another host: this machine cannot tell whether "
                f"it still runs there. If it has ended (squeue, or ps on {holder.host}), remove {self.path} and "
                "run this again; nothing was changed"
            )
        return (
            f"{self.path.parent}: this {self.what} is running now, in {who}. Wait for it to finish, or stop it "
            f"(kill {holder.pid if holder else '<pid>'}; it records itself interrupted and can be continued), "
            "then run this again; nothing was changed"
        )


def _flock(fd: int) -> bool | None:
    """Takes the flock without waiting: True, False when another process holds it, None without flock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        if err.errno in _NO_FLOCK:
            return None
        raise
    return True


def _may_take_over(left: Holder, me: Holder, flocked: bool) -> bool:
    """Whether a holder recorded in the file may be replaced by this process."""
    if left.slurm_job and left.slurm_job == me.slurm_job:
        return True  # the same SLURM job, requeued: its earlier run is over
    gone = left.is_gone()
    if gone is None:
        return False  # another host: never on a guess
    return gone or flocked  # this host: the kernel released the flock of a process that is no more


def holder_if_live(folder: Path, name: str = RUN_LOCK) -> tuple[Holder | None, str] | None:
    """Who holds ``folder``'s lock, without taking it and without writing anything: None when nobody does.

    Returns:
        ``(holder, message)``: the holder as recorded (None if it has not written itself yet) and the
        refusal to show.
    """
    path = Path(folder) / name
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        text = os.pread(fd, 65536, 0).decode(errors="replace")
        left = _recorded_holder(text)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: conflicts with a holder's exclusive lock
            flocked = True
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES, *_NO_FLOCK):
                raise
            flocked = None if err.errno in _NO_FLOCK else False
        me = Holder.this_process()
        if flocked is not False and (not left or _may_take_over(left, me, flocked=flocked is True)):
            return None
        return left, FolderLock(folder, name, "sweep" if name == SWEEP_LOCK else "run")._refusal(left, flocked is True)
    finally:
        os.close(fd)
