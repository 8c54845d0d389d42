"""Our generator and discriminator compute the original's function.

The fixture's reference outputs were computed by the original code in float32, so they carry
its rounding; ours carry our own. Both are compared with the same network evaluated in float64
(the oracle), within float32 error bounds derived in `parity_bounds` (angle magnitudes at each
t times u times a stated factor, carried to the frames through the float64 Jacobian). The tests
run with 1 and with 2 threads and under deterministic algorithms: none of them may depend on
one machine's rounding.
"""

from __future__ import annotations

import copy

import pytest
import torch
from parity_bounds import (
    FLOOR_ROUNDINGS,
    NEAR_T_FRAMES,
    NEAR_T_MOTION,
    U32,
    excess,
    float64_copy,
    generator_oracle,
    layer_stack_floor,
    motion_oracle,
)

import stylegan_v
from stylegan_v.ops import memory_layout

pytestmark = pytest.mark.usefixtures("threading")


@pytest.fixture(scope="module", params=["pkl", "safetensors"])
def nets(request, official_pkl, tmp_path_factory):
    if request.param == "pkl":
        path = official_pkl
    else:
        path = tmp_path_factory.mktemp("conv") / "official_tiny.safetensors"
        stylegan_v.convert_pickle(official_pkl, path)
    return stylegan_v.load(path, "G_ema"), stylegan_v.load(path, "D")


def near(reference) -> torch.Tensor:
    """Frames whose t lies within the training clip length, video-major [B*F]."""
    return (reference["t"] <= 1024).reshape(-1)


def test_the_fixture_covers_near_and_far_times(reference):
    t = reference["t"]
    assert (t.frac() != 0).any() and near(reference).any() and (t > 1024).any()


def test_the_original_is_within_the_float32_bound_of_the_exact_function(oracle, reference):
    """The check that catches a wrong formula: the original's outputs vs our float64 oracle."""
    o = oracle[1.0]
    assert excess(reference["motion_v"], o.motion.motion_v, o.motion.bound) <= 1
    assert excess(reference["frames"], o.frames, o.frames_bound) <= 1
    assert excess(reference["frames_trunc07"], oracle[0.7].frames, oracle[0.7].frames_bound) <= 1


MUTANTS = {
    "t instead of t_left": lambda G: _swap_t_left(G),
    "no phase_scales": lambda G: G.synthesis.motion_encoder.time_encoder.phase_scales.fill_(1.0),
    "motion_z_distance 32": lambda G: setattr(G.synthesis.motion_encoder, "distance", 32),
}


def _swap_t_left(G) -> None:
    te = G.synthesis.motion_encoder.time_encoder
    forward = te.forward
    te.forward = lambda u_l, u_r, t, t_left, t_right, alpha: forward(u_l, u_r, t, t, t_right, alpha)


@pytest.mark.parametrize("mutant", MUTANTS)
def test_the_bound_catches_a_wrong_formula(official_pkl, reference, mutant):
    G = float64_copy(stylegan_v.load(official_pkl))
    with torch.no_grad():
        MUTANTS[mutant](G)
        wrong = motion_oracle(G, reference["t"], reference["motion_z"])
    assert excess(reference["motion_v"], wrong.motion_v, wrong.bound) > 1


def test_mapping(nets, oracle, reference):
    G, _ = nets
    for psi, key in ((1.0, "ws"), (0.7, "ws_trunc07")):
        ws = G.mapping(reference["z"], reference["c"], truncation_psi=psi)
        # O(1) values through w_dim-term dot products: the motion path's O(1) floor times √w_dim.
        bound = FLOOR_ROUNDINGS * U32 * oracle[psi].ws.abs().max() * G.w_dim ** 0.5
        assert excess(ws, oracle[psi].ws, bound) <= 1
        assert excess(reference[key], oracle[psi].ws, bound) <= 1


def test_motion_vectors(nets, oracle, reference):
    G, _ = nets
    motion_v, _ = G.synthesis.motion_encoder(reference["t"], reference["c"], reference["motion_z"])
    o = oracle[1.0].motion
    assert excess(motion_v, o.motion_v, o.bound) <= 1
    n = near(reference)
    assert (motion_v[n].double() - o.motion_v[n]).abs().max() <= NEAR_T_MOTION
    assert (motion_v[n] - reference["motion_v"][n]).abs().max() <= NEAR_T_MOTION


@pytest.mark.parametrize("psi,key", [(1.0, "frames"), (0.7, "frames_trunc07")])
def test_frames(nets, oracle, reference, psi, key):
    G, _ = nets
    o = oracle[psi]
    frames = G(reference["z"], reference["c"], reference["t"], motion_z=reference["motion_z"], truncation_psi=psi)
    assert excess(frames, o.frames, o.frames_bound) <= 1
    n = near(reference)
    assert (frames[n].double() - o.frames[n]).abs().max() <= NEAR_T_FRAMES
    assert (frames[n] - reference[key][n]).abs().max() <= NEAR_T_FRAMES


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "activation-scaling"])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["NCHW", "channels-last"])
def test_frames_in_either_layout_and_either_modulation_form(nets, oracle, reference, layout, fused):
    """Both activation layouts (loading picks one per device) and both forms of modulated
    convolution compute the same function: they only reorder the float32 sums, so the same
    derived bound holds, for one w per video and for one w per frame."""
    G = copy.deepcopy(nets[0]).to(memory_format=layout)
    assert memory_layout(G.synthesis.b4.input.input.const) == layout
    ws = G.mapping(reference["z"], reference["c"])
    t = reference["t"]
    motion_v, _ = G.synthesis.motion_encoder(t, reference["c"], reference["motion_z"])
    o = oracle[1.0]
    for frame_ws in (ws, ws.repeat_interleave(t.shape[1], dim=0)):
        frames = G.synthesis.frames(frame_ws, motion_v.to(ws.dtype), fused_modconv=fused)
        assert excess(frames, o.frames, o.frames_bound) <= 1


