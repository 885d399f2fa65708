"""MCC, reconstructed from the paper's description (ICCV 2021; no public code), registered as
"mcc" (see docs/baselines.md)."""
from datasets.preprocess import centre

from .config import PROFILES, MCCConfig, make_config
from .method import MCC, multi_positive_logits
from .views import broken_grid, crop_grid, full_grid, jitter_grid, read_frames, speed_grid

__all__ = ["MCC", "MCCConfig", "PROFILES", "broken_grid", "centre", "crop_grid", "full_grid", "jitter_grid",
           "make_config", "multi_positive_logits", "read_frames", "speed_grid"]
