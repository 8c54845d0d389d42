"""StyleGAN-V holistic discriminator.

Each frame goes through ResNet blocks alone until `concat_res`, where the
frames of a clip are stacked on the channel axis (frame-major) and processed
together; the logit is projected onto an embedding of the clip's time gaps.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import DiscriminatorConfig, num_fourier_coefs
from .generator import PRECISIONS, parse_precision
from .layers import Conv2dLayer, FullyConnected, MappingNetwork
from .ops import fir_filter


def fourier_coefs(max_num_frames: int) -> torch.Tensor:
    """[1, n] angular frequencies pi * 2^k / 2^n, k < n: periods from 2^(n+1) frames down to 4."""
    n = num_fourier_coefs(max_num_frames)
    return torch.tensor([[math.pi * 2**k / 2**n for k in range(n)]], dtype=torch.float32)


class FixedTimeEncoder(nn.Module):
    def __init__(self, max_num_frames: int):
        super().__init__()
        self.register_buffer("fourier_coefs", fourier_coefs(max_num_frames))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angle = t.to(self.fourier_coefs.dtype).unsqueeze(1) * self.fourier_coefs
        return torch.cat([angle.sin(), angle.cos()], dim=1)


class TemporalDifferenceEncoder(nn.Module):
    """Embeds the integer gaps between a clip's frames: learned table ‖ Fourier features."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.num_frames = cfg.num_frames
        self.sampling_type = cfg.sampling_type
        self.max_num_frames = cfg.max_num_frames
        self.const_embed = nn.Embedding(cfg.max_num_frames, cfg.time_embed_dim)
        self.time_encoder = FixedTimeEncoder(cfg.max_num_frames)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1, self.num_frames)
        diffs = t[:, 1:] - t[:, :-1] if self.sampling_type == "random" else t[:, 1:2] - t[:, :1]
        b = t.shape[0]
        diffs = diffs.reshape(-1)
        index = diffs.round().long().clamp(0, self.max_num_frames - 1)
        emb = torch.cat([self.const_embed(index), self.time_encoder(diffs)], dim=1)
        return emb.reshape(b, -1)


class DiscriminatorBlock(nn.Module):
    """ResNet block: conv0, strided conv1 and a 1x1 skip, each branch scaled by sqrt(1/2)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int,
                 conv_clamp: float | None, reduced_precision: bool):
        super().__init__()
        self.in_channels = in_channels
        self.reduced_precision = reduced_precision
        self.compute_dtype = torch.float32
        self.register_buffer("resample_filter", fir_filter())
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
            in_channels = tmp_channels
        self.conv0 = Conv2dLayer(in_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, force_fp32: bool = False) -> torch.Tensor:
        full = self.conv0.weight.dtype  # float32 (float64 in the oracle that tests compare with)
        dtype = self.compute_dtype if self.reduced_precision and not force_fp32 else full
        if self.in_channels == 0:
            x = self.fromrgb(img.to(dtype))
        else:
            x = x.to(dtype)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x


class MinibatchStd(nn.Module):
    def __init__(self, group_size: int, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g:
            raise ValueError(f"minibatch-std needs the batch ({n}) divisible by the group size ({g})")
        f = self.num_channels
        # Groups are strided: sample i belongs to group i % (n // g), as in the original.
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, mbstd_group_size: int,
                 mbstd_num_channels: int, conv_clamp: float | None):
        super().__init__()
        self.cmap_dim = cmap_dim
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnected(in_channels * resolution**2, in_channels, activation="lrelu")
        self.out = FullyConnected(in_channels, cmap_dim if cmap_dim > 0 else 1)

    def forward(self, x: torch.Tensor, cmap: torch.Tensor | None) -> torch.Tensor:
        x = x.to(self.conv.weight.dtype)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        self.c_dim = cfg.c_dim
        self.img_resolution = cfg.resolution
        self.num_frames = cfg.num_frames
        self.concat_res = cfg.concat_res
        self.block_resolutions = cfg.block_resolutions
        cond_dim = cfg.c_dim + cfg.time_cond_dim
        if cfg.num_time_diffs > 0:
            self.time_encoder = TemporalDifferenceEncoder(cfg)
        for res in self.block_resolutions:
            in_channels = cfg.channels(res) if res < cfg.resolution else 0
            tmp_channels = cfg.channels(res)
            out_channels = cfg.channels(res // 2)
            if res // 2 == cfg.concat_res:
                out_channels //= cfg.num_frames_div_factor
            if res == cfg.concat_res:
                in_channels = (in_channels // cfg.num_frames_div_factor) * cfg.num_frames
            block = DiscriminatorBlock(in_channels, tmp_channels, out_channels, cfg.img_channels, cfg.conv_clamp,
                                       reduced_precision=res >= cfg.fp16_resolution)
            setattr(self, f"b{res}", block)
        self.cmap_dim = cfg.channels(4) if cond_dim > 0 else 0
        if cond_dim > 0:
            self.mapping = MappingNetwork(0, cond_dim, self.cmap_dim, num_ws=None, num_layers=cfg.mapping_layers,
                                          w_avg_beta=None)
        self.b4 = DiscriminatorEpilogue(cfg.channels(4), self.cmap_dim, 4, cfg.mbstd_group_size,
                                        cfg.mbstd_num_channels, cfg.conv_clamp)
        self.precision = "float32"

    def blocks(self) -> list[DiscriminatorBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def set_precision(self, precision: str | torch.dtype) -> Discriminator:
        dtype = parse_precision(precision)
        for block in self.blocks():
            block.compute_dtype = dtype
        self.precision = {v: k for k, v in PRECISIONS.items()}[dtype]
        return self

    def forward(self, img: torch.Tensor, c: torch.Tensor | None, t: torch.Tensor, force_fp32: bool = False
                ) -> torch.Tensor:
        """img [B*F, C, H, W] video-major, c [B, c_dim], t [B, F] -> logits [B]."""
        if t.ndim != 2 or t.shape[1] != self.num_frames or img.shape[0] != t.numel():
            raise ValueError(f"D expects t [B, {self.num_frames}] and img [B*{self.num_frames}, C, H, W]; "
                             f"got t {list(t.shape)}, img {list(img.shape)}")
        x = None
        for res, block in zip(self.block_resolutions, self.blocks()):
            if res == self.concat_res:
                x = x.reshape(-1, self.num_frames * x.shape[1], *x.shape[2:])
            x = block(x, img, force_fp32=force_fp32)
        cmap = None
        if self.cmap_dim > 0:
            parts = []
            if self.c_dim > 0:
                parts.append(c.to(self.b4.conv.weight.dtype))
            if hasattr(self, "time_encoder"):
                parts.append(self.time_encoder(t))
            cmap = self.mapping(None, torch.cat(parts, dim=1))
        return self.b4(x, cmap).squeeze(1)
