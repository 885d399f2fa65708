"""Generic plumbing every stage shares, each primitive written once.

``files`` (atomic writes, the checkpoint rotation, checksummed save / load), ``locks`` (the
advisory file lock), ``config`` (frozen-dataclass profiles, overrides, hashing) and ``rank``
(this process's place under torch.distributed). It imports nothing of the suite, so datasets,
methods, benchmarks and reports can all depend on it.
"""
