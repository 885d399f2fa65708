"""Skeleton data: readers for NTU RGB+D / PKU-MMD, caches, splits, subsets, augmentations,
streams and the synthetic skeleton world (the embedded default). API: docs/data.md."""
from .streams import STREAMS, bone, motion, to_stream  # noqa: F401
from . import augment, preprocess, subsets  # noqa: F401
from .cache import CorruptCacheError, SkeletonCache, open_cache  # noqa: F401
from .classes import NTU60_CLASSES, NTU120_CLASSES, PKUMMD_CLASSES  # noqa: F401
from .ensure import ensure_synthetic  # noqa: F401
from .errors import SkeletonFormatError  # noqa: F401
from .meta import (find_missing_list, ntu_split_columns, parse_ntu_name,  # noqa: F401
                   read_missing_list)
from .prepare_cache import prepare  # noqa: F401
from .readers.arrays import (ArrayDataset, read_frame50_arrays, read_hitrs_arrays,  # noqa: F401
                             read_stgcn_arrays)
from .readers.ntu import NTUSkeleton, parse_ntu_skeleton, read_ntu_skeleton  # noqa: F401
from .readers.pyskl import PysklSamples, read_pyskl  # noqa: F401
from .readers.pku import parse_pku_name, read_pku_labels, read_pku_skeleton, read_pku_split  # noqa: F401
from .subsets import Subset, load_subset, make_subset  # noqa: F401
