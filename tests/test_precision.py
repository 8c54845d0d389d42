"""Reduced precision in the top `num_fp16_res` blocks (as the original) stays close to the exact function.

Bounds are stated, not tuned: each modulated convolution that runs in reduced precision rounds
its weights and its output to that format (relative error u_p each: 2^-11 for float16, 2^-8 for
bfloat16); these errors add through the network with a gain we take as 1, so the frames err by
at most 2·L·u_p·max|x| for L reduced layers, on top of the float32 bound of the parity tests.
"""

from __future__ import annotations

import pytest
import torch

import stylegan_v
from parity_bounds import excess

UNIT_ROUNDOFF = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}

pytestmark = pytest.mark.usefixtures("threading")


@pytest.fixture(scope="module")
def official(official_pkl, reference):
    # Fixtures, not `from tests.conftest import ...`: with the ComfyUI host on sys.path, `tests`
    # can name ComfyUI's own test package.
    return stylegan_v.load(official_pkl), stylegan_v.load(official_pkl, "D"), reference


def reduced_layers(G) -> int:
    return sum(1 for block in G.synthesis.blocks() if block.reduced_precision
               for m in block.modules() if hasattr(m, "affine"))


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
@pytest.mark.parametrize("fused", [True, False])
def test_generator_precision_close_to_the_exact_function(official, oracle, precision, fused):
    G, _, ref = official
    o = oracle[1.0]
    G.set_precision(precision)
    try:
        blocks = [b for b in G.synthesis.blocks() if b.reduced_precision]
        assert blocks and all(b.dtype() != torch.float32 for b in blocks)
        out = G(ref["z"], ref["c"], ref["t"], motion_z=ref["motion_z"], fused_modconv=fused)
        assert out.dtype == torch.float32 and torch.isfinite(out).all()
        bound = o.frames_bound + 2 * reduced_layers(G) * UNIT_ROUNDOFF[precision] * o.frames.abs().max()
        assert excess(out, o.frames, bound) <= 1
        assert (out - ref["frames"]).abs().max() > 0  # the reduced path really ran
        # force_fp32 restores the float32 function.
        exact = G(ref["z"], ref["c"], ref["t"], motion_z=ref["motion_z"], force_fp32=True)
        assert excess(exact, o.frames, o.frames_bound) <= 1
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
