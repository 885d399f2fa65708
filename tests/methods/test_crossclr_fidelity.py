"""CrosSCLR as the official implementation builds it (issue 14.2 / 14.3): the 3-view model's
shared MLP rebuilt in the official layout, and weights_init after the query -> key copy."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import methods
from methods.crossclr import crossclr_stream
from methods.stgcn import STGCN, STGCNArch
from tests.support import toy_skeletons


class OfficialEncoder(nn.Module):
    """The official encoder's shape: an ST-GCN whose classifier ``fc`` is an attribute that the
    3-view model later replaces ("hack: brute-force replacement")."""

    def __init__(self, arch: STGCNArch, out_dim: int):
        super().__init__()
        self.backbone = STGCN(arch)
        self.fc = nn.Linear(arch.hidden_dim, out_dim)

    def forward(self, x):
        return self.fc(self.backbone.features_btmvc(x))


def official_three_view(arch: STGCNArch, out_dim: int) -> dict[str, OfficialEncoder]:
    """Query encoders in the order the official constructor replaces the heads: joint first,
    then motion and bone wrap ``encoder_q.fc`` -- which by then is already the joint MLP."""
    enc = {s: OfficialEncoder(arch, out_dim) for s in ("joint", "motion", "bone")}
    h = arch.hidden_dim
    enc["joint"].fc = nn.Sequential(nn.Linear(h, h), nn.ReLU(), enc["joint"].fc)
    for s in ("motion", "bone"):
        enc[s].fc = nn.Sequential(nn.Linear(h, h), nn.ReLU(), enc["joint"].fc)
    return enc


def _load_ours_into_official(ours, official):
    for s, enc in official.items():
        pair = ours.pairs[s].encoder_q
        enc.backbone.load_state_dict(pair.backbone.state_dict())
        enc.fc[0].load_state_dict(pair.projection[0].state_dict())
    official["joint"].fc[2].load_state_dict(ours.pairs["joint"].encoder_q.projection[2].state_dict())


def test_faithful_bugs_equal_the_official_three_view_heads(one_thread):
    torch.manual_seed(0)
    ours = methods.create("crossclr", "ci", faithful_bugs=True).eval()
    cfg = ours.config
    arch = STGCNArch(hidden_channels=cfg.hidden_channels, hidden_dim=cfg.hidden_dim, dropout=cfg.dropout)
    official = official_three_view(arch, cfg.feature_dim)
    _load_ours_into_official(ours, official)
    for enc in official.values():
        enc.eval()
    # layout: 3 Linear layers in the motion / bone heads, 4 tensors shared with the joint head
    for s in ("motion", "bone"):
        head = ours.pairs[s].encoder_q.projection
        assert sum(isinstance(m, nn.Linear) for m in head.modules()) == 3
        joint_ids = {id(p) for p in ours.pairs["joint"].encoder_q.projection.parameters()}
        assert sum(id(p) in joint_ids for p in head.parameters()) == 4
        assert ([tuple(p.shape) for p in head.parameters()]
                == [tuple(p.shape) for p in official[s].fc.parameters()])
    x, lengths = toy_skeletons(3)
    x = x[:, :50]
    with torch.no_grad():
        for s in ("joint", "motion", "bone"):
            view = crossclr_stream(x, s)
            torch.testing.assert_close(ours.pairs[s].encoder_q(view), official[s](view), rtol=0, atol=1e-6)
    # and the paper-description behaviour differs: three separate two-layer MLPs
    paper = methods.create("crossclr", "ci", faithful_bugs=False)
    assert sum(isinstance(m, nn.Linear) for m in paper.pairs["motion"].encoder_q.projection.modules()) == 2


def test_shared_head_gets_every_streams_gradient_and_momentum_moves():
    torch.manual_seed(1)
    ours = methods.create("crossclr", "ci", faithful_bugs=True)
    x, _ = toy_skeletons(4)
    out = ours.pairs["motion"].encoder_q(crossclr_stream(x[:, :50], "motion")).sum()
    out.backward()
    assert ours.pairs["joint"].encoder_q.projection[0].weight.grad.abs().sum() > 0
    # single-view phase: the official loop moves joint, motion and bone key encoders in turn; the
    # shared tensors of the joint key head are moved three times: k <- m^3 k + (1 - m^3) q
    m = ours.config.momentum
    q = ours.pairs["joint"].encoder_q.projection[2].weight
    k = ours.pairs["joint"].encoder_k.projection[2].weight
    with torch.no_grad():
        q.add_(1.0)
    before_q, before_k = q.detach().clone(), k.clone()
    ours.on_step_start(1, 24)
    ours.after_optimizer_step()
    torch.testing.assert_close(k, m ** 3 * before_k + (1 - m ** 3) * before_q)


def _cosine(a: nn.Module, b: nn.Module) -> float:
    va = torch.cat([p.detach().flatten() for p in a.parameters()])
    vb = torch.cat([p.detach().flatten() for p in b.parameters()])
    return float(F.cosine_similarity(va, vb, dim=0))


def test_reference_init_draws_keys_after_the_copy():
    torch.manual_seed(2)
    ours = methods.create("crossclr", "ci", init="reference")
    moco = methods.create("crossclr", "ci", init="moco")
    for s in ("joint", "motion", "bone"):
        pair = ours.pairs[s]
        conv = pair.encoder_q.backbone.blocks[1].tconv.requires_grad_(False)
        assert abs(float(conv.weight.std()) - 0.02) < 0.003 and not conv.bias.any()
        bn = pair.encoder_q.backbone.blocks[1].bn1.requires_grad_(False)
        assert abs(float(bn.weight.mean()) - 1.0) < 0.02 and 0.005 < float(bn.weight.std()) < 0.04
        assert not bn.bias.any()
        lin = pair.encoder_q.projection[0].requires_grad_(False)
        assert abs(float(lin.weight.std()) - 0.02) < 0.003 and not lin.bias.any()
        assert torch.equal(pair.encoder_q.backbone.blocks[1].edge_importance,
                           torch.ones_like(pair.encoder_q.backbone.blocks[1].edge_importance))
        # query and key drawn independently: conv weights uncorrelated (official), identical (MoCo)
        qw, kw = pair.encoder_q.backbone.blocks[1].tconv.weight, pair.encoder_k.backbone.blocks[1].tconv.weight
        assert abs(float(F.cosine_similarity(qw.flatten(), kw.flatten(), dim=0))) < 0.1
        assert not any(p.requires_grad for p in pair.encoder_k.parameters())
        assert _cosine(moco.pairs[s].encoder_q, moco.pairs[s].encoder_k) == pytest.approx(1.0, abs=1e-5)
    # the reference moves the keys before the first step's keys: k <- m k + (1 - m) q once more
    m = ours.config.momentum
    q = copy.deepcopy(ours.pairs["joint"].encoder_q.backbone.blocks[2].tconv.weight.detach())
    k = ours.pairs["joint"].encoder_k.backbone.blocks[2].tconv.weight.clone()
    ours.on_step_start(0, 24)
    torch.testing.assert_close(ours.pairs["joint"].encoder_k.backbone.blocks[2].tconv.weight, m * k + (1 - m) * q)
    with pytest.raises(ValueError, match="init must be reference or moco"):
        methods.make_config("crossclr", "ci", init="xavier")


def test_paper_profile_is_the_official_implementation():
    paper = methods.make_config("crossclr", "paper")
    assert paper.faithful_bugs and paper.init == "reference" and paper.loop.batching == "uniform"
    assert round(paper.cross_start * paper.loop.steps) == 46_950
