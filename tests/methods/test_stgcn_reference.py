"""ST-GCN port: graph quirk, parameter counts, golden logits of both reference models."""
import functools
from pathlib import Path

import pytest
import torch

from methods.stgcn import CROSSCLR, STANDARD, STGCN, adjacency, convert_reference_state_dict, load_reference

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


@functools.lru_cache(maxsize=None)
def _load(path):
    return torch.load(path, weights_only=False)


def _golden(name):
    """The golden file (read once per session; tests copy before changing anything)."""
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"golden file {path} absent (../shared/reference is not part of the repository)")
    return _load(path)


def test_spatial_partition_has_the_max_hop_quirk():
    a = adjacency("ntu-rgb+d", "spatial")
    assert a.shape == (3, 25, 25)
    assert [(p != 0).sum().item() for p in a] == [25, 40, 8]
    # A·D^-1: every column of the summed partitions sums to 1 (self-link + neighbours)
    torch.testing.assert_close(a.sum(0).sum(0), torch.ones(25))
    # joint 21 (index 20) is the centre: its edges to 2, 3, 5, 9 are split close/further
    assert a[2, 20, [1, 2, 4, 8]].gt(0).all() and a[1, [1, 2, 4, 8], 20].gt(0).all()
    # an edge far from the centre (joints 7-8) lands in the root group (inf == inf)
    assert a[1, 6, 7] > 0 and a[2, 6, 7] == 0 and a[2, 7, 6] == 0


def test_graph_matches_the_reference_buffer():
    for name in ("stgcn_official.pt", "stgcn_crossclr.pt"):
        torch.testing.assert_close(adjacency(), _golden(name)["state_dict"]["A"], rtol=0, atol=1e-7)


def test_parameter_counts():
    assert sum(p.numel() for p in STGCN(STANDARD, 60).parameters()) == 3_098_832
    assert sum(p.numel() for p in STGCN(CROSSCLR, 60).parameters()) == 836_800


@pytest.mark.parametrize("name", ["stgcn_official.pt", "stgcn_crossclr.pt"])
def test_reference_logits(name):
    gold = _golden(name)
    model = load_reference(gold["state_dict"], gold["config"])
    model.eval()
    with torch.no_grad():
        out = model(gold["x"])
    assert out.shape == gold["logits"].shape
    assert (out - gold["logits"]).abs().max().item() < 1e-5
    # the suite layout (B, T, M, V, C) gives the same pooled features
    with torch.no_grad():
        f_ref = model.features(gold["x"])
        f_suite = model.features_btmvc(gold["x"].permute(0, 2, 4, 3, 1))
    torch.testing.assert_close(f_ref, f_suite)


def test_reference_loader_rejects_mismatches():
    gold = _golden("stgcn_crossclr.pt")
    bad = dict(gold["state_dict"])
    bad["st_gcn_networks.0.tcn.7.weight"] = torch.zeros(1)
    with pytest.raises(KeyError, match="unrecognised"):
        load_reference(bad, gold["config"])
    with pytest.raises(ValueError, match="does not match"):
        load_reference(gold["state_dict"], {**gold["config"], "hidden_channels": 32})
    with pytest.raises(ValueError, match="unsupported arguments"):
        load_reference(gold["state_dict"], {**gold["config"], "bogus": 1})
    prefixed = {"module.encoder_q." + k: v for k, v in gold["state_dict"].items()}
    assert set(convert_reference_state_dict(prefixed, "module.encoder_q.")) == set(
        convert_reference_state_dict(gold["state_dict"]))


def test_backbone_of_a_pretraining_checkpoint_loads_without_its_projection():
    """CrosSCLR pre-training checkpoints: encoder_q*.fc is an MLP (fc.0, fc.2), not a classifier."""
    gold = _golden("stgcn_crossclr.pt")
    ckpt = {"encoder_q_motion." + k: v for k, v in gold["state_dict"].items() if not k.startswith("fc.")}
    ckpt["encoder_q_motion.fc.0.weight"] = torch.zeros(256, 256)
    ckpt["encoder_q_motion.fc.2.weight"] = torch.zeros(128, 256)
    ckpt["encoder_q.data_bn.weight"] = torch.zeros(75)  # another encoder: ignored by the prefix
    with pytest.raises(KeyError, match="unrecognised"):
        load_reference(ckpt, gold["config"], prefix="encoder_q_motion.")
    backbone = load_reference(ckpt, gold["config"], prefix="encoder_q_motion.", head=False).eval()
    full = load_reference(gold["state_dict"], gold["config"]).eval()
    with torch.no_grad():
        torch.testing.assert_close(backbone(gold["x"]), full.features(gold["x"]))


@pytest.mark.parametrize("frames", [1, 7, 50])
def test_short_inputs_survive_the_temporal_strides(frames):
    model = STGCN(CROSSCLR).eval()
    fmap = model.feature_map(torch.randn(3, 3, frames, 25, 2))
    assert fmap.shape == (3, 2, 256, -(-frames // 4) if frames > 1 else 1, 25)
    assert model(torch.randn(3, 3, frames, 25, 2)).shape == (3, 256)
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(3, frames, 25, 2))
