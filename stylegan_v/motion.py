"""The motion path: noise -> motion codes every Δ frames -> v(t) for any real t >= 0.

Code j sits at time j·Δ and depends only on noise vectors j .. j + 2(k-1), so a
window of noise gives a window of codes; `motion_vectors` takes a `code_offset`
so that a renderer can work on such a window without the whole timeline.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .config import GeneratorConfig
from .layers import EqLRConv1d, FullyConnected


def time_encoder_buffers(dim: int, min_period: float, max_period: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Frequencies geometric in period, slowest first; phase scales Pmax / P_k."""
    periods = 2.0 ** np.linspace(math.log2(min_period), math.log2(max_period), dim)
    freqs = torch.from_numpy(2 * np.pi / periods).flip(0).float().unsqueeze(0)
    phase_scales = max_period / (2 * np.pi / freqs)
    return freqs, phase_scales


class AlignedTimeEncoder(nn.Module):
    """Acyclic Fourier features whose periodic part is pinned to zero at the code knots."""

    def __init__(self, code_dim: int, dim: int, min_period: float, max_period: float):
        super().__init__()
        freqs, phase_scales = time_encoder_buffers(dim, min_period, max_period)
        self.register_buffer("freqs", freqs)
        self.register_buffer("phase_scales", phase_scales)
        self.periods_predictor = FullyConnected(code_dim, dim, bias=False)
        self.phase_predictor = FullyConnected(code_dim, dim, bias=False)
        self.aligners_predictor = FullyConnected(code_dim, 2 * dim, bias=False)

    def forward(self, u_left: torch.Tensor, u_right: torch.Tensor, t: torch.Tensor, t_left: torch.Tensor,
                t_right: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """All inputs flattened to [N, ...]; times [N, 1] float32, alpha [N, 1]."""
        periods = self.periods_predictor(u_left).tanh() + 1
        phases = self.phase_predictor(u_left)
        freqs = self.freqs * periods
        phase = phases * self.phase_scales

        def encode(tau: torch.Tensor) -> torch.Tensor:
            angle = freqs * tau + phase
            return torch.cat([angle.sin(), angle.cos()], dim=1)

        periodic = encode(t) - ((1 - alpha) * encode(t_left) + alpha * encode(t_right))
        aligners = (1 - alpha) * self.aligners_predictor(u_left) + alpha * self.aligners_predictor(u_right)
        return periodic + aligners


class MotionEncoder(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.c_dim = cfg.c_dim
        self.z_dim = cfg.motion_z_dim
        self.distance = cfg.motion_z_distance
        self.max_num_frames = cfg.max_num_frames
        self.kernel_size = cfg.motion_kernel_size
        self.time_encoder = AlignedTimeEncoder(cfg.motion_code_dim, cfg.time_enc_dim,
                                               cfg.min_period_len, cfg.max_period_len)
        self.conv = nn.Sequential(
            EqLRConv1d(cfg.motion_z_dim + cfg.c_dim, cfg.motion_code_dim, cfg.motion_kernel_size, lr_multiplier=0.01),
            EqLRConv1d(cfg.motion_code_dim, cfg.motion_code_dim, cfg.motion_kernel_size, lr_multiplier=0.01),
        )

    @property
    def receptive_field(self) -> int:
        """Noise vectors consumed per code (code j reads noise j .. j + receptive_field - 1)."""
        return 2 * (self.kernel_size - 1) + 1

    def num_codes(self, max_t: float) -> int:
        """Codes the original draws for a batch whose largest timestamp is `max_t`."""
        return math.ceil(max(self.max_num_frames - 1, max_t) / self.distance) + 2

    def num_noise(self, max_t: float) -> int:
        return self.num_codes(max_t) + self.receptive_field - 1

    def codes(self, noise: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """noise [B, L_raw, z_dim] -> codes [B, L_raw - 2(k-1), code_dim]."""
        x = noise.to(torch.float32)
        if self.c_dim > 0:
            x = torch.cat([x, c.to(torch.float32).unsqueeze(1).expand(-1, x.shape[1], -1)], dim=2)
        return self.conv(x.transpose(1, 2)).transpose(1, 2)

    def motion_vectors(self, codes: torch.Tensor, t: torch.Tensor, code_offset: int = 0,
                       check_range: bool = True) -> torch.Tensor:
        """v(t) for t [B, F] (dataset frames, >= 0) -> [B*F, v_dim], video-major.

        `codes[:, j]` holds code number `code_offset + j`. `check_range` reads the indices
        back to the host to give a clear error; callers that sized the codes from a
        host-side bound (the trainer) switch it off to keep the GPU pipeline free of syncs.
        """
        if t.ndim != 2 or t.shape[0] != codes.shape[0]:
            raise ValueError(f"t must be [B, F] with B={codes.shape[0]}, got {list(t.shape)}")
        b, f = t.shape
        dist = self.distance
        t = t.reshape(-1)  # reshape, not view: a column slice is fine here
        left = torch.div(t, dist, rounding_mode="floor").long() - code_offset
        if check_range and left.numel() and (int(left.min()) < 0 or int(left.max()) + 1 >= codes.shape[1]):
            raise ValueError("timestamps fall outside the motion codes provided")
        rem = torch.remainder(t, dist)
        alpha = (rem / dist).to(torch.float32).unsqueeze(1)
        t_left = (t - rem).to(torch.float32).unsqueeze(1)
        t_right = t_left + dist
        video = torch.arange(b, device=codes.device).repeat_interleave(f)
        u_left = codes[video, left]
        u_right = codes[video, left + 1]
        return self.time_encoder(u_left, u_right, t.to(torch.float32).unsqueeze(1), t_left, t_right, alpha)

    def forward(self, t: torch.Tensor, c: torch.Tensor | None = None, motion_z: torch.Tensor | None = None,
                max_t: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The original's motion encoder call: returns (motion_v [B*F, v_dim], motion_z used).

        `max_t`, when the caller knows it on the host (an upper bound of t), avoids reading
        t back from the device; without it the original's `t.max()` is used.
        """
        b = t.shape[0]
        num_noise = self.num_noise(float(t.max()) if max_t is None else float(max_t))
        if motion_z is None:
            device = c.device if c is not None else t.device
            motion_z = torch.randn(b, num_noise, self.z_dim, device=device)
        elif motion_z.shape[0] < b or motion_z.shape[1] < num_noise or motion_z.shape[2] < self.z_dim:
            raise ValueError(f"motion_z must be at least [{b}, {num_noise}, {self.z_dim}] for max t="
                             f"{float(t.max()):g}, got {list(motion_z.shape)}")
        motion_z = motion_z[:b, :num_noise, :self.z_dim]
        return self.motion_vectors(self.codes(motion_z, c), t, check_range=max_t is None), motion_z
