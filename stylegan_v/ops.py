"""Low-level operations of the StyleGAN2 family in pure PyTorch.

These replace the original's custom CUDA kernels (bias_act, upfirdn2d) with
reference semantics; conv2d_resample keeps the original's padding arithmetic so
that weights trained with it give identical results.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)
LRELU_SLOPE = 0.2


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, act: str = "linear",
             gain: float | None = None, clamp: float | None = None) -> torch.Tensor:
    """Bias (broadcast over dim 1), activation, gain, clamp — in that order."""
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
        gain = SQRT2 if gain is None else gain
    elif act != "linear":
        raise ValueError(f"unknown activation {act!r}")
    if gain is not None and gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def fir_filter(taps=(1, 3, 3, 1), device=None) -> torch.Tensor:
    """Separable low-pass as a normalised 2-D outer product (sums to 1)."""
    f = torch.as_tensor(taps, dtype=torch.float32, device=device)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1,
              padding: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = 1.0,
              flip_filter: bool = False) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative crops), FIR-filter, downsample.

    `padding` is (x0, x1, y0, y1) in the upsampled image's pixels.
    """
    n, c, h, w = x.shape
    px0, px1, py0, py1 = padding
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    layout = memory_layout(x)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    if min(px0, px1, py0, py1) < 0:
        # Crop, and copy in the activations' own layout: left as a strided view, the convolution
        # below would copy it into NCHW, which for a channels-last tensor is a slow transpose.
        x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
        x = x.contiguous(memory_format=layout)
    f = f.to(x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:  # true convolution = correlation with the flipped filter
        f = f.flip(list(range(f.ndim)))
    f = follow_layout(f[None, None].repeat(c, 1, 1, 1), x)
    x = F.conv2d(x, f, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    fw = f.shape[-1]
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    fw = f.shape[-1]
    p0, p1 = (fw - down + 1) // 2, (fw - down) // 2
    return upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))


def memory_layout(x: torch.Tensor) -> torch.memory_format:
    """channels_last for an NHWC-strided activation, else the default NCHW."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def follow_layout(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`w` in the memory layout of the activations `x`.

    On CPU (oneDNN) a convolution whose activations and weights are both channels-last runs
    2-10x faster than the same convolution in NCHW, and a mixed pair makes it convert one of them
    on every call; so a network switched to channels-last stays channels-last end to end.
    """
    return w.contiguous(memory_format=torch.channels_last) if memory_layout(x) == torch.channels_last else w


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    if not flip_weight:  # conv2d is correlation; flipping gives true convolution
        w = w.flip([2, 3])
    w = follow_layout(w, x)
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                    down: int = 1, padding: int = 0, groups: int = 1, flip_weight: bool = True) -> torch.Tensor:
    """2-D convolution with optional 2x FIR up/downsampling (StyleGAN2 padding conventions).

    Padding is expressed w.r.t. the upsampled image, as in the original.
    """
    out_channels, in_per_group, kh, kw = w.shape
    px0 = px1 = py0 = py1 = padding
    if f is not None:
        fw = f.shape[-1]
        if up > 1:
            px0 += (fw + up - 1) // 2
            px1 += (fw - up) // 2
            py0 += (fw + up - 1) // 2
            py1 += (fw - up) // 2
        if down > 1:
            px0 += (fw - down + 1) // 2
            px1 += (fw - down) // 2
            py0 += (fw - down + 1) // 2
            py1 += (fw - down) // 2

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=(px0, px1, py0, py1))
        return _conv(x, w, groups=groups, flip_weight=flip_weight)

    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=(px0, px1, py0, py1))
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if up > 1:
        # Transposed convolution does the zero insertion; the FIR then low-passes.
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw)
            w = w.transpose(1, 2).reshape(groups * in_per_group, out_channels // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up * up)
        if down > 1:
            x = upfirdn2d(x, f, down=down)
        return x

    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    x = upfirdn2d(x, f if up > 1 else _identity_filter(x), up=up, padding=(px0, px1, py0, py1), gain=up * up)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d(x, f, down=down)
    return x


def _identity_filter(x: torch.Tensor) -> torch.Tensor:
    return torch.ones([1, 1], dtype=torch.float32, device=x.device)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, up: int = 1,
                     padding: int = 0, resample_filter: torch.Tensor | None = None, demodulate: bool = True,
                     flip_weight: bool = True, fused: bool = True) -> torch.Tensor:
    """StyleGAN2 weight modulation/demodulation.

    x [S*F, C, H, W] and styles [S, C]: each style serves F consecutive samples (the frames of
    one video share its w), so the modulated weights are computed once per style, not per frame.
    fused=True runs one convolution with per-style weights (grouped when S > 1); otherwise the
    activations are scaled before and after a shared convolution (same function, different
    rounding; the original picks per block, see SynthesisBlock).
    """
    n = styles.shape[0]
    per = x.shape[0] // n
    if per * n != x.shape[0]:
        raise ValueError(f"{x.shape[0]} samples cannot share {n} styles evenly")
    out_ch, in_ch, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:
        # fp16 range protection, computed in float32 like the original.
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.abs().amax(dim=1, keepdim=True)

    w = None
    dcoefs = None
    if demodulate or fused:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    if demodulate and fused:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)

    if not fused:
        x = x * styles.to(x.dtype).repeat_interleave(per, dim=0).reshape(n * per, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, padding=padding,
                            flip_weight=flip_weight)
        if demodulate:
            x = x * dcoefs.to(x.dtype).repeat_interleave(per, dim=0).reshape(n * per, -1, 1, 1)
        return x

    if n == 1:  # one weight for the whole batch: an ordinary convolution, in the activations' layout
        return conv2d_resample(x, w[0].to(x.dtype), f=resample_filter, up=up, padding=padding,
                               flip_weight=flip_weight)
    # Styles as groups, the samples that share a style as the batch.
    x = x.reshape(n, per, *x.shape[1:]).transpose(0, 1).reshape(per, n * in_ch, *x.shape[2:])
    x = conv2d_resample(x, w.reshape(-1, in_ch, kh, kw).to(x.dtype), f=resample_filter, up=up, padding=padding,
                        groups=n, flip_weight=flip_weight)
    return x.reshape(per, n, out_ch, *x.shape[2:]).transpose(0, 1).reshape(n * per, out_ch, *x.shape[2:])
