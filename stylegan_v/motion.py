"""The motion path: noise -> motion codes every Δ frames -> v(t) for any real t >= 0.

Code j sits at time j·Δ and depends only on noise vectors j .. j + 2(k-1), so a
window of noise gives a window of codes; `motion_vectors` takes a `code_offset`
so that a renderer can work on such a window without the whole timeline.

Precision. The time encoder's angles grow with t (freqs·periods·t reaches ~600 rad
at t = 1500 for the smallest period 16, ~4e5 at t = 10^6), and float32 carries them
with an absolute error of about eps·angle. The original runs this path in float32,
so its motion vectors are only defined to ~1e-4 at t = 1500 and drift visibly past
t ~ 10^5. The path costs almost nothing next to synthesis, so by default it runs
in float64 (noise in, float32 v(t) out): then v(t) is the exact function to float32
output rounding at any t a renderer meets. `compute_dtype = float32` reproduces the
original's rounding and is what training uses (t stays below the clip length there,
and float64 is slow on most GPUs); devices without float64 (MPS) fall back to it.
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
        """All inputs flattened to [N, ...]; times and alpha [N, 1] in the codes' dtype."""
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
        self.compute_dtype = torch.float64  # see the module docstring; Generator.set_motion_precision
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

    def dtype(self, device: torch.device) -> torch.dtype:
        """The dtype the motion path runs in on `device` (float32 where float64 is unsupported)."""
        return torch.float32 if device.type == "mps" else self.compute_dtype

    def codes(self, noise: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """noise [B, L_raw, z_dim] -> codes [B, L_raw - 2(k-1), code_dim] in `dtype(device)`."""
        dtype = self.dtype(noise.device)
        x = noise.to(dtype)
        if self.c_dim > 0:
            x = torch.cat([x, c.to(dtype).unsqueeze(1).expand(-1, x.shape[1], -1)], dim=2)
        return self.conv(x.transpose(1, 2)).transpose(1, 2)

    def motion_vectors(self, codes: torch.Tensor, t: torch.Tensor, code_offset: int = 0,
                       check_range: bool = True, code_index: torch.Tensor | None = None) -> torch.Tensor:
        """v(t) for t [B, F] (dataset frames, >= 0) -> [B*F, v_dim], video-major, in the network's dtype.

        `codes[:, j]` holds code number `code_offset + j`. `check_range` reads the indices
        back to the host to give a clear error; callers that sized the codes from a
        host-side bound (the trainer) switch it off to keep the GPU pipeline free of syncs.
        `code_index` [B, F], for codes gathered from several windows, says where each
        timestamp's left code (number floor(t/Δ)) sits in `codes`, its right one following it.
        """
        if t.ndim != 2 or t.shape[0] != codes.shape[0]:
            raise ValueError(f"t must be [B, F] with B={codes.shape[0]}, got {list(t.shape)}")
        b, f = t.shape
        dist = self.distance
        dtype = self.dtype(codes.device)
        codes = codes.to(dtype)
        t = t.reshape(-1)  # reshape, not view: a column slice is fine here
        left = (torch.div(t, dist, rounding_mode="floor").long() - code_offset if code_index is None
                else code_index.reshape(-1).to(codes.device))
        if check_range and left.numel() and (int(left.min()) < 0 or int(left.max()) + 1 >= codes.shape[1]):
            raise ValueError("timestamps fall outside the motion codes provided")
        # The original: alpha = (t mod Δ)/Δ and t_left = t - (t mod Δ) in t's dtype, then every
        # time cast to the path's dtype (float32 there).
        rem = torch.remainder(t, dist)
        alpha = (rem / dist).to(dtype).unsqueeze(1)
        t_left = (t - rem).to(dtype).unsqueeze(1)
        t_right = t_left + dist
        video = torch.arange(b, device=codes.device).repeat_interleave(f)
        u_left = codes[video, left]
        u_right = codes[video, left + 1]
        v = self.time_encoder(u_left, u_right, t.to(dtype).unsqueeze(1), t_left, t_right, alpha)
        return v.to(self.conv[0].weight.dtype)  # the network's dtype, whatever the path ran in

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
