"""Skeleton data: readers for NTU RGB+D / PKU-MMD, caches, splits, subsets, augmentations,
streams and the synthetic skeleton world (the embedded default)."""
from .streams import STREAMS, bone, motion, to_stream  # noqa: F401
