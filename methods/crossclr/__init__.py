"""CrosSCLR (CVPR 2021) baseline, registered as "crossclr" (see docs/baselines.md)."""
from .config import PROFILES, STREAMS, CrosSCLRConfig, make_config
from .method import CrosSCLR, crossclr_stream
from .mining import cross_view_losses, mined_positives

__all__ = ["PROFILES", "STREAMS", "CrosSCLR", "CrosSCLRConfig", "crossclr_stream", "cross_view_losses",
           "make_config", "mined_positives"]
