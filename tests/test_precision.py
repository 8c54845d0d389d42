"""Reduced precision in the top `num_fp16_res` blocks (as the original) stays close to float32."""

from __future__ import annotations

import pytest
import torch

import stylegan_v

# Max abs difference on outputs in ~[-1, 1]; the spec measured ~1.2e-2 for the original's fp16 path.
TOLERANCE = {"float16": 2e-2, "bfloat16": 8e-2}


@pytest.fixture(scope="module")
def official(official_pkl, reference):
    # Fixtures, not `from tests.conftest import ...`: with the ComfyUI host on sys.path, `tests`
    # can name ComfyUI's own test package.
    return stylegan_v.load(official_pkl), stylegan_v.load(official_pkl, "D"), reference


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
@pytest.mark.parametrize("fused", [True, False])
def test_generator_precision_close_to_float32(official, precision, fused):
    G, _, ref = official
    G.set_precision(precision)
    try:
        blocks = [b for b in G.synthesis.blocks() if b.reduced_precision]
        assert blocks and all(b.dtype() != torch.float32 for b in blocks)
        out = G(ref["z"], ref["c"], ref["t"], motion_z=ref["motion_z"], fused_modconv=fused)
        assert out.dtype == torch.float32 and torch.isfinite(out).all()
        err = (out - ref["frames"]).abs().max().item()
        assert 0 < err < TOLERANCE[precision], err  # > 0: the reduced path really ran
        # force_fp32 restores the exact float32 function.
        exact = G(ref["z"], ref["c"], ref["t"], motion_z=ref["motion_z"], force_fp32=True)
        assert (exact - ref["frames"]).abs().max() < 1e-4
    finally:
        G.set_precision("float32")


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_discriminator_precision_close_to_float32(official, precision):
    _, D, ref = official
    D.set_precision(precision)
    try:
        logits = D(ref["d_images"], ref["c"], ref["d_t"])
        err = (logits - ref["d_logits"]).abs().max().item()
        assert 0 < err < 0.05 * ref["d_logits"].abs().max().item() + 1e-2, err
    finally:
        D.set_precision("float32")


def test_bad_precision_name(tiny_generator):
    with pytest.raises(ValueError, match="precision must be one of"):
        tiny_generator.set_precision("float8")
