"""MAMP against the authors' code: golden feeder output, masks, encoder features, decoder
outputs and loss (tests/reference/mamp/README.md). Every ``*.pt`` of that folder is checked, and
those of ``$MAMP_GOLDEN_DIR`` (held-back files made the same way) when it is set."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from methods.mamp import (MAMPNet, convert_reference_state_dict, feeder_input, load_reference, rotation_matrices,
                          sequences, to_reference_state_dict)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one intra-op thread

HERE = Path(__file__).resolve().parents[1] / "reference" / "mamp"
TOL = 1e-5


def _golden_files() -> list[Path]:
    files = sorted(HERE.glob("*.pt"))
    extra = os.environ.get("MAMP_GOLDEN_DIR")
    if extra:
        files += sorted(Path(extra).glob("*.pt"))
    return files


@pytest.fixture(scope="module", params=_golden_files(), ids=lambda p: p.stem)
def golden(request):
    return torch.load(request.param, weights_only=False)


def _net(g, **kw) -> MAMPNet:
    return load_reference(g["state_dict"], g["config"], mask_ratio=g["mask_ratio"],
                          motion_aware_tau=g["motion_aware_tau"], motion_stride=g["motion_stride"], **kw).eval()


def _btmvc(feeder_out: torch.Tensor) -> torch.Tensor:
    return feeder_out.permute(0, 2, 4, 3, 1)          # reference (N, C, T, V, M) -> (B, T, M, V, C)


def _close(a, b, what):
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
    err = (a.float() - b.float()).abs().max().item()
    assert err < TOL, f"{what}: max abs error {err:.3g}"


def test_golden_feeder(golden):
    """seq_translation + valid_crop_resize (+ random_rot with the recorded draws) from raw x."""
    cfg = _net(golden).cfg
    _close(feeder_input(golden["x"], golden["lengths"], cfg, train=False), _btmvc(golden["feeder_test"]),
           "evaluation feeder")
    train = feeder_input(golden["x"], golden["lengths"], cfg, train=True,
                         window=(golden["train_crop_start"], golden["train_crop_length"]),
                         angles=golden["train_rotation"])
    _close(train, _btmvc(golden["feeder_train"]), "training feeder")


def test_golden_masked_motion_prediction(golden):
    """Same uniform draws -> the same motion-aware mask, kept tokens in the same order, the same
    encoder features, decoder outputs and loss."""
    net = _net(golden)
    xs = sequences(_btmvc(golden["feeder_train"]))
    with torch.no_grad():
        out = net.pretrain(xs, uniform=golden["uniform"])
    assert torch.equal(out["mask"], golden["mask"].float())
    assert torch.equal(out["ids_keep"], golden["ids_keep"])
    _close(out["latent"], golden["latent"], "encoder features (visible tokens)")
    _close(out["pred"], golden["pred"], "decoder outputs")
    _close(out["loss"], golden["loss"], "loss")


def test_golden_loss_for_given_mask(golden):
    """The mask as an input: decoder outputs and loss of the golden mask; the encoder features
    of the visible tokens in position order."""
    net = _net(golden)
    xs = sequences(_btmvc(golden["feeder_train"]))
    with torch.no_grad():
        out = net.pretrain(xs, mask=golden["mask"])
    _close(out["pred"], golden["pred"], "decoder outputs")
    _close(out["loss"], golden["loss"], "loss")
    order = torch.argsort(golden["ids_keep"], dim=1)
    ref_latent = torch.gather(golden["latent"], 1, order[:, :, None].expand_as(golden["latent"]))
    _close(out["latent"], ref_latent, "encoder features (visible tokens, position order)")


def test_golden_unmasked_features(golden):
    """The downstream encoder (all tokens) on the evaluation feeder output, and its pooled embedding."""
    net = _net(golden)
    with torch.no_grad():
        feats = net.features(sequences(_btmvc(golden["feeder_test"])))
    _close(feats.reshape(golden["features"].shape), golden["features"], "unmasked encoder features")
    _close(feats.reshape(golden["x"].shape[0], -1, feats.shape[-1]).mean(1), golden["embedding"], "embedding")


def test_fused_attention_close(golden):
    """The SDPA path the method trains with agrees with the reference arithmetic."""
    net = _net(golden, fused_attention=True)
    with torch.no_grad():
        out = net.pretrain(sequences(_btmvc(golden["feeder_train"])), uniform=golden["uniform"])
    assert (out["pred"] - golden["pred"]).abs().max().item() < 1e-4
    assert (out["loss"] - golden["loss"]).abs().item() < 1e-5


def test_method_reproduces_golden(golden):
    """The unregistered method with the golden weights: its pre-training loss (evaluation crop,
    golden mask) and video embedding from the raw x."""
    from methods.mamp import MAMP, load_into
    cfg = _net(golden).cfg
    method = MAMP(cfg).eval()
    load_into(method.net, golden["state_dict"])
    method.net.set_fused_attention(False)
    with torch.no_grad():
        emb = method.video_embedding(golden["x"], golden["lengths"])
        _close(emb, golden["embedding"], "video_embedding")
        ref = _net(golden).pretrain(sequences(_btmvc(golden["feeder_test"])), mask=golden["mask"])["loss"]
        loss, logs = method.pretrain_loss(golden["x"], golden["lengths"], mask=golden["mask"])
    _close(loss, ref, "pretrain_loss with a given mask")
    assert set(logs) == {"mamp/loss"} and logs["mamp/loss"].dim() == 0


def test_rotation_matrix_convention():
    """R = Rz Ry Rx with the reference's row layout: rotation about x by a maps y to (c, -s)."""
    a = torch.tensor([[0.3, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 0.1]])
    R = rotation_matrices(a)
    c, s = torch.cos(torch.tensor(0.3)), torch.sin(torch.tensor(0.3))
    assert torch.allclose(R[0] @ torch.tensor([0.0, 1.0, 0.0]), torch.stack([torch.tensor(0.0), c, -s]))
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-6)


def test_converter_round_trip_and_errors(golden):
    net = _net(golden)
    exported = to_reference_state_dict(net)
    assert set(exported) == set(golden["state_dict"])
    for name, value in golden["state_dict"].items():
        assert torch.equal(exported[name], value), name
    wrapped = {"model": {"module." + k: v for k, v in exported.items()}}
    again = load_reference(wrapped, golden["config"], mask_ratio=golden["mask_ratio"])
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), net.state_dict().values()))
    with pytest.raises(ValueError, match="shapes differ"):
        load_reference(golden["state_dict"], {**golden["config"], "num_frames": golden["config"]["num_frames"] * 2})
    partial = {k: v for k, v in golden["state_dict"].items() if k != "norm.weight"}
    with pytest.raises(ValueError, match="norm.weight"):
        load_reference(partial, golden["config"])
    enc = load_reference({**golden["state_dict"], "head.fc.weight": torch.zeros(1)}, golden["config"],
                         encoder_only=True)
    assert not enc.has_decoder
    assert set(convert_reference_state_dict(golden["state_dict"], encoder_only=True)) == set(enc.state_dict())
