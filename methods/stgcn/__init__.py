"""ST-GCN encoder, its NTU graph and the reference-checkpoint loader (see docs/baselines.md)."""
from .graph import NTU_CENTER, NTU_EDGES, adjacency, hop_distance
from .model import STGCN, STGCNArch, STGCNBlock
from .projection import ProjectedSTGCN
from .reference import arch_from_reference, convert_reference_state_dict, load_reference

#: the standard network (64 ... 256, as in yysijie/st-gcn)
STANDARD = STGCNArch(hidden_channels=64, hidden_dim=256)
#: CrosSCLR's quarter-width network (16 ... 64 -> 256)
CROSSCLR = STGCNArch(hidden_channels=16, hidden_dim=256)

__all__ = ["CROSSCLR", "NTU_CENTER", "NTU_EDGES", "ProjectedSTGCN", "STANDARD", "STGCN", "STGCNArch", "STGCNBlock",
           "adjacency", "arch_from_reference", "convert_reference_state_dict", "hop_distance", "load_reference"]
