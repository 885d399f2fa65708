"""The one inter-process lock: concurrent runs sharing a folder do shared work once."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


class LockBusyError(RuntimeError):
    """``file_lock(..., blocking=False)`` found the lock held by another process."""


@contextmanager
def file_lock(path, blocking: bool = True):
    """Exclusive advisory lock on ``path`` (created if needed) for the ``with`` body: serialises
    concurrent runs that share a folder. ``blocking=False`` raises LockBusyError at once when
    another process holds it. Without flock (Windows) it runs unlocked."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            import fcntl
        except ImportError:
            yield
            return
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LockBusyError(f"{path}: held by another process") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
