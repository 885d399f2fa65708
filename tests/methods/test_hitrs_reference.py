"""Hi-TRS against the authors' reference: golden logits and windows, parameter counts, converter."""
from __future__ import annotations

import pytest
import torch

import methods
from methods.hitrs import (HiTRSClassifier, convert_reference_state_dict, frame_windows, load_reference,
                           load_reference_pretrained, no_weight_decay, to_reference_state_dict, window_counts)
from tests.support import shared_path

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one intra-op thread



@pytest.fixture(scope="module")
def golden():
    return torch.load(shared_path("reference", "hitrs_official_small.pt"), weights_only=False)


def test_golden_logits(golden):
    model = load_reference(golden["state_dict"], golden["config"])
    model.eval()
    with torch.no_grad():
        logits = model(golden["x"], golden["lengths"])
    assert logits.shape == golden["logits"].shape
    assert (logits - golden["logits"]).abs().max().item() < 1e-5


def test_golden_logits_after_export_round_trip(golden):
    """ours -> reference names -> ours gives the same tensors and logits."""
    model = load_reference(golden["state_dict"], golden["config"])
    exported = to_reference_state_dict(model)
    assert set(exported) == set(golden["state_dict"])
    for name, value in golden["state_dict"].items():
        assert torch.equal(exported[name], value), name
    again = load_reference({"module." + k: v for k, v in exported.items()}, golden["config"]).eval()
    with torch.no_grad():
        assert (again(golden["x"], golden["lengths"]) - golden["logits"]).abs().max().item() < 1e-5


def test_golden_windows(golden):
    clips, valid = frame_windows(golden["x"], golden["lengths"])
    assert torch.equal(window_counts(golden["lengths"]), golden["windows_per_sample"])
    assert clips.shape == golden["windowed_input"].shape
    assert torch.equal(clips, golden["windowed_input"])
    pad = golden["window_pad_mask"]                                       # (B, 2, K+1), 1 = padded
    for body in range(pad.shape[1]):
        assert torch.equal(~valid, pad[:, body, :-1].bool())
        assert not pad[:, body, -1].bool().any()                          # fuse token never masked


def test_converter_rejects_unknown_and_wrong_shapes(golden):
    sd = dict(golden["state_dict"])
    sd["mystery.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="mystery.weight"):
        convert_reference_state_dict(sd)
    with pytest.raises(ValueError, match="shapes differ"):
        load_reference(golden["state_dict"], {**golden["config"], "d_att": 8})
    with pytest.raises(ValueError, match="label_num"):
        load_reference(golden["state_dict"], {k: v for k, v in golden["config"].items() if k != "label_num"})
    partial = {k: v for k, v in golden["state_dict"].items() if "w_ks" not in k}
    with pytest.raises(ValueError, match="w_ks"):
        convert_reference_state_dict(partial)


def test_pretrained_checkpoint_into_method(golden):
    cfg = golden["config"]
    method = methods.create("hitrs", "ci", d_model=cfg["d_model"], nhead=cfg["nhead"], d_att=cfg["d_att"],
                            layers=cfg["layer_num"], window=cfg["w_size"], center_input=False, motion_scale=1.0)
    pretrain_only = {k: v for k, v in golden["state_dict"].items() if not k.startswith("v_cls")}
    load_reference_pretrained(method, pretrain_only)
    classifier = load_reference(golden["state_dict"], cfg)
    method.eval(), classifier.eval()
    with torch.no_grad():
        emb = method.video_embedding(golden["x"], golden["lengths"])
        assert torch.allclose(classifier.head(emb), golden["logits"], atol=1e-5)


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_paper_parameter_counts():
    method = methods.create("hitrs", "paper")
    assert _count(method) == 7_051_143
    assert _count(HiTRSClassifier(method.config, 60)) == 7_081_923


def test_no_decay_groups_match_reference_rule(golden):
    """The reference exempts names containing bias / _norm / s_input_map.2.weight / _pe. / fuse_token."""
    ref_rule = ("bias", "LayerNorm", "_norm", "s_input_map.2.weight", "_pe.", "fuse_token")
    converted = convert_reference_state_dict(golden["state_dict"])
    # map each of our names back to the reference names it came from
    exported = to_reference_state_dict(load_reference(golden["state_dict"], golden["config"]))
    ours_no_decay = {n for n in converted if no_weight_decay(n)}
    ref_no_decay = {n for n in exported if any(tag in n for tag in ref_rule)}
    back = convert_reference_state_dict({n: golden["state_dict"][n] for n in ref_no_decay})
    assert ours_no_decay == set(back)
    method = methods.create("hitrs", "ci")
    optimizer, _ = method.configure_pretraining()
    wd = [g["weight_decay"] for g in optimizer.param_groups]
    assert wd == [method.config.weight_decay, 0.0]
    n_plain = sum(p.numel() for p in optimizer.param_groups[1]["params"])
    assert n_plain == sum(p.numel() for n, p in method.named_parameters() if no_weight_decay(n)) > 0
