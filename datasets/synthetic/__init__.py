"""The synthetic skeleton world: the suite's embedded default dataset (offline, CI).

``generate(out_dir, seed=0, size="small")`` writes NTU ``.skeleton`` clips and PKU-MMD-layout
long videos produced by a kinematic Kinect skeleton; ``ACTIONS`` names the classes.
"""
from .actions import ACTION_SPECS, ACTIONS
from .generate import NTU_TEST_PERFORMERS, NTU_TRAIN_PERFORMERS, PARTS, SIZES, SynthSize, generate
from .skeleton import JOINT_NAMES, MEASURED_BONES_CM, bone_lengths

__all__ = ["ACTIONS", "ACTION_SPECS", "JOINT_NAMES", "MEASURED_BONES_CM", "NTU_TEST_PERFORMERS",
           "NTU_TRAIN_PERFORMERS", "PARTS", "SIZES", "SynthSize", "bone_lengths", "generate"]
