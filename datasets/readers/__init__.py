"""Readers for the raw skeleton formats (NTU RGB+D, PKU-MMD) and the preprocessed arrays."""
from .arrays import ArrayDataset, read_frame50_arrays, read_hitrs_arrays, read_stgcn_arrays  # noqa: F401
from .ntu import NTUSkeleton, parse_ntu_skeleton, read_ntu_skeleton  # noqa: F401
from .pku import parse_pku_name, read_pku_labels, read_pku_skeleton, read_pku_split  # noqa: F401
