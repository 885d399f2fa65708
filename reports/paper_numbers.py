"""The paper's reported numbers (Hi-TRS supplementary, ECCV 2022), Tables 1-3, as data.

Transcribed from the supplementary's text (``../shared/seed/000_3f77d6aa45e623b5.txt``,
"Table 1/2/3") and cross-checked against ``../shared/spec/protocols.md`` ("The three tables to
regenerate"); tests assert both sources agree where present. Values in the paper's units:
percent for mAP, millimetres for MPJPE.
"""
from __future__ import annotations

SOURCE = "Hi-TRS supplementary material (Chen et al., ECCV 2022)"

#: Table 1 - action detection, PKU-MMD Part I cross-subject, %
TABLE1 = {
    "source": f"Table 1 of the {SOURCE}; also in spec/protocols.md",
    "dataset": "PKU-MMD Part I, cross-subject",
    "unit": "%",
    "higher_is_better": True,
    "values": {  # row -> {(fraction, metric): value}
        "MCC": {(1.0, "mAP_a"): 58.6, (1.0, "mAP_v"): 62.3, (0.1, "mAP_a"): 30.5, (0.1, "mAP_v"): 44.5},
        "CrosSCLR-3S": {(1.0, "mAP_a"): 60.1, (1.0, "mAP_v"): 72.4, (0.1, "mAP_a"): 41.6, (0.1, "mAP_v"): 60.9},
        "Hi-TRS": {(1.0, "mAP_a"): 58.4, (1.0, "mAP_v"): 66.3, (0.1, "mAP_a"): 37.9, (0.1, "mAP_v"): 54.8},
        "Hi-TRS-3s": {(1.0, "mAP_a"): 68.2, (1.0, "mAP_v"): 76.0, (0.1, "mAP_a"): 42.9, (0.1, "mAP_v"): 62.9},
    },
}

#: Table 2 - motion prediction, NTU-60 cross-subject, MPJPE (lower is better)
TABLE2 = {
    "source": f"Table 2 of the {SOURCE}; also in spec/protocols.md",
    "dataset": "NTU-60, cross-subject",
    "unit": "mm",
    "higher_is_better": False,
    "values": {
        "MCC": {(1.0, "mpjpe"): 90.4, (0.1, "mpjpe"): 109.8},
        "CrosSCLR": {(1.0, "mpjpe"): 89.3, (0.1, "mpjpe"): 109.3},
        "Hi-TRS": {(1.0, "mpjpe"): 85.6, (0.1, "mpjpe"): 104.7},
    },
}

#: Table 3 - detection ablation over Hi-TRS pre-trained levels (100% data), %
LEVEL_SETS = ("-", "F", "C", "V", "F+C", "F+V", "C+V", "F+C+V")
TABLE3 = {
    "source": f"Table 3 of the {SOURCE}; also in spec/protocols.md",
    "dataset": "PKU-MMD Part I, cross-subject",
    "unit": "%",
    "higher_is_better": True,
    "values": {  # metric -> {levels: value} (the paper's layout: levels are columns)
        "mAP_a": dict(zip(LEVEL_SETS, (53.4, 55.5, 55.3, 55.9, 55.6, 57.9, 56.3, 58.4))),
        "mAP_v": dict(zip(LEVEL_SETS, (63.2, 64.1, 63.9, 63.9, 65.1, 64.0, 64.0, 66.3))),
    },
}

PAPER_TABLES = {"table1": TABLE1, "table2": TABLE2, "table3": TABLE3}
