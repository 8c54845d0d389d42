"""ADA augmentation pipe (video-consistent) and the ADA controller."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from training.augment import BGC, SYM6, AdaController, AugmentConfig, AugmentPipe, _downsample2x, _upsample2x

OFF = AugmentConfig(**{name: 0.0 for name in [
    "xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
    "brightness", "contrast", "lumaflip", "hue", "saturation",
]})


def smooth_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 5, 5, generator=g) * 2 - 1
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_defaults_are_the_bgc_strengths():
    assert (BGC.xint_max, BGC.scale_std, BGC.rotate_max, BGC.aniso_std, BGC.xfrac_std) == (0.125, 0.2, 1.0, 0.2, 0.125)
    assert (BGC.brightness_std, BGC.contrast_std, BGC.hue_max, BGC.saturation_std) == (0.2, 0.5, 1.0, 1.0)
    pipe = AugmentPipe()
    assert float(pipe.p) == 0.0 and set(dict(pipe.named_buffers())) == {"p", "Hz_geom"}
    # sym6 is an orthonormal low-pass: taps sum to sqrt(2), unit energy, orthogonal to even shifts.
    h = torch.tensor(SYM6, dtype=torch.float64)
    assert math.isclose(h.sum().item(), math.sqrt(2), rel_tol=1e-12)
    for shift in range(0, 12, 2):
        assert math.isclose((h[shift:] * h[: 12 - shift]).sum().item(), float(shift == 0), abs_tol=1e-10)


def reference_upfirdn2d(x, f, up, down, pad, flip, gain):
    """Textbook upfirdn: zero insertion, padding, separable 2-D convolution, decimation."""
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    x = x[:, :, max(-p0, 0) : x.shape[2] - max(-p1, 0), max(-p0, 0) : x.shape[3] - max(-p1, 0)]
    f = f * gain**0.5
    if not flip:
        f = f.flip(0)
    taps = f.reshape(1, 1, 1, -1).expand(c, 1, 1, -1)
    x = F.conv2d(F.conv2d(x, taps, groups=c), taps.transpose(2, 3), groups=c)
    return x[:, :, ::down, ::down]


def test_resampling_matches_reference_upfirdn2d():
    f = torch.tensor(SYM6, dtype=torch.float64)
    f = f / f.sum()
    x = torch.randn(2, 3, 10, 14, dtype=torch.float64)
    # StyleGAN2 upsample2d(up=2): padding ((K+1)//2, (K-2)//2), gain up**2.
    assert torch.allclose(_upsample2x(x, f), reference_upfirdn2d(x, f, 2, 1, (6, 5), False, 4.0), atol=1e-12)
    # downsample2d(down=2, padding=-6, flip_filter=True): padding (5-6, 5-6).
    y = torch.randn(2, 3, 44, 52, dtype=torch.float64)
    assert torch.allclose(_downsample2x(y, f, 6), reference_upfirdn2d(y, f, 1, 2, (-1, -1), True, 1.0), atol=1e-12)
    # The orthogonal wavelet pair reconstructs: down(up(x)) = x away from the borders.
    z = _downsample2x(_upsample2x(x, f), f, 0)
    assert torch.allclose(z[..., 3:-3, 3:-3], x[..., 3:-3, 3:-3], atol=1e-10)


def test_loads_original_state_with_filter_bank():
    pipe = AugmentPipe(BGC)
    state = {"p": torch.tensor(0.25), "Hz_geom": pipe.Hz_geom.clone(), "Hz_fbank": torch.zeros(4, 16)}
    pipe.load_state_dict(state)
    assert float(pipe.p) == 0.25
    with pytest.raises(RuntimeError, match="Unexpected"):
        pipe.load_state_dict({**state, "bogus": torch.zeros(1)})


def test_p_zero_is_exact_identity():
    pipe = AugmentPipe(BGC, p=0.0)
    x = torch.randn(6, 3, 16, 16)
    assert torch.equal(pipe(x, num_frames=3), x)
    grey = torch.randn(4, 1, 16, 16)
    assert torch.equal(pipe(grey, num_frames=2), grey)


def test_same_transform_for_every_frame_of_a_video():
    pipe = AugmentPipe(BGC, p=1.0)
    videos, frames = 6, 3
    # Each video: one image repeated over its frames -> outputs must repeat too.
    still = smooth_images(videos).repeat_interleave(frames, dim=0)
    out = pipe(still, num_frames=frames, generator=gen(0)).reshape(videos, frames, 3, 32, 32)
    assert torch.allclose(out, out[:, :1].expand_as(out), atol=1e-6)
    # Identical videos get different transforms at p = 1.
    same = smooth_images(1).expand(videos * frames, 3, 32, 32).contiguous()
    out = pipe(same, num_frames=frames, generator=gen(1)).reshape(videos, frames, 3, 32, 32)
    for i in range(videos):
        for j in range(i):
            assert (out[i, 0] - out[j, 0]).abs().mean() > 1e-3


def test_frames_of_a_clip_get_the_parameters_of_their_video():
    """Augmenting a 3-frame clip equals augmenting each frame alone with the same random draws."""
    pipe = AugmentPipe(BGC, p=1.0)
    clip = smooth_images(3, seed=4)  # three different frames of one video
    for seed in range(3):
        together = pipe(clip, num_frames=3, generator=gen(seed))
        for f in range(3):
            alone = pipe(clip[f : f + 1], num_frames=1, generator=gen(seed))
            assert torch.allclose(together[f : f + 1], alone, atol=1e-5)


def test_xflip_and_rotate90_are_blits():
    x = smooth_images(16, seed=2)
    flipped = AugmentPipe(replace(OFF, xflip=1.0), p=1.0)(x, generator=gen(3))
    kinds = []
    for b in range(16):
        # Not bit-exact: sym6 is not symmetric, so a mirrored image sees a small filter phase.
        err_id = (flipped[b] - x[b]).abs().mean().item()
        err_flip = (flipped[b] - x[b].flip(-1)).abs().mean().item()
        assert min(err_id, err_flip) < 0.02 < max(err_id, err_flip)
        kinds.append(err_flip < err_id)
    assert 0 < sum(kinds) < 16
    rotated = AugmentPipe(replace(OFF, rotate90=1.0), p=1.0)(x, generator=gen(4))
    seen = set()
    for b in range(16):
        errs = [(rotated[b] - torch.rot90(x[b], k, dims=(1, 2))).abs().mean().item() for k in range(4)]
        assert sorted(errs)[0] < 0.02 < sorted(errs)[1]
        seen.add(errs.index(min(errs)))
    assert len(seen) >= 3


def test_colour_transforms_keep_their_invariants():
    x = smooth_images(8, seed=5) * 0.5
    # Brightness adds one constant per video; contrast multiplies by one.
    out = AugmentPipe(replace(OFF, brightness=1.0), p=1.0)(x, generator=gen(0))
    delta = (out - x).flatten(1)
    assert torch.allclose(delta, delta[:, :1].expand_as(delta), atol=1e-5) and delta[:, 0].abs().max() > 0.01
    out = AugmentPipe(replace(OFF, contrast=1.0), p=1.0)(x, generator=gen(0))
    ratio = (out / x).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-3)
    # Hue rotation and saturation move colours around the grey axis: luma (RGB mean) is kept.
    for op in ("hue", "saturation"):
        out = AugmentPipe(replace(OFF, **{op: 1.0}), p=1.0)(x, generator=gen(1))
        assert torch.allclose(out.mean(dim=1), x.mean(dim=1), atol=1e-5)
        assert (out - x).abs().max() > 0.05
    # Luma flip negates the grey component and keeps the chroma.
    out = AugmentPipe(replace(OFF, lumaflip=1.0), p=1.0)(x, generator=gen(2))
    for b in range(8):
        grey_in, grey_out = x[b].mean(0), out[b].mean(0)
        assert torch.allclose(grey_out, grey_in, atol=1e-5) or torch.allclose(grey_out, -grey_in, atol=1e-5)
        assert torch.allclose(out[b] - grey_out, x[b] - grey_in, atol=1e-5)


def test_differentiable_including_r1_double_backward():
    pipe = AugmentPipe(BGC, p=1.0)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    weight = torch.randn(2, 3, 3, 3, requires_grad=True)
    logits = F.conv2d(pipe(x, num_frames=2, generator=gen(0)), weight).mean(dim=(1, 2, 3))
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    assert grad.abs().sum() > 0
    grad.square().sum().backward()  # the R1 pattern: gradient penalty back to D's weights
    assert weight.grad is not None and torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0
    # Inside a bf16 autocast region the pipe still computes in the input's float32.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pipe(x.detach(), num_frames=2, generator=gen(0))
    assert out.dtype == torch.float32
    assert torch.allclose(out, pipe(x.detach(), num_frames=2, generator=gen(0)))


def test_gradient_matches_finite_differences():
    # Directional check (cheaper than a full gradcheck): <w, J v> by autograd vs central differences.
    pipe = AugmentPipe(BGC, p=1.0).double()
    g = gen(9)
    x = torch.randn(4, 3, 12, 12, dtype=torch.float64, generator=g, requires_grad=True)
    v = torch.randn(x.shape, dtype=torch.float64, generator=g)
    w = torch.randn(x.shape, dtype=torch.float64, generator=g)

    def f(inp):
        return (pipe(inp, num_frames=2, generator=gen(7)) * w).sum()

    (grad,) = torch.autograd.grad(f(x), x)
    eps = 1e-6
    with torch.no_grad():
        numeric = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
    assert torch.isclose((grad * v).sum(), numeric, rtol=1e-6, atol=1e-8)


def test_bad_input_is_named():
    pipe = AugmentPipe(BGC, p=1.0)
    with pytest.raises(ValueError, match="whole number"):
        pipe(torch.zeros(5, 3, 8, 8), num_frames=3)
    with pytest.raises(ValueError, match="channels"):
        pipe(torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match=r"\[B\*F, C, H, W\]"):
        pipe(torch.zeros(3, 8, 8))


def test_ada_controller_moves_p_towards_target():
    batch, interval, kimg = 64, 4, 100
    ada = AdaController(batch_size=batch, target=0.6, interval=interval, ada_kimg=kimg)
    step = batch * interval / (kimg * 1000)
    p = torch.zeros([])
    # D too confident on reals (all positive) -> more augmentation.
    for i in range(interval - 1):
        ada.accumulate(torch.full([16], 2.0))
        assert ada.step(p) is None and float(p) == 0.0
    ada.accumulate(torch.full([16], 2.0))
    assert ada.step(p) == 1.0
    assert math.isclose(float(p), step, rel_tol=1e-6)
    for _ in range(2 * interval):
        ada.accumulate(torch.full([16], 2.0))
        ada.step(p)
    assert math.isclose(float(p), 3 * step, rel_tol=1e-5)
    # 70% positive -> mean sign 0.4 < 0.6 -> less augmentation, floored at 0.
    logits = torch.tensor([1.0] * 7 + [-1.0] * 3)
    results = []
    for _ in range(4 * interval):
        ada.accumulate(logits)
        results.append(ada.step(p))
    assert [r for r in results if r is not None] == pytest.approx([0.4] * 4)
    assert float(p) == 0.0


def test_ada_controller_accumulates_on_device_without_sync():
    ada = AdaController(batch_size=8)
    ada.accumulate(torch.tensor([1.0, -1.0, 3.0]))
    assert isinstance(ada._sign_sum, torch.Tensor) and ada._count == 3


def test_an_older_torch_is_refused_before_training_with_augmentation(monkeypatch):
    from training.augment import require_twice_differentiable_grid_sample

    require_twice_differentiable_grid_sample()  # the pinned torch has grid_sample's second derivative

    def no_second_derivative(*args, **kwargs):
        raise RuntimeError("derivative for aten::grid_sampler_2d_backward is not implemented")

    monkeypatch.setattr(torch.Tensor, "backward", no_second_derivative)
    with pytest.raises(ValueError, match=r"needs a newer torch \(2.12 or later\).*--aug none"):
        require_twice_differentiable_grid_sample()