def test_the_original_s_float32_motion_path_is_within_its_bound(nets, oracle, reference):
    """Our float32 motion path (the original's rounding, used in training) obeys the same bound."""
    G, _ = nets
    G.set_motion_precision("float32")
    try:
        frames = G(reference["z"], reference["c"], reference["t"], motion_z=reference["motion_z"])
        motion_v, _ = G.synthesis.motion_encoder(reference["t"], reference["c"], reference["motion_z"])
    finally:
        G.set_motion_precision("float64")
    o = oracle[1.0]
    assert excess(motion_v, o.motion.motion_v, o.motion.bound) <= 1
    assert excess(frames, o.frames, o.frames_bound) <= 1


def test_frames_rendered_one_by_one_match_the_batch(nets, oracle, reference):
    """Each (video, frame) rendered alone is the same function: frames are independent given t."""
    G, _ = nets
    t, o = reference["t"], oracle[1.0]
    for b in range(t.shape[0]):
        for f in range(t.shape[1]):
            i = b * t.shape[1] + f
            frame = G(reference["z"][b:b + 1], reference["c"][b:b + 1], t[b:b + 1, f:f + 1],
                      motion_z=reference["motion_z"][b:b + 1])
            assert excess(frame[0], o.frames[i], o.frames_bound[i]) <= 1


def test_discriminator_logits(nets, official_pkl, reference):
    _, D = nets
    D64 = float64_copy(stylegan_v.load(official_pkl, "D"))
    with torch.no_grad():
        exact = D64(reference["d_images"].double(), reference["c"].double(), reference["d_t"].double())
    # D's time features see only differences of at most 33 frames (small angles): the logits
    # carry the plain stack-of-layers floor, with the logits' scale.
    convs = [m for m in D64.modules() if getattr(m, "weight", None) is not None and m.weight.ndim == 4]
    bound = layer_stack_floor(convs) * max(1.0, float(exact.abs().max()))
    assert excess(D(reference["d_images"], reference["c"], reference["d_t"]), exact, bound) <= 1
    assert excess(reference["d_logits"], exact, bound) <= 1


def test_longer_motion_noise_changes_nothing(nets, oracle, reference):
    """Noise past what the timestamps need is never read (the original slices it off)."""
    G, _ = nets
    mz = reference["motion_z"]
    longer = torch.cat([mz, torch.full((mz.shape[0], 50, mz.shape[2]), float("nan"))], dim=1)
    frames = G(reference["z"], reference["c"], reference["t"], motion_z=longer)
    assert excess(frames, oracle[1.0].frames, oracle[1.0].frames_bound) <= 1


def test_motion_knot_identity(nets, G64):
    """At t = jΔ, alpha = 0 and the periodic part cancels: v is the aligner of code j."""
    G, _ = nets
    enc = G.synthesis.motion_encoder
    noise = torch.randn(1, 40, enc.z_dim)
    j = torch.arange(0, 15)
    v = enc.motion_vectors(enc.codes(noise), (j * enc.distance).double().unsqueeze(0))
    with torch.no_grad():
        enc64 = G64.synthesis.motion_encoder
        expected = enc64.time_encoder.aligners_predictor(enc64.codes(noise.double())[0, j])
    bound = FLOOR_ROUNDINGS * U32 * expected.abs().max()  # the O(1) floor of the motion path
    assert excess(v, expected, bound) <= 1


@pytest.mark.parametrize("t", [1e4, 1e5, 1e6])
def test_long_videos_stay_exact(nets, G64, reference, t):
    """Hours of video: t = 10^4..10^6 frames. Our default motion path is float64 inside, so the
    frames stay within the near-t targets of the exact function, where float32 angles drift by
    ~1e-3 at 10^4 and ~6e-2 at 10^6 (more than 1/255 of the range): a float32 path fails here."""
    G, _ = nets
    enc = G.synthesis.motion_encoder
    times = torch.tensor([[t, t + 0.5, t + 7.25]], dtype=torch.float64)
    first = int(t // enc.distance)  # the renderer's window: codes first..first+1 only
    noise = torch.randn(1, 2 + enc.receptive_field - 1, enc.z_dim, generator=torch.Generator().manual_seed(0))
    z, c = reference["z"][:1], reference["c"][:1]
    o = generator_oracle(G64, z, c, times, noise, code_offset=first, jacobian=False)
    motion_v = enc.motion_vectors(enc.codes(noise), times, code_offset=first)
    frames = G.synthesis.frames(G.mapping(z, c).repeat_interleave(3, dim=0), motion_v)
    assert (motion_v.double() - o.motion.motion_v).abs().max() <= NEAR_T_MOTION
    assert excess(frames, o.frames, o.frames_bound) <= 1
    assert (frames.double() - o.frames).abs().max() <= NEAR_T_FRAMES
