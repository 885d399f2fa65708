"""The MAMP network: a vanilla transformer over spatio-temporal joint tokens, its decoder,
motion-aware masking and the masked-motion-prediction loss (docs/baselines.md, "MAMP").

Layout inside the network: ``xs`` ``(S, T, V, C)``, one row per body sequence (S = B * M,
sample-major, then body), T = ``num_frames``. A token is ``t_patch_size`` frames of
``patch_size`` joints; its patch vector is ordered (frame, joint, coordinate). Everything is
batched: no loop over samples, frames or joints, no host read, shapes fixed by the config.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from datasets.augment import host_readable
from datasets.precision import float32_island

from .config import COORDS, JOINTS, MAMPConfig


class DropPath(nn.Module):
    """Stochastic depth per sample (training only; the default RNG of the device)."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = float(rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        draw = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype)
        return x / keep * torch.floor(keep + draw)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool, attn_drop: float, proj_drop: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = attn_drop
        self.proj_drop = nn.Dropout(proj_drop)
        #: ``F.scaled_dot_product_attention`` (fused kernels); False: the reference's operation
        #: order (q k^T * scale, softmax, @ v), what ``load_reference`` uses for the exact port
        self.fused = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S, N, D = x.shape
        hd = D // self.heads
        q, k, v = self.qkv(x).view(S, N, 3, self.heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
        drop = self.attn_drop if self.training else 0.0
        if self.fused:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        else:
            attn = ((q @ k.transpose(-2, -1)) * hd ** -0.5).softmax(dim=-1)
            out = F.dropout(attn, drop) @ v if drop else attn @ v
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(S, N, D)))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-5, exact GELU)."""

    def __init__(self, dim: int, cfg: MAMPConfig, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, cfg.num_heads, cfg.qkv_bias, cfg.attn_drop_rate, cfg.drop_rate)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio), cfg.drop_rate)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def patchify(xs: torch.Tensor, t_patch: int, patch: int) -> torch.Tensor:
    """``(S, T, V, C)`` -> ``(S, T/u, V/p, u*p*C)`` (patch vector ordered frame, joint, coordinate)."""
    S, T, V, C = xs.shape
    x = xs.reshape(S, T // t_patch, t_patch, V // patch, patch, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(S, T // t_patch, V // patch, t_patch * patch * C)


def forward_motion(xs: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """The prediction target: x_(t+stride) - x_t, the last ``stride`` frames 0 (``extract_motion``)."""
    diff = xs[:, stride:] - xs[:, :-stride]
    return torch.cat([diff, torch.zeros_like(xs[:, :stride])], dim=1)


def motion_log_prob(patches: torch.Tensor, tau: float) -> torch.Tensor:
    """log of the motion-aware sampling distribution over tokens ``(S, L)``.

    Motion of a token = mean |difference of its patch vector to the previous temporal token|
    (the first temporal token takes the second's), divided by (its sequence's maximum * tau +
    1e-10), softmax over the sequence's tokens."""
    S = patches.shape[0]
    step = (patches[:, 1:] - patches[:, :-1]).abs()
    motion = torch.cat([step[:, :1], step], dim=1).mean(dim=-1).reshape(S, -1)
    scaled = motion / (motion.max(dim=-1, keepdim=True).values * tau + 1e-10)
    return torch.log(F.softmax(scaled, dim=-1))


def _uniform(shape, device, generator: torch.Generator | None) -> torch.Tensor:
    gdev = generator.device if generator is not None else torch.device(device)
    return torch.rand(shape, generator=generator, device=gdev).to(device)


def masking_order(patches: torch.Tensor, tau: float, generator: torch.Generator | None = None,
                  uniform: torch.Tensor | None = None) -> torch.Tensor:
    """``ids_shuffle`` ``(S, L)``: tokens ordered kept-first (the first ``kept_tokens`` are visible).

    ``tau > 0``: Gumbel-max sampling without replacement from the motion distribution (ascending
    ``log p - log(-log u)``: the *least* moving tokens tend to stay visible, the moving ones are
    masked and predicted); ``tau == 0``: uniform (ascending ``u``). ``uniform`` ``(S, L)`` in
    [0, 1): the draws to use (else from ``generator``, None: the device's default RNG)."""
    S = patches.shape[0]
    L = patches.shape[1] * patches.shape[2]
    u = uniform if uniform is not None else _uniform((S, L), patches.device, generator)
    u = u.to(device=patches.device, dtype=torch.float32)
    if tau > 0:
        noise = motion_log_prob(patches.float(), tau) - torch.log(-torch.log(u + 1e-10) + 1e-10)
    else:
        noise = u
    return torch.argsort(noise, dim=1)


