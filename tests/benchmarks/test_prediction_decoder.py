"""The motion-prediction decoder's suite options (warm-up frames, relative input, MPJPE loss):
each does what its name says, an untrained decoder stays the zero-velocity floor, and the
`paper` profile keeps the supplementary's protocol."""
from __future__ import annotations

import pytest
import torch

from benchmarks.config import make_run_config
from benchmarks.metrics import mpjpe
from benchmarks.tasks.prediction import JOINT_DIMS, ResidualDecoder, training_loss

OBSERVE, STEPS, EMBED = 12, 4, 8


def _decoder(*, warmup=0, relative=False, trained=True):
    torch.manual_seed(0)
    decoder = ResidualDecoder(EMBED, 16, 0.0, warmup=warmup, relative=relative).eval()
    if trained:  # a non-zero velocity layer, as after training
        torch.nn.init.normal_(decoder.out.weight, std=0.05)
        torch.nn.init.normal_(decoder.out.bias, std=0.01)
    return decoder


def _observed(batch=3):
    g = torch.Generator().manual_seed(1)
    base = torch.tensor([0.1, 0.2, 3.5]).repeat(25)  # camera space: metres from the origin
    return base + 0.05 * torch.randn(batch, OBSERVE, JOINT_DIMS, generator=g).cumsum(1)


@pytest.mark.parametrize("warmup,relative", [(0, False), (5, True), (OBSERVE - 1, True)])
def test_an_untrained_decoder_predicts_zero_velocity(warmup, relative):
    observed = _observed()
    out = _decoder(warmup=warmup, relative=relative, trained=False)(torch.randn(3, EMBED), observed, STEPS)
    assert torch.equal(out, observed[:, -1:].expand(-1, STEPS, -1))


@pytest.mark.parametrize("warmup", [0, 3, 6])
def test_the_decoder_reads_exactly_the_last_warmup_frames_before_the_last(warmup):
    decoder, embedding, observed = _decoder(warmup=warmup, relative=True), torch.randn(3, EMBED), _observed()
    base = decoder(embedding, observed, STEPS)
    for t in range(OBSERVE - 1):
        changed = observed.clone()
        changed[:, t] += 0.3
        moved = not torch.allclose(decoder(embedding, changed, STEPS), base)
        assert moved == (t >= OBSERVE - 1 - warmup), f"frame {t}, warmup {warmup}"


def test_relative_input_makes_the_forecast_follow_a_shift_of_the_actor():
    shift = torch.tensor([0.7, -0.2, 1.1]).repeat(25)
    embedding, observed = torch.randn(3, EMBED), _observed()
    relative = _decoder(warmup=4, relative=True)
    torch.testing.assert_close(relative(embedding, observed + shift, STEPS),
                               relative(embedding, observed, STEPS) + shift, atol=1e-5, rtol=0)
    absolute = _decoder(warmup=4, relative=False)
    shifted = absolute(embedding, observed + shift, STEPS) - shift
    assert not torch.allclose(shifted, absolute(embedding, observed, STEPS), atol=1e-4)


def test_mpjpe_loss_is_the_reported_metric_and_mse_is_torchs():
    g = torch.Generator().manual_seed(2)
    predicted, target = torch.randn(4, STEPS, 25, 3, generator=g), torch.randn(4, STEPS, 25, 3, generator=g)
    assert training_loss(predicted, target, "mpjpe").item() == pytest.approx(mpjpe(predicted, target), rel=1e-6)
    assert torch.equal(training_loss(predicted, target, "mse"), torch.nn.functional.mse_loss(predicted, target))


def test_mpjpe_loss_has_a_zero_gradient_where_the_forecast_is_exact():
    """A still actor and an untrained decoder give a distance of exactly 0: no NaN may follow."""
    predicted = torch.zeros(2, STEPS, 25, 3, requires_grad=True)
    training_loss(predicted, torch.zeros(2, STEPS, 25, 3), "mpjpe").backward()
    assert torch.equal(predicted.grad, torch.zeros_like(predicted))


def test_paper_keeps_the_supplementary_protocol_and_small_uses_the_options():
    paper, small = make_run_config("paper").prediction, make_run_config("small").prediction
    assert (paper.loss, paper.warmup_frames, paper.relative_input, paper.dropout) == ("mse", 0, False, 0.5)
    assert (small.loss, small.relative_input) == ("mpjpe", True) and 0 < small.warmup_frames < small.observe


@pytest.mark.parametrize("override,needle", [({"prediction.loss": "l1"}, "prediction.loss"),
                                             ({"prediction.warmup_frames": 30}, "prediction.warmup_frames"),
                                             ({"prediction.warmup_frames": -1}, "warmup_frames")])
def test_bad_decoder_options_name_the_key(override, needle):
    with pytest.raises(ValueError, match=needle):
        make_run_config("small", override)

