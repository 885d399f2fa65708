"""Atomic files: a crash leaves the old file or the new one, never half of one.

Every file the suite writes (caches, records, checkpoints, proposals, reports) goes through
``AtomicFile`` (temp file in the same folder, fsync, rename); ``replace_path`` is the one other
rename, for rotating a checkpoint to its ``.prev`` name, and ``swap_folder`` puts a complete
folder in place of an old one (a prepared cache). Checkpoints
carry a sha256 side file so a torn or altered one is detected before it is read.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
import re
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Any


# dataset, split and sample names become parts of output file names: plain ASCII only
SAFE_NAME_RE = re.compile(r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")


def check_name(name: str, what: str) -> str:
    """``name`` unchanged when it is a plain file name; ValueError naming ``what`` otherwise."""
    if not isinstance(name, str) or not SAFE_NAME_RE.fullmatch(name):
        raise ValueError(f"{what} {name!r} is not a plain file name (ASCII letters, digits, '_', '-', '.'; "
                         "no '/', '..' or control characters)")
    return name


class UnsafePathError(ValueError):
    """An output path that would leave its base folder (a link out, '..', an absolute part), or
    a file / link where a folder is written."""


def path_under(base, *parts: str) -> Path:
    """``base/part/...``, refusing any result that would leave ``base`` (absolute parts, '..', links):
    the path is resolved at every level, so a link anywhere below ``base`` cannot lead out."""
    base = Path(base)
    path = base.joinpath(*parts)
    root = base.resolve()
    if not path.resolve().is_relative_to(root):
        raise UnsafePathError(f"{path}: refusing to write outside {base}")
    return path


def check_writable_folder(out, flag: str) -> Path:
    """Refuse, before any work, an output that is a file or a place we cannot write (also as
    root: a probe file is created and removed, not just the permission bits read)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag} {out}: is a file, not a folder; choose a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out, prefix=".write-probe-"):
            pass
    except OSError as err:
        raise ValueError(f"{flag} {out}: cannot write there ({err.strerror or err}); "
                         f"choose a writable folder with {flag}") from None
    return out


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root)


def _probe(folder: Path, flag: str, root: Path) -> None:
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as err:
        raise UnsafePathError(f"{flag} {root}: cannot write in {folder} ({err.strerror or err}); fix its "
                         f"permissions or choose another {flag}") from None


def check_output_paths(root, folders=(), files=(), flag: str = "--out", locks=()) -> None:
    """Refuse, before any work, an output tree whose run would fail or write elsewhere: each
    relative folder in ``folders`` (and each folder above it) must be absent or a writable
    directory that stays under ``root`` once every symlink is resolved; each file in ``files``
    must be absent or a regular file that stays under ``root`` (never a folder, a FIFO, or a link
    out). ``root`` itself must already be checked (``check_writable_folder``). ValueError, one
    line naming the path and what to do."""
    root = Path(root)
    real_root = root.resolve()
    probed: set[Path] = set()

    def refuse_outside_link(path: Path, st: os.stat_result) -> None:
        if stat.S_ISLNK(st.st_mode) and not _inside(path, real_root):
            raise UnsafePathError(f"{flag} {root}: {path} is a link to {path.resolve()}, outside {flag}; "
                                  f"remove the link or choose another {flag}")

    def walk(parts: tuple[str, ...]) -> bool:
        """Check each existing folder from ``root`` down; False when one is absent."""
        path = root
        for part in parts:
            path = path / part
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                return False
            except OSError as err:
                raise UnsafePathError(f"{flag} {root}: cannot inspect {path} ({err.strerror or err})") from None
            refuse_outside_link(path, st)
            if not path.is_dir():
                what = "a file" if path.exists() else "a dangling link"
                raise UnsafePathError(f"{flag} {root}: {path} is {what} where the run writes a folder; "
                                 f"move or delete it, or choose another {flag}")
            if path.resolve() not in probed:
                probed.add(path.resolve())
                _probe(path, flag, root)
        return True

    for rel in folders:
        walk(Path(rel).parts)
    for rel in [*files, *locks]:
        rel = Path(rel)
        if not walk(rel.parent.parts):
            continue
        path = root / rel
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode) and str(rel) in map(str, locks):
            raise UnsafePathError(f"{flag} {root}: {path} is a link where the run keeps a lock file; "
                             f"delete the link or choose another {flag}")
        refuse_outside_link(path, st)
        if not path.is_file():
            what = "a folder" if path.is_dir() else "not a regular file"
            raise UnsafePathError(f"{flag} {root}: {path} is {what} where the run writes a file; "
                             f"move or delete it, or choose another {flag}")


# ---- reading files we did not necessarily write: data, never trusted --------------------------
MAX_JSON_DEPTH = 64      # our records, manifests and meta files nest 5 deep at most


class UnreadableFileError(ValueError):
    """A file that is not a regular file, too large, not UTF-8 JSON, or nested too deeply: the
    reason in one line (callers skip and list it, or refuse with it)."""


def open_regular(path, max_bytes: int | None = None):
    """A binary file object for ``path`` if it is a regular file (never blocks on a FIFO, never
    reads a device), else UnreadableFileError; ``max_bytes`` refuses larger files unread."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise UnreadableFileError(f"cannot open ({err.strerror or err})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "a device")
        raise UnreadableFileError(f"{kind}, not a regular file")
    if max_bytes is not None and st.st_size > max_bytes:
        os.close(fd)
        raise UnreadableFileError(f"{st.st_size:,} bytes, larger than the {max_bytes:,} such a file can have")
    return os.fdopen(fd, "rb")


def read_regular(path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (UnreadableFileError otherwise)."""
    with open_regular(path, max_bytes) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:   # grew while we read it
        raise UnreadableFileError(f"larger than the {max_bytes:,} bytes such a file can have")
    return data


