"""Atomic file writes for report outputs (a reader never sees a half-written file): the suite's
one implementation, ``datasets.cache.AtomicFile``, through ``benchmarks.io``."""
from benchmarks.io import atomic_write_bytes, atomic_write_text  # noqa: F401
