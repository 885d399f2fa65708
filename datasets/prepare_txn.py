"""The one transactional write path of every prepare (raw files, pickles, arrays).

A cache is built whole in a temporary sibling of ``--out`` (``.<out>.tmp-*``) and swapped in
(``plumbing.files.swap_folder``), so a good old cache stays usable until the new one is complete
and a killed or failed prepare leaves it as it was; a lock beside ``--out`` refuses a second
prepare into the same folder, and the next prepare removes the temporary folders a SIGKILL left.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from plumbing.files import _umask, atomic_write_text, swap_folder
from plumbing.locks import LockBusyError, file_lock

from .cache import is_up_to_date


class NothingPreparedError(ValueError):
    """Every input file was bad: no cache is written (bad_files.txt says why)."""


def build_in_place_of(out: Path, fingerprint: str, force: bool, log, dataset: str, build) -> tuple:
    """The one transactional path every source format uses: under the ``--out`` lock, ``build(tmp)``
    writes the whole cache into a fresh temporary sibling of ``out`` and returns ``(meta, bad)``;
    the folder is then swapped in whole. Returns ``(None, None)`` when another prepare finished
    the same inputs meanwhile."""
    with _prepare_lock(out, log):
        if not force and is_up_to_date(out, fingerprint):   # another prepare finished it meanwhile
            log(f"{dataset}: cache {out} is up to date (same inputs); nothing to do")
            return None, None
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        os.chmod(tmp, 0o777 & ~_umask())   # mkdtemp makes 0700; the cache keeps the usual mode
        try:
            meta, bad = build(tmp)
            old = swap_folder(tmp, out)   # the old cache stays usable until this moment
            if old is not None and old != tmp:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)   # a failed build, or the old cache after the exchange
    return meta, bad


def nothing_prepared(final: Path, raw, bad: list, total: int, what: str = "input file(s)") -> NothingPreparedError:
    """Write the bad-file list where it harms no good old cache and return the error to raise."""
    listing = final / "bad_files.txt" if not (final / "meta.json").exists() else \
        final.with_name(f"{final.name}.bad_files.txt")   # a good old cache stays as it was
    final.mkdir(parents=True, exist_ok=True)
    atomic_write_text(listing, "".join(f"{name}\t{why}\n" for name, why in bad))
    first = bad[0][1] if bad else "no input files"
    return NothingPreparedError(f"{raw}: none of the {total} {what} could be read, so no cache was written "
                                f"(all listed in {listing}; first: {first})")


@contextlib.contextmanager
def _prepare_lock(out: Path, log):
    """One prepare per ``--out`` at a time (a second is refused at once); under the lock, the
    temporary folders a killed prepare left beside ``out`` are removed."""
    try:
        with file_lock(out.parent / f".{out.name}.prepare.lock", blocking=False):
            for stale in sorted(out.parent.glob(f".{out.name}.tmp-*")) + sorted(out.parent.glob(f".{out.name}.old-*")):
                log(f"note: removing {stale}, left by an interrupted prepare")
                shutil.rmtree(stale, ignore_errors=True)
            yield
    except LockBusyError:
        raise ValueError(f"--out {out}: another prepare is writing this cache now; wait for it to finish, "
                         "or choose another --out") from None