def _depth_ok(obj: Any, limit: int) -> bool:
    """Nesting of ``obj`` within ``limit`` levels (iterative: no recursion to exhaust)."""
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return False
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return True


def _finite_or_none(token: str) -> float | None:
    value = float(token)          # '1e999' is inf
    return value if math.isfinite(value) else None


def parse_json(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON from untrusted bytes: NaN / Infinity / 1e999 become null (no non-finite number gets in), nesting
    deeper than ``max_depth`` and bad UTF-8 are refused; UnreadableFileError with the reason."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        obj = json.loads(text, parse_constant=lambda name: None, parse_float=_finite_or_none)
    except RecursionError:
        raise UnreadableFileError(f"JSON nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError as err:
        raise UnreadableFileError(f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    except ValueError as err:   # JSONDecodeError
        raise UnreadableFileError(f"not JSON ({err})") from None
    if not _depth_ok(obj, max_depth):
        raise UnreadableFileError(f"JSON nested deeper than {max_depth} levels")
    return obj


def read_json(path, max_bytes: int = 16 * 2**20, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``parse_json`` of a regular file of at most ``max_bytes``."""
    return parse_json(read_regular(path, max_bytes), max_depth)


def iter_lines(fh, max_line: int = 2**20):
    """Lines of a binary file object, each at most ``max_line`` bytes: a longer line is yielded
    as None (read in pieces and skipped, never held whole)."""
    while True:
        line = fh.readline(max_line + 1)
        if not line:
            return
        if len(line) > max_line and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = fh.readline(max_line + 1)
            yield None
            continue
        yield line


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process umask (read once: os.umask can only be read by setting it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_path(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Rename ``src`` over ``dst`` (file or folder) and make the rename durable."""
    os.replace(src, dst)
    fsync_dir(Path(dst).parent)
    return Path(dst)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two existing paths (Linux renameat2 RENAME_EXCHANGE); False where the
    kernel, the file system or the platform cannot."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def swap_folder(new: str | os.PathLike, dst: str | os.PathLike) -> Path | None:
    """Put the complete folder ``new`` in place of ``dst`` (absent or a folder, same file system).

    Readers of ``dst`` see the old folder or the new one, never a mix: an absent ``dst`` is one
    rename; an existing one is exchanged atomically where the kernel can (then the old folder is
    at ``new``), else moved aside and replaced (two renames). Returns where the old folder now is
    (the caller removes it), or None when there was none."""
    new, dst = Path(new), Path(dst)
    if not os.path.lexists(dst):
        replace_path(new, dst)
        return None
    if _exchange(new, dst):
        fsync_dir(dst.parent)
        return new
    aside = dst.with_name(f".{dst.name}.old-{os.getpid()}")
    replace_path(dst, aside)
    replace_path(new, dst)
    return aside


class AtomicFile:
    """``with AtomicFile(path, "w") as fh:`` write to a temp file; on success fsync + rename."""

    def __init__(self, path: str | os.PathLike, mode: str = "wb", encoding: str | None = None):
        self.path = Path(path)
        self.mode = mode
        self.encoding = encoding if "b" not in mode else None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self.tmp = Path(tmp)
        self.fh = os.fdopen(fd, self.mode, encoding=self.encoding)
        return self.fh

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.fh.flush()
                os.fsync(self.fh.fileno())
            self.fh.close()
            if exc_type is None:
                os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes 0600; use the usual mode
                replace_path(self.tmp, self.path)
        finally:
            if self.tmp.exists():
                self.tmp.unlink()
        return False


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with AtomicFile(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class CorruptFileError(RuntimeError):
    """A checkpoint or cache file does not match its recorded checksum, or holds more than
    tensors and plain containers (a planted pickle); it is refused, never executed."""


def save_checked(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically, with a sha256 side file so truncation is detected on load."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    path = atomic_write_bytes(path, data)
    atomic_write_text(str(path) + ".sha256", sha256_bytes(data) + "\n")
    return path


def load_checked(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load what ``save_checked`` wrote; raise CorruptFileError when the checksum disagrees.

    ``weights_only=True``: a checksum only proves the file is whole, not who wrote it (a shared
    results folder, a downloaded artifact). torch's restricted unpickler admits tensors and plain
    containers, so a pickle naming any callable is refused before anything runs."""
    import torch

    path = Path(path)
    side = Path(str(path) + ".sha256")
    data = path.read_bytes()
    if not side.exists():
        raise CorruptFileError(f"{path}: no checksum file {side.name}; the write did not finish")
    if sha256_bytes(data) != side.read_text().strip():
        raise CorruptFileError(f"{path}: checksum mismatch (truncated or corrupted file)")
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol warns before it is refused
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, ...
        named = re.search(r"GLOBAL (\S+)", str(err))
        unsupported = re.search(r"Unsupported [^.\n]*", str(err))
        why = (f"it names {named.group(1)}, which is not plain data" if named else
               unsupported.group(0) if unsupported else f"{type(err).__name__}: not a torch checkpoint")
        raise CorruptFileError(f"{path}: refused, not a plain tensor checkpoint ({why}); "
                               "delete it or run with --fresh") from None


def rotate_checked(path: str | os.PathLike, previous: str | os.PathLike) -> None:
    """Move a checksummed file and its side file to ``previous`` (keeps the last good one)."""
    path, previous = Path(path), Path(previous)
    if path.exists():
        replace_path(path, previous)
        side = Path(f"{path}.sha256")
        if side.exists():
            replace_path(side, Path(f"{previous}.sha256"))
