"""The one inter-process lock: concurrent runs sharing a folder do shared work once."""
from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path


class LockBusyError(RuntimeError):
    """``file_lock(..., blocking=False)`` found the lock held by another process."""


class LockPathError(ValueError):
    """The lock's path is a link, a folder, a FIFO or a device: refused, nothing created."""


@contextmanager
def file_lock(path, blocking: bool = True):
    """Exclusive advisory lock on ``path`` (created if needed) for the ``with`` body: serialises
    concurrent runs that share a folder. ``blocking=False`` raises LockBusyError at once when
    another process holds it. Without flock (Windows) it runs unlocked."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # never through a link (it could create a file anywhere), never a FIFO or a device
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as err:
        raise LockPathError(f"{path}: cannot use as a lock file ({err.strerror or err}); it must be a "
                            "regular file (not a link or a folder): delete it and run again") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LockPathError(f"{path}: not a regular file, cannot use it as a lock file; delete it and run again")
    with os.fdopen(fd, "a+") as fh:
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
