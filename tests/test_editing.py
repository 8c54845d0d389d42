"""Timestamp scheduling, motion edits (blend, intensity, seamless loops) and content edits (morph, mixing,
directions), plus latents and directions as files."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from stylegan_v import content as C
from stylegan_v import render as R
from stylegan_v import schedule as S
from stylegan_v.batching import combined_batch
from stylegan_v.curves import Curve
from stylegan_v.grids import GatheredMotion
from stylegan_v.latents import load_direction, load_latents, save_direction, save_latents
from stylegan_v.motions import (BlendedMotion, LoopingMotion, MotionSeed, ScaledMotion, loop_of, loop_period_codes,
                                mean_code)


# ---- curves and timelines -------------------------------------------------------------------------------

@pytest.mark.parametrize("interpolation", ["linear", "smooth"])
def test_curve_values_and_exact_integral(interpolation):
    curve = Curve.parse("0:1.0, 2:0.25, 4:1.0", interpolation)
    assert curve(torch.tensor([0.0, 2.0, 4.0, 9.0])).tolist() == [1.0, 0.25, 1.0, 1.0]
    assert curve(torch.tensor(1.0)).item() == pytest.approx(0.625 if interpolation == "linear" else 0.625)
    # Closed-form integral against a fine trapezoid rule (an independent computation).
    xs = torch.linspace(0, 5, 200001, dtype=torch.float64)
    numeric = torch.cumulative_trapezoid(curve(xs), xs)
    for x in (0.5, 2.0, 3.3, 5.0):
        i = int(round(x / 5 * 200000))
        assert curve.integral(torch.tensor(x)).item() == pytest.approx(numeric[i - 1].item(), abs=1e-6)


def test_curve_parse_errors():
    with pytest.raises(ValueError, match="time:value"):
        Curve.parse("0:1, banana")
    with pytest.raises(ValueError, match="empty"):
        Curve.parse(" , ")
    with pytest.raises(ValueError, match="increase"):
        Curve((1.0, 1.0), (0.0, 1.0))


def test_speed_curve_generalises_constant_speed():
    constant = S.speed_curve(50, fps=24, dataset_fps=30, speed=Curve.constant(0.5), start_time=1.0)
    assert torch.allclose(constant, R.timestamps(50, 24, 30, start_time=1.0, speed=0.5))


def test_speed_ramp_is_slow_motion_in_the_middle():
    t = S.speed_curve(5 * 30, fps=30, dataset_fps=30, speed=Curve.parse("0:1, 2:0.25, 4:1", "smooth"))
    steps = t.diff()
    assert steps[0].item() == pytest.approx(1.0, abs=1e-3)  # real time at the start: 1 dataset frame per frame
    assert steps[59].item() == pytest.approx(0.25, abs=0.01)  # 4x slower around 2 s
    assert steps[-1].item() == pytest.approx(1.0, abs=1e-3)
    assert (steps > 0).all()


def test_timeline_operations():
    t = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    assert S.reverse(t).tolist() == [3, 2, 1, 0]
    assert S.ping_pong(t).tolist() == [0, 1, 2, 3, 2, 1]
    assert S.freeze(t, 1, 2).tolist() == [0, 1, 1, 1, 2, 3]
    assert S.offset(t, 10).tolist() == [10, 11, 12, 13]
    assert S.concat(t, t[:2]).tolist() == [0, 1, 2, 3, 0, 1]
    with pytest.raises(ValueError, match="before model time 0"):
        S.offset(t, -1)
    with pytest.raises(ValueError, match="freeze frame"):
        S.freeze(t, 4, 1)


# ---- motion edits ---------------------------------------------------------------------------------------

def _frames(G, motion, t, ws=None):
    ws = R.sample_content(G, seed=11, batch_size=1) if ws is None else ws
    return R.render(G, ws, motion, t)


def test_blend_endpoints_are_exactly_the_inputs(tiny_generator):
    G = tiny_generator
    t = R.timestamps(6, 10, 25)
    a, b = MotionSeed(1), MotionSeed(2)
    fa, fb = _frames(G, a, t), _frames(G, b, t)
    assert torch.equal(_frames(G, BlendedMotion(a, b, 0.0), t), fa)
    assert torch.equal(_frames(G, BlendedMotion(a, b, 1.0), t), fb)
    mid = _frames(G, BlendedMotion(a, b, 0.5), t)
    assert not torch.equal(mid, fa) and not torch.equal(mid, fb)


def test_intensity_pulls_codes_to_the_mean(tiny_generator):
    G = tiny_generator
    base = MotionSeed(3)
    assert torch.equal(ScaledMotion(base, 1.0).codes(G, 0, 5), base.codes(G, 0, 5))
    still = ScaledMotion(base, 0.0).codes(G, 0, 5)
    assert torch.allclose(still, mean_code(G).expand_as(still))
    spread = [ScaledMotion(base, k).codes(G, 0, 40).std(dim=1).mean().item() for k in (0.25, 0.5, 1.0, 1.5)]
    assert spread == sorted(spread) and spread[0] < spread[-1]


def test_seamless_loop(tiny_generator):
    G = tiny_generator
    loop = LoopingMotion(seed=4, period_codes=3)
    period = loop.period(G)
    t = S.loop(48, period)
    frames = _frames(G, loop, t)[0]
    # The frame at t and at t + period are identical.
    shifted = _frames(G, loop, t + period)[0]
    assert (frames - shifted).abs().max() < 1e-5
    # Across the wrap (last frame -> first) the change is no larger than a typical step inside.
    steps = (frames[1:] - frames[:-1]).abs().mean(dim=(1, 2, 3))
    wrap = (frames[0] - frames[-1]).abs().mean()
    assert wrap <= steps.max() and wrap < 3 * steps.median()
    # A non-looping motion over the same span does jump at the wrap.
    plain = _frames(G, MotionSeed(4), t)[0]
    assert (plain[0] - plain[-1]).abs().mean() > wrap
    assert loop_period_codes(2.0, 30, 16) == 4


def test_loop_codes_are_the_circular_convolution_and_cost_the_window_not_the_period(tiny_generator):
    G = tiny_generator
    enc = G.synthesis.motion_encoder
    for period in (2, 3, 70):  # shorter than the receptive field, one block, blocks and a wrap
        loop = LoopingMotion(seed=4, batch_size=2, period_codes=period)
        # The definition: the motion encoder run on the period's noise repeated circularly.
        base = MotionSeed(4, 2).noise(0, period, enc.z_dim)
        index = torch.arange(period + enc.receptive_field - 1) % period
        cycle = enc.codes(base[:, index], None)
        got = loop.codes(G, 5, 5 + 2 * period)
        expected = cycle[:, torch.arange(5, 6 + 2 * period) % period]
        # Both run the motion path in float64: blockwise and whole-period evaluation differ only
        # by summation order, ~1e-15 relative; a code taken from the wrong noise differs by O(1).
        assert got.shape == expected.shape and torch.allclose(got, expected, rtol=0, atol=1e-9)
    # A period of a billion codes: a window costs what it costs for a short loop.
    huge = LoopingMotion(seed=4, period_codes=10**9)
    window = huge.codes(G, 10**9 - 3, 10**9 + 3)  # across the wrap
    assert window.shape[1] == 7 and torch.isfinite(window).all()
    assert torch.equal(window[:, 3:], huge.codes(G, 0, 3))


def test_cannot_blend_loop_with_plain_motion():
    with pytest.raises(ValueError, match="looping"):
        BlendedMotion(LoopingMotion(0), MotionSeed(1), 0.5)


def test_loop_of_finds_the_loop_an_edited_motion_plays():
    loop = LoopingMotion(seed=1, batch_size=2, period_codes=3)
    assert loop_of(loop) is loop
    blended = BlendedMotion(loop, LoopingMotion(seed=2, period_codes=3), 0.5)
    assert loop_of(ScaledMotion(blended, 0.5)) is loop  # a blend plays on its first motion's clock
    assert loop_of(GatheredMotion(ScaledMotion(loop, 2.0), (1, 0, 1))) is loop
    assert loop_of(MotionSeed(1)) is None and loop_of(ScaledMotion(MotionSeed(1), 0.5)) is None
    with pytest.raises(ValueError, match="looping"):  # the same rule refuses blends of different periods
        BlendedMotion(loop, LoopingMotion(seed=2, period_codes=4), 0.5)


# ---- the batch rule -------------------------------------------------------------------------------------

def test_one_batch_rule_equal_or_one():
    assert combined_batch(3, 3, "content", "motion") == 3
    assert combined_batch(1, 4, "content", "motion") == 4 and combined_batch(4, 1, "content", "motion") == 4
    for a, b in ((2, 4), (4, 2), (2, 3)):
        with pytest.raises(ValueError, match=rf"content batch_size \({a}\) and motion batch_size \({b}\) differ"):
            combined_batch(a, b, "content", "motion")
    with pytest.raises(ValueError, match="motion batch_size must be >= 1, got 0"):
        combined_batch(1, 0, "content", "motion")


def test_every_pairing_refuses_batches_two_and_four(tiny_generator):
    G = tiny_generator
    two, four = R.sample_content(G, 1, 2), R.sample_content(G, 2, 4)
    weights = torch.zeros(3, dtype=torch.float64)
    # Morph used to accept 2 and 4 (4 % 2 == 0) and fail later, in ws_for, with "different models?".
    with pytest.raises(ValueError, match=r"morph start batch_size \(2\) and morph end batch_size \(4\) differ"):
        C.Morph(two, four, weights)
    assert C.Morph(two[:1], four, weights).batch_size == 4 and C.Morph(four, four, weights).batch_size == 4
    with pytest.raises(ValueError, match=r"\(2\) and .*\(4\) differ"):
        C.style_mix(two, four, 0, 1)
    with pytest.raises(ValueError, match=r"\(2\) and .*\(4\) differ"):
        C.direction_between(two, four)
    with pytest.raises(ValueError, match=r"content batch_size \(2\) and direction batch_size \(4\) differ"):
        C.Direction(two, torch.zeros(4, G.num_ws, G.w_dim), weights)
    with pytest.raises(ValueError, match=r"motion a batch_size \(2\) and motion b batch_size \(4\) differ"):
        _ = BlendedMotion(MotionSeed(0, 2), MotionSeed(1, 4), 0.5).batch_size
    with pytest.raises(ValueError, match=r"content batch_size \(2\) and motion batch_size \(4\) differ"):
        R.render(G, two, MotionSeed(0, 4), R.timestamps(1, 25, 25))


# ---- content edits --------------------------------------------------------------------------------------

def test_morph_endpoints_exact_and_progressive(tiny_generator):
    G = tiny_generator
    a, b = R.sample_content(G, 1, 1), R.sample_content(G, 2, 1)
    weights = C.per_frame(Curve.parse("0:0, 1:1"), num_frames=11, fps=10)
    morph = C.Morph(a, b, weights)
    ws = morph.ws_for(torch.arange(11))
    assert torch.equal(ws[:, 0], a) and torch.equal(ws[:, 10], b)
    dist = [(ws[:, k] - b).norm().item() for k in range(11)]
    assert dist == sorted(dist, reverse=True)
    # Rendering with a schedule equals rendering each frame's w directly.
    t = R.timestamps(11, 10, 25)
    frames = R.render(G, morph, MotionSeed(0), t, chunk_size=4)
    assert (frames[:, 0] - R.render(G, a, MotionSeed(0), t[:1])[:, 0]).abs().max() < 1e-4  # batch rounding


def test_style_mix_and_directions(tiny_generator):
    G = tiny_generator
    a, b = R.sample_content(G, 1, 2), R.sample_content(G, 2, 2)
    mixed = C.style_mix(a, b, 2, 4)
    assert torch.equal(mixed[:, 2:5], b[:, 2:5]) and torch.equal(mixed[:, :2], a[:, :2])
    assert torch.equal(mixed[:, 5:], a[:, 5:])
    with pytest.raises(ValueError, match="layer range"):
        C.style_mix(a, b, 3, G.num_ws)
    d = C.direction_between(a, b)
    strengths = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    edited = C.Direction(a, d, strengths).ws_for(torch.arange(3))
    assert torch.equal(edited[:, 0], a)
    assert torch.allclose(edited[:, 2], a + (b - a).mean(0), atol=1e-6)
    every_layer = C.Direction(a, d[0], strengths).ws_for(torch.arange(3))
    assert torch.allclose(every_layer[:, 2], a + d[0], atol=1e-6)
    for wrong in (torch.zeros(G.w_dim + 1), torch.zeros(G.num_ws + 1, G.w_dim)):
        with pytest.raises(ValueError, match=re.escape(f"shape {list(wrong.shape)}, which does not fit latents")):
            C.Direction(a, wrong, strengths)


# ---- latents as files -----------------------------------------------------------------------------------

def test_latent_files_round_trip(tiny_generator, tmp_path):
    G = tiny_generator
    ws = R.sample_content(G, 5, 2, truncation_psi=0.7)
    motion = ScaledMotion(BlendedMotion(LoopingMotion(1, 2, 3), LoopingMotion(2, 2, 3), 0.3), 0.8)
    path = save_latents(tmp_path / "look.safetensors", ws=ws, motion=motion, model="tiny32")
    loaded = load_latents(path)
    assert torch.equal(loaded["ws"], ws) and loaded["motion"] == motion
    assert loaded["metadata"]["model"] == "tiny32"
    t = R.timestamps(4, 10, 25)
    assert torch.equal(R.render(G, loaded["ws"], loaded["motion"], t), R.render(G, ws, motion, t))


def test_latent_files_of_earlier_versions_with_a_model_fingerprint_load(tmp_path):
    ws = torch.randn(2, 4, 8)
    path = save_latents(tmp_path / "old.safetensors", ws=ws, motion=MotionSeed(3, 2), model_fingerprint="ab" * 32)
    loaded = load_latents(path)
    assert torch.equal(loaded["ws"], ws) and loaded["motion"] == MotionSeed(3, 2)
    assert loaded["metadata"] == {"model_fingerprint": "ab" * 32}


def test_bad_latent_files(tmp_path, tiny_generator):
    from safetensors.torch import save_file

    path = tmp_path / "x.safetensors"
    save_file({"ws": torch.zeros(1, 2, 3)}, str(path), metadata={"format": "stylegan-v-latents",
                                                               "motion": '{"kind": "teleport"}'})
    with pytest.raises(ValueError, match="unknown motion kind"):
        load_latents(path)
    with pytest.raises(FileNotFoundError):
        load_latents(tmp_path / "none.safetensors")
    path.write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a valid safetensors"):
        load_latents(path)


# ---- directions as files --------------------------------------------------------------------------------

def test_direction_files_round_trip_and_the_earlier_writer_s_files_load(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    vector = torch.randn(4, 8)
    path = save_direction(tmp_path / "sub" / "smile.safetensors", vector, source="difference of two contents")
    assert torch.equal(load_direction(path), vector)
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == {"format": "stylegan-v-direction", "source": "difference of two contents"}
        assert list(f.keys()) == ["direction"]
    # What Save Direction wrote before the format moved into the library.
    earlier = tmp_path / "earlier.safetensors"
    save_file({"direction": vector}, str(earlier),
              metadata={"format": "stylegan-v-direction", "source": "difference of two contents"})
    assert torch.equal(load_direction(earlier), vector)
    # Directions from elsewhere: the only tensor of a file, and InterFaceGAN-style [1, w_dim] .npy boundaries.
    save_file({"boundary": vector[0]}, str(tmp_path / "other.safetensors"))
    assert torch.equal(load_direction(tmp_path / "other.safetensors"), vector[0])
    np.save(tmp_path / "boundary.npy", vector[:1].numpy())
    assert torch.equal(load_direction(tmp_path / "boundary.npy"), vector[0])


def test_bad_direction_files_are_refused_by_name(tmp_path):
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(8), "b": torch.zeros(8)}, str(tmp_path / "two.safetensors"))
    with pytest.raises(ValueError, match=r"two.safetensors: it holds \['a', 'b'\], none named 'direction'"):
        load_direction(tmp_path / "two.safetensors")
    np.save(tmp_path / "nan.npy", np.full(8, np.nan, np.float32))
    with pytest.raises(ValueError, match="nan.npy must hold a finite direction"):
        load_direction(tmp_path / "nan.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"shape \[w_dim\] or \[num_ws, w_dim\], got \[2, 3, 4\]"):
        load_direction(tmp_path / "cube.npy")
    np.save(tmp_path / "objects.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="cannot read a direction from objects.npy"):
        load_direction(tmp_path / "objects.npy")  # pickles are never loaded
    with pytest.raises(FileNotFoundError):
        load_direction(tmp_path / "none.safetensors")
    with pytest.raises(ValueError, match="finite direction"):
        save_direction(tmp_path / "bad.safetensors", torch.full((8,), float("inf")))
    assert not (tmp_path / "bad.safetensors").exists()


def test_a_failed_direction_save_leaves_the_previous_file(tmp_path, monkeypatch):
    import safetensors.torch

    path = save_direction(tmp_path / "d.safetensors", torch.ones(8), source="first")

    def full_disk(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_direction(path, torch.zeros(8), source="second")
    assert torch.equal(load_direction(path), torch.ones(8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.safetensors"]  # no temporary file left either


def test_latent_files_are_read_with_the_checkpoint_guards(tmp_path):
    import json
    import os

    ws = torch.randn(1, 4, 8)
    # A name that is not valid UTF-8 (safetensors alone refuses to open it) loads the same.
    odd = tmp_path / os.fsdecode(b"look-\xff.safetensors")
    save_latents(odd, ws=ws, motion=MotionSeed(3, 1))
    assert torch.equal(load_latents(odd)["ws"], ws)
    # A header listing more tensors than any file holds is refused before it is parsed.
    header = json.dumps({f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(70000)})
    crowded = tmp_path / "crowded.safetensors"
    crowded.write_bytes(len(header).to_bytes(8, "little") + header.encode())
    with pytest.raises(ValueError, match="crowded.safetensors is not a valid safetensors file .*70000 tensors"):
        load_latents(crowded)
    with pytest.raises(FileNotFoundError, match="latent file not found"):
        load_latents(tmp_path / "missing.safetensors")