def order_from_mask(mask: torch.Tensor, kept: int) -> torch.Tensor:
    """``ids_shuffle`` of a given mask ``(S, L)`` (True / 1 = masked): visible tokens first, in
    position order. Each row must mask exactly ``L - kept`` tokens (checked on the CPU)."""
    m = mask.to(torch.bool)
    if host_readable(m):
        counts = m.sum(dim=1)
        if bool((counts != m.shape[1] - kept).any()):
            raise ValueError(f"mask: every row must mask exactly {m.shape[1] - kept} of {m.shape[1]} tokens "
                             f"(mask_ratio), got {sorted(set(counts.tolist()))}")
    return torch.argsort(m.to(torch.uint8), dim=1, stable=True)


class MAMPNet(nn.Module):
    """Encoder + decoder of MAMP (the reference ``model_mamp.transformer.Transformer``)."""

    def __init__(self, cfg: MAMPConfig, decoder: bool = True):
        super().__init__()
        self.cfg = cfg
        TP, VP = cfg.grid
        D, Dd = cfg.dim_feat, cfg.decoder_dim_feat
        rates = torch.linspace(0, cfg.drop_path_rate, cfg.depth).tolist()
        self.embed = nn.Linear(cfg.patch_dim, D)
        self.temp_embed = nn.Parameter(torch.zeros(1, TP, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, VP, D))
        self.blocks = nn.ModuleList(Block(D, cfg, rates[i]) for i in range(cfg.depth))
        self.norm = nn.LayerNorm(D)
        self.has_decoder = decoder
        if decoder:
            self.decoder_embed = nn.Linear(D, Dd)
            self.mask_token = nn.Parameter(torch.zeros(1, 1, Dd))
            self.decoder_blocks = nn.ModuleList(Block(Dd, cfg, rates[i] if i < len(rates) else 0.0)
                                                for i in range(cfg.decoder_depth))
            self.decoder_norm = nn.LayerNorm(Dd)
            self.decoder_temp_embed = nn.Parameter(torch.zeros(1, TP, 1, Dd))
            self.decoder_pos_embed = nn.Parameter(torch.zeros(1, 1, VP, Dd))
            self.decoder_pred = nn.Linear(Dd, cfg.patch_dim)
        self.reset_parameters()

    def set_fused_attention(self, fused: bool) -> "MAMPNet":
        """SDPA kernels (default, fast) or the reference's attention arithmetic (``load_reference``:
        float32 results within ~1e-6 of the authors' code instead of a few 1e-6)."""
        for m in self.modules():
            if isinstance(m, Attention):
                m.fused = bool(fused)
        return self

    def reset_parameters(self) -> None:
        """The reference initialisation: xavier-uniform linears (embedding: the conv default),
        zero biases, unit LayerNorms, truncated-normal(0.02) position tables and mask token."""
        for m in self.modules():
            if isinstance(m, nn.Linear) and m is not self.embed:
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias) if m.bias is not None else None
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # the reference's patch embedding is a Conv2d (kaiming-uniform a=sqrt(5)), as nn.Linear's default
        self.embed.reset_parameters()
        tables = [self.temp_embed, self.pos_embed]
        if self.has_decoder:
            tables += [self.mask_token, self.decoder_temp_embed, self.decoder_pos_embed]
        for t in tables:
            nn.init.trunc_normal_(t, std=0.02)

    # ---- encoder --------------------------------------------------------------------------
    def tokens(self, xs: torch.Tensor) -> torch.Tensor:
        """``(S, T, V, C)`` -> embedded tokens with position tables ``(S, TP', VP, D)`` (T may be
        a shorter multiple of t_patch_size: the first TP' temporal embeddings). float32."""
        cfg = self.cfg
        if xs.dim() != 4 or xs.shape[2:] != (JOINTS, COORDS) or xs.shape[1] % cfg.t_patch_size \
                or xs.shape[1] > cfg.num_frames:
            raise ValueError(f"MAMPNet: expected (S, T, {JOINTS}, {COORDS}) with T a multiple of "
                             f"{cfg.t_patch_size} up to {cfg.num_frames}, got {tuple(xs.shape)}")
        with float32_island(xs):
            patches = patchify(xs.float(), cfg.t_patch_size, cfg.patch_size)
            x = F.linear(patches, self.embed.weight.float(), self.embed.bias.float())
            TP = x.shape[1]
            return x + self.pos_embed + self.temp_embed[:, :TP]

    def encode(self, xs: torch.Tensor, ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder features ``(S, K, D)`` of the tokens ``ids_keep`` ``(S, K)`` (None: all, in
        position order t-major)."""
        x = self.tokens(xs)
        S, TP, VP, D = x.shape
        x = x.reshape(S, TP * VP, D)
        if ids_keep is not None:
            x = torch.gather(x, 1, ids_keep[:, :, None].expand(-1, -1, D))
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def features(self, xs: torch.Tensor) -> torch.Tensor:
        """Unmasked encoder features ``(S, TP, VP, D)`` (downstream)."""
        TP, VP = xs.shape[1] // self.cfg.t_patch_size, self.cfg.grid[1]
        return self.encode(xs).reshape(xs.shape[0], TP, VP, -1)

    # ---- decoder --------------------------------------------------------------------------
    def decode(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Visible features ``(S, K, D)`` + mask tokens, unshuffled -> predictions ``(S, L, patch_dim)``."""
        cfg = self.cfg
        TP, VP = cfg.grid
        x = self.decoder_embed(latent)
        S, K, Dd = x.shape
        full = torch.cat([x, self.mask_token.to(x.dtype).expand(S, TP * VP - K, Dd)], dim=1)
        full = torch.gather(full, 1, ids_restore[:, :, None].expand(-1, -1, Dd)).view(S, TP, VP, Dd)
        full = (full + self.decoder_pos_embed + self.decoder_temp_embed).reshape(S, TP * VP, Dd)
        for blk in self.decoder_blocks:
            full = blk(full)
        return self.decoder_pred(self.decoder_norm(full))

    # ---- masked motion prediction -----------------------------------------------------------
    def loss(self, xs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the predicted motion patches over the masked tokens; targets
        standardised per patch (mean, unbiased variance + 1e-6) with ``norm_skes_loss``. float32."""
        cfg = self.cfg
        with float32_island(xs):
            target = patchify(forward_motion(xs.float(), cfg.motion_stride), cfg.t_patch_size, cfg.patch_size)
            target = target.reshape(xs.shape[0], -1, cfg.patch_dim)
            if cfg.norm_skes_loss:
                target = (target - target.mean(dim=-1, keepdim=True)) / (target.var(dim=-1, keepdim=True) + 1e-6) ** 0.5
            per_token = ((pred.float() - target) ** 2).mean(dim=-1)
            mask = mask.float()
            return (per_token * mask).sum() / mask.sum()

    def pretrain(self, xs: torch.Tensor, *, mask: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, uniform: torch.Tensor | None = None) -> dict:
        """One masked-motion-prediction pass over ``xs`` ``(S, T, V, C)`` (the stream the feeder
        produced). ``mask`` ``(S, L)`` (1 = masked, exactly ``L - kept_tokens`` per row): use it;
        else draw it (``uniform`` draws, or ``generator``). Returns ``loss`` (0-d), ``pred``
        ``(S, L, patch_dim)``, ``mask`` ``(S, L)`` float, ``ids_keep`` ``(S, K)``, ``latent`` ``(S, K, D)``."""
        cfg = self.cfg
        if xs.shape[1] != cfg.num_frames:
            raise ValueError(f"MAMPNet.pretrain: sequences must have num_frames={cfg.num_frames} frames, "
                             f"got {xs.shape[1]}")
        K = cfg.kept_tokens
        if mask is not None:
            ids_shuffle = order_from_mask(mask.to(xs.device), K)
        else:
            with float32_island(xs):
                patches = patchify(xs.float(), cfg.t_patch_size, cfg.patch_size)
                ids_shuffle = masking_order(patches, cfg.motion_aware_tau, generator, uniform)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :K]
        token_mask = (ids_restore >= K).float()
        latent = self.encode(xs, ids_keep)
        pred = self.decode(latent, ids_restore)
        loss = self.loss(xs, pred, token_mask)
        return {"loss": loss, "pred": pred, "mask": token_mask, "ids_keep": ids_keep, "latent": latent}
