"""ADA augmentation ('bgc' pipeline) with video-consistent parameters, and the ADA controller.

The pipeline follows StyleGAN2-ADA's AugmentPipe with the 'bgc' set StyleGAN-V trains with:
pixel blitting (xflip, rotate90, integer translation), general geometric
transforms (isotropic scale, rotation split pre/post anisotropic scaling,
fractional translation) executed with one grid_sample between a sym6 wavelet
x2 up- and down-sampling on a reflect-padded image, then colour transforms
(brightness, contrast, luma flip, hue rotation, saturation) as one 4x4 matrix.

Video consistency: frames arrive flattened video-major [B*F, C, H, W]; one set
of random parameters is drawn per video and applied to all of its F frames, so
augmentation never introduces motion. Everything is differentiable w.r.t. the
input images (R1 is computed through the pipe).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

# Low-pass decomposition filter of the Symlet-6 wavelet (standard coefficients).
SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)


@dataclass(frozen=True)
class AugmentConfig:
    """Probability multipliers (0 disables) and strengths; defaults are the 'bgc' preset."""

    xflip: float = 1.0
    rotate90: float = 1.0
    xint: float = 1.0
    xint_max: float = 0.125       # integer translation range, fraction of image size
    scale: float = 1.0
    rotate: float = 1.0
    aniso: float = 1.0
    xfrac: float = 1.0
    scale_std: float = 0.2        # log2 std of isotropic scaling
    rotate_max: float = 1.0       # 1 = full circle
    aniso_std: float = 0.2        # log2 std of anisotropic scaling
    xfrac_std: float = 0.125      # std of fractional translation, fraction of image size
    brightness: float = 1.0
    contrast: float = 1.0
    lumaflip: float = 1.0
    hue: float = 1.0
    saturation: float = 1.0
    brightness_std: float = 0.2
    contrast_std: float = 0.5     # log2 std
    hue_max: float = 1.0          # 1 = full circle
    saturation_std: float = 1.0   # log2 std


BGC = AugmentConfig()
BG = AugmentConfig(brightness=0.0, contrast=0.0, lumaflip=0.0, hue=0.0, saturation=0.0)


# ---- homogeneous transform matrices, batched over the leading dimension ----------------

def _matrix(rows: list[list], ref: torch.Tensor) -> torch.Tensor:
    """Stack scalar/tensor entries into [*ref.shape, len(rows), len(rows[0])]."""
    entries = [e if isinstance(e, torch.Tensor) else torch.full_like(ref, float(e)) for row in rows for e in row]
    return torch.stack(entries, dim=-1).reshape(*ref.shape, len(rows), len(rows[0]))


def translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def rotate2d(theta: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def translate3d(tx: torch.Tensor, ty: torch.Tensor, tz: torch.Tensor) -> torch.Tensor:
    return _matrix([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]], tx)


def scale3d(sx: torch.Tensor, sy: torch.Tensor, sz: torch.Tensor) -> torch.Tensor:
    return _matrix([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]], sx)


def rotate3d(axis: tuple[float, float, float], theta: torch.Tensor) -> torch.Tensor:
    """Rotation by theta around the unit `axis` (Rodrigues), homogeneous 4x4."""
    vx, vy, vz = axis
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    return _matrix([
        [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
        [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
        [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
        [0, 0, 0, 1],
    ], theta)


# ---- separable x2 FIR resampling -------------------------------------------------------
# Same results as StyleGAN2's upsample2d/downsample2d (upfirdn2d with a separable filter):
# upsampling = zero insertion, pad ((K+1)//2, (K-2)//2), true convolution, gain 2 per axis;
# downsampling = pad, correlation (flip_filter=True), keep every second sample. Done
# per axis as a single-channel conv_transpose1d / strided conv1d, which skips the
# inserted zeros and the discarded outputs (grouped 2-D convs are very slow on CPU).

def _along_last_axis(x: torch.Tensor, op) -> torch.Tensor:
    lead = x.shape[:-1]
    y = op(x.reshape(-1, 1, x.shape[-1]))
    return y.reshape(*lead, y.shape[-1])


def _up2_1d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    taps = f.numel()
    length = x.shape[-1]
    start = taps - 1 - (taps + 1) // 2  # where the reference's padded window begins
    weight = (f * 2.0).reshape(1, 1, taps)
    return _along_last_axis(x, lambda v: F.conv_transpose1d(v, weight, stride=2)[..., start : start + 2 * length])


def _down2_1d(x: torch.Tensor, f: torch.Tensor, crop: int) -> torch.Tensor:
    taps = f.numel()
    pad0, pad1 = (taps - 1) // 2 - crop, (taps - 2) // 2 - crop
    x = F.pad(x, [max(pad0, 0), max(pad1, 0)])
    x = x[..., max(-pad0, 0) : x.shape[-1] - max(-pad1, 0)]
    weight = f.reshape(1, 1, taps)
    return _along_last_axis(x, lambda v: F.conv1d(v, weight, stride=2))


def _upsample2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    x = _up2_1d(x, f)
    return _up2_1d(x.transpose(-1, -2), f).transpose(-1, -2)


def _downsample2x(x: torch.Tensor, f: torch.Tensor, crop: int) -> torch.Tensor:
    x = _down2_1d(x, f, crop)
    return _down2_1d(x.transpose(-1, -2), f, crop).transpose(-1, -2)


def require_twice_differentiable_grid_sample() -> None:
    """R1 differentiates D's input gradient through this pipe's grid_sample, which needs that
    op's second derivative: torch 2.12 has it, 2.10 and older do not. Refuse before training
    starts rather than when ADA first turns the geometric step on."""
    x = torch.ones(1, 1, 2, 2, requires_grad=True)
    y = F.grid_sample(x, torch.full((1, 1, 1, 2), 0.25), align_corners=False)
    (grad,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    try:
        grad.sum().backward()
    except RuntimeError as e:
        raise ValueError(f"training with augmentation needs a newer torch (2.12 or later) than {torch.__version__}: "
                         f"{e}; upgrade torch, or train with --aug none") from None


class AugmentPipe(torch.nn.Module):
    """forward(images [B*F, C, H, W], num_frames=F) -> same shape, C in {1, 3}.

    `p` (buffer) scales every probability; ADA adjusts it. At p = 0 the output
    is the input, exactly.
    """

    def __init__(self, cfg: AugmentConfig = BGC, p: float = 0.0):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("p", torch.tensor(float(p)))
        f = torch.tensor(SYM6, dtype=torch.float32)
        self.register_buffer("Hz_geom", f / f.sum())  # same name/value as the original pipe's buffer

    def extra_repr(self) -> str:
        active = [k for k, v in asdict(self.cfg).items() if v and not k.endswith(("_max", "_std"))]
        return "ops=" + ",".join(active)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Original snapshots also carry `Hz_fbank` (the image-space filter bank of the
        # unused 'filter' augmentation); it is a constant, so drop it instead of failing.
        state_dict.pop(prefix + "Hz_fbank", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, images: torch.Tensor, num_frames: int = 1, generator: torch.Generator | None = None):
        # Transform math runs in the input's precision even inside an autocast region
        # (bf16 colour matrices would visibly quantise the image).
        with torch.autocast(device_type=images.device.type, enabled=False):
            return self._augment(images, num_frames, generator)

    def _augment(self, images: torch.Tensor, num_frames: int, generator: torch.Generator | None) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"AugmentPipe expects [B*F, C, H, W], got shape {tuple(images.shape)}")
        total, channels, height, width = images.shape
        if num_frames < 1 or total % num_frames:
            raise ValueError(f"batch of {total} frames is not a whole number of {num_frames}-frame videos")
        if channels not in (1, 3):
            raise ValueError(f"AugmentPipe supports 1 or 3 channels, got {channels}")
        videos = total // num_frames
        device = images.device
        cfg = self.cfg
        p = self.p.to(device=device, dtype=torch.float32)

        def rand(*shape):
            return torch.rand(shape, device=device, generator=generator)

        def randn(*shape):
            return torch.randn(shape, device=device, generator=generator)

        def gate(shape, prob) -> torch.Tensor:
            return rand(*shape) < prob

        # ---- geometric parameters: G_inv maps output pixel -> input pixel --------------
        eye3 = torch.eye(3, device=device).expand(videos, 3, 3)
        G_inv = eye3
        zeros, ones = torch.zeros(videos, device=device), torch.ones(videos, device=device)
        if cfg.xflip > 0:
            i = torch.floor(rand(videos) * 2)
            i = torch.where(gate((videos,), cfg.xflip * p), i, zeros)
            G_inv = G_inv @ scale2d(1 / (1 - 2 * i), ones)
        if cfg.rotate90 > 0:
            i = torch.floor(rand(videos) * 4)
            i = torch.where(gate((videos,), cfg.rotate90 * p), i, zeros)
            G_inv = G_inv @ rotate2d(math.pi / 2 * i)
        if cfg.xint > 0:
            t = (rand(videos, 2) * 2 - 1) * cfg.xint_max
            t = torch.where(gate((videos, 1), cfg.xint * p), t, torch.zeros_like(t))
            G_inv = G_inv @ translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height))
        if cfg.scale > 0:
            s = torch.exp2(randn(videos) * cfg.scale_std)
            s = torch.where(gate((videos,), cfg.scale * p), s, ones)
            G_inv = G_inv @ scale2d(1 / s, 1 / s)
        # Rotation is split before/after anisotropic scaling; P(pre or post) = rotate * p.
        p_rot = 1 - torch.sqrt((1 - cfg.rotate * p).clamp(0, 1))
        if cfg.rotate > 0:
            theta = (rand(videos) * 2 - 1) * math.pi * cfg.rotate_max
            theta = torch.where(gate((videos,), p_rot), theta, zeros)
            G_inv = G_inv @ rotate2d(theta)
        if cfg.aniso > 0:
            s = torch.exp2(randn(videos) * cfg.aniso_std)
            s = torch.where(gate((videos,), cfg.aniso * p), s, ones)
            G_inv = G_inv @ scale2d(1 / s, s)
        if cfg.rotate > 0:
            theta = (rand(videos) * 2 - 1) * math.pi * cfg.rotate_max
            theta = torch.where(gate((videos,), p_rot), theta, zeros)
            G_inv = G_inv @ rotate2d(theta)
        if cfg.xfrac > 0:
            t = randn(videos, 2) * cfg.xfrac_std
            t = torch.where(gate((videos, 1), cfg.xfrac * p), t, torch.zeros_like(t))
            G_inv = G_inv @ translate2d(-t[:, 0] * width, -t[:, 1] * height)

        if G_inv is not eye3:
            images = self._warp(images, G_inv.repeat_interleave(num_frames, dim=0))

        # ---- colour parameters: C maps input colour -> output colour ------------------
        eye4 = torch.eye(4, device=device).expand(videos, 4, 4)
        C = eye4
        luma_axis = (1 / math.sqrt(3),) * 3
        luma = _constant((*luma_axis, 0.0), device)
        luma_outer = torch.outer(luma, luma)
        eye = torch.eye(4, device=device)
        if cfg.brightness > 0:
            b = randn(videos) * cfg.brightness_std
            b = torch.where(gate((videos,), cfg.brightness * p), b, zeros)
            C = translate3d(b, b, b) @ C
        if cfg.contrast > 0:
            c = torch.exp2(randn(videos) * cfg.contrast_std)
            c = torch.where(gate((videos,), cfg.contrast * p), c, ones)
            C = scale3d(c, c, c) @ C
        if cfg.lumaflip > 0:
            i = torch.floor(rand(videos, 1, 1) * 2)
            i = torch.where(gate((videos, 1, 1), cfg.lumaflip * p), i, torch.zeros_like(i))
            C = (eye - 2 * luma_outer * i) @ C  # Householder reflection
        if cfg.hue > 0 and channels > 1:
            theta = (rand(videos) * 2 - 1) * math.pi * cfg.hue_max
            theta = torch.where(gate((videos,), cfg.hue * p), theta, zeros)
            C = rotate3d(luma_axis, theta) @ C
        if cfg.saturation > 0 and channels > 1:
            s = torch.exp2(randn(videos, 1, 1) * cfg.saturation_std)
            s = torch.where(gate((videos, 1, 1), cfg.saturation * p), s, torch.ones_like(s))
            # = luma_outer + (eye - luma_outer) * s, written so that s = 1 gives exactly eye.
            C = (eye + (eye - luma_outer) * (s - 1)) @ C

        if C is not eye4:
            C = C.repeat_interleave(num_frames, dim=0).to(images.dtype)
            flat = images.reshape(total, channels, height * width)
            if channels == 3:
                flat = C[:, :3, :3] @ flat + C[:, :3, 3:]
            else:
                C = C[:, :3, :].mean(dim=1, keepdim=True)
                flat = flat * C[:, :, :3].sum(dim=2, keepdim=True) + C[:, :, 3:]
            images = flat.reshape(total, channels, height, width)
        return images

    def _warp(self, images: torch.Tensor, G_inv: torch.Tensor) -> torch.Tensor:
        """Resample every frame with its own inverse transform [N, 3, 3] (pixel units, centred)."""
        n, channels, height, width = images.shape
        device = images.device
        cx, cy = (width - 1) / 2, (height - 1) / 2
        corners = _constant(((-cx, -cy, 1.0), (cx, -cy, 1.0), (cx, cy, 1.0), (-cx, cy, 1.0)), device)
        corners = G_inv @ corners.t()  # [N, xyz, corner]
        filter_pad = self.Hz_geom.numel() // 4
        # Pad just enough (reflect) that every sampled point plus the filter footprint is real data.
        margin = corners[:, :2, :].permute(1, 0, 2).flatten(1)
        margin = torch.cat([-margin, margin]).max(dim=1).values  # [x0, y0, x1, y1]
        margin = margin + _constant((filter_pad * 2 - cx, filter_pad * 2 - cy) * 2, device)
        margin = margin.clamp(min=0).minimum(_constant((width - 1.0, height - 1.0) * 2, device))
        # One host sync (the original has the same one): padding sizes and the identity test.
        is_identity = (G_inv == torch.eye(3, device=device)).all()
        stats = torch.cat([margin.ceil(), is_identity.float()[None]]).tolist()
        mx0, my0, mx1, my1 = (int(v) for v in stats[:4])
        if stats[4]:
            return images  # nothing drawn (e.g. p = 0): skip resampling so the output is exact

        images = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
        G_inv = translate2d(torch.full((n,), (mx0 - mx1) / 2, device=device), torch.full((n,), (my0 - my1) / 2, device=device)) @ G_inv

        f = self.Hz_geom.to(images.dtype)
        images = _upsample2x(images, f)
        S2, S2_inv = _diag3(2.0, 2.0, device), _diag3(0.5, 0.5, device)
        T, T_inv = _translate_const(-0.5, -0.5, device), _translate_const(0.5, 0.5, device)
        G_inv = S2 @ G_inv @ S2_inv
        G_inv = T @ G_inv @ T_inv

        out_shape = [n, channels, (height + filter_pad * 2) * 2, (width + filter_pad * 2) * 2]
        to_norm = _diag3(2 / images.shape[3], 2 / images.shape[2], device)
        from_norm = _diag3(out_shape[3] / 2, out_shape[2] / 2, device)
        G_inv = to_norm @ G_inv @ from_norm
        grid = F.affine_grid(G_inv[:, :2, :].to(images.dtype), out_shape, align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return _downsample2x(images, f, crop=filter_pad * 2)


_CONSTANTS: dict[tuple, torch.Tensor] = {}


def _constant(values: tuple, device: torch.device) -> torch.Tensor:
    """A cached float32 tensor: building one from Python values on a GPU is a blocking copy."""
    key = (values, str(device))
    tensor = _CONSTANTS.get(key)
    if tensor is None:
        if len(_CONSTANTS) > 256:
            _CONSTANTS.clear()
        tensor = _CONSTANTS[key] = torch.tensor(values, dtype=torch.float32, device=device)
    return tensor


def _diag3(sx: float, sy: float, device) -> torch.Tensor:
    return _constant(((sx, 0.0, 0.0), (0.0, sy, 0.0), (0.0, 0.0, 1.0)), device)


def _translate_const(tx: float, ty: float, device) -> torch.Tensor:
    return _constant(((1.0, 0.0, tx), (0.0, 1.0, ty), (0.0, 0.0, 1.0)), device)


class AdaController:
    """Adaptive augmentation strength: ADA's controller, steering p toward a target sign of D's real logits.

    Call `accumulate(real_logits)` whenever D scores reals: signs are summed on
    the logits' device, no host sync. Call `step(p)` once per training
    iteration: every `interval`-th call it reads the accumulated mean sign r_t
    (the only sync; all-reduced over ranks when torch.distributed is up) and
    moves p in place by sign(r_t - target) * batch_size * interval / (ada_kimg * 1000),
    floored at 0. Returns r_t on adjustment steps, else None.
    """

    def __init__(self, batch_size: int, target: float = 0.6, interval: int = 4, ada_kimg: float = 100.0):
        if batch_size < 1 or interval < 1 or ada_kimg <= 0:
            raise ValueError(f"AdaController needs batch_size >= 1, interval >= 1, ada_kimg > 0 (got {batch_size}, {interval}, {ada_kimg})")
        self.batch_size = batch_size  # total videos per iteration over all ranks
        self.target = target
        self.interval = interval
        self.ada_kimg = ada_kimg
        self.calls = 0
        self._sign_sum: torch.Tensor | None = None  # stays on the logits' device
        self._count = 0                              # known on the host without a sync

    @property
    def step_size(self) -> float:
        return self.batch_size * self.interval / (self.ada_kimg * 1000)

    def accumulate(self, real_logits: torch.Tensor) -> None:
        signs = real_logits.detach().float().sign().sum()
        self._sign_sum = signs if self._sign_sum is None else self._sign_sum + signs
        self._count += real_logits.numel()

    def step(self, p: torch.Tensor) -> float | None:
        self.calls += 1
        if self.calls % self.interval != 0:
            return None
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if self._sign_sum is None:
            if not distributed:
                return None
            # Every rank must join the all-reduce, even one that saw no reals this interval.
            self._sign_sum = torch.zeros([], device=p.device)
        stats = torch.stack([self._sign_sum, torch.full_like(self._sign_sum, float(self._count))])
        if distributed:
            torch.distributed.all_reduce(stats)
        total, count = stats.tolist()
        self._sign_sum, self._count = None, 0
        if count == 0:
            return None
        r_t = total / count
        adjust = float(np.sign(r_t - self.target)) * self.step_size
        with torch.no_grad():
            p.copy_((p + adjust).clamp(min=0))
        return r_t

    def state_dict(self) -> dict:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.calls = int(state["calls"])
