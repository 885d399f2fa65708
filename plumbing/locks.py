"""The one inter-process lock: concurrent runs sharing a folder do shared work once."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path):
    """Exclusive advisory lock on ``path`` (created if needed) for the ``with`` body: serialises
    concurrent runs that share a folder. Without flock (Windows) it runs unlocked."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            import fcntl
        except ImportError:
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
