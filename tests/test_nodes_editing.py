"""The editing nodes (timeline, motion, content, latent files) called in-process inside the real ComfyUI 0.3.75.

References are the library's own functions applied directly and documented invariants (exact
endpoints, reversal, loops that wrap), so these tests check the nodes' plumbing and contracts.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from host.harness import require_host
from host.models import DEMO_CHECKPOINT, make_checkpoint

pytestmark = pytest.mark.host

BASE_IDS = ["StyleGANV_LoadModel", "StyleGANV_SampleContent", "StyleGANV_SampleMotion", "StyleGANV_Timeline",
            "StyleGANV_Render"]
EDIT_IDS = ["StyleGANV_SpeedCurveTimeline", "StyleGANV_ReverseTimeline", "StyleGANV_PingPongTimeline",
            "StyleGANV_FreezeTimeline", "StyleGANV_OffsetTimeline", "StyleGANV_ConcatTimelines",
            "StyleGANV_LoopTimeline", "StyleGANV_LoopMotion", "StyleGANV_BlendMotion", "StyleGANV_MotionIntensity",
            "StyleGANV_ContentMotionGrid", "StyleGANV_MorphContent", "StyleGANV_StyleMix",
            "StyleGANV_DirectionFromContents", "StyleGANV_SampleContentByClass", "StyleGANV_ApplyDirection", "StyleGANV_SaveLatents",
            "StyleGANV_LoadContent", "StyleGANV_LoadMotion", "StyleGANV_SaveDirection", "StyleGANV_LoadDirection"]


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    from host.inprocess import load_comfy

    work = tmp_path_factory.mktemp("comfy_editing")
    comfy_nodes, _ = load_comfy(require_host(), work)
    models = work / "models" / "stylegan_v"
    make_checkpoint(models / DEMO_CHECKPOINT, seed=0)
    make_checkpoint(models / "conditional.safetensors", seed=1, c_dim=3, dataset_fps=30.0)

    class Comfy:
        nodes = {k: comfy_nodes.NODE_CLASS_MAPPINGS[k] for k in BASE_IDS + EDIT_IDS}
        output_dir = work / "output"
        input_dir = work / "input"

        def run(self, node_id, **inputs):
            return self.nodes[node_id].execute(**inputs)

        def one(self, node_id, **inputs):
            return self.run(node_id, **inputs).args[0]

        def validate(self, node_id, **inputs):
            return self.nodes[node_id].validate_inputs(**inputs)

    return Comfy()


@pytest.fixture(scope="module")
def model(comfy):
    return comfy.one("StyleGANV_LoadModel", ckpt_name=DEMO_CHECKPOINT, dtype="fp32")


@pytest.fixture(scope="module")
def generator(model):
    return model.model.generator


def timeline(comfy, model, frames=6, fps=25.0, start_time=0.0, speed=1.0):
    return comfy.one("StyleGANV_Timeline", model=model, fps=fps, duration=frames, unit="frames",
                     start_time=start_time, speed=speed)


def content(comfy, model, seed=3, batch=1):
    return comfy.one("StyleGANV_SampleContent", model=model, seed=seed, batch_size=batch, truncation_psi=1.0,
                     class_index=-1)


def motion(comfy, seed=4, batch=1):
    return comfy.one("StyleGANV_SampleMotion", seed=seed, batch_size=batch)


def render(comfy, model, content, motion, timeline, grid_columns=0, chunk_size=16):
    return comfy.run("StyleGANV_Render", model=model, content=content, motion=motion, timeline=timeline,
                     chunk_size=chunk_size, grid_columns=grid_columns).args[0]


def test_every_edit_node_is_registered_documented_and_categorised(comfy):
    for node_id in EDIT_IDS:
        schema = comfy.nodes[node_id].GET_SCHEMA()
        assert schema.node_id == node_id and schema.category.startswith("StyleGAN-V/"), node_id
        assert schema.display_name.startswith("StyleGAN-V ") and len(schema.description) > 40, node_id
        for item in (schema.inputs or []) + (schema.outputs or []):
            assert item.tooltip and len(item.tooltip) > 10, f"{node_id}.{item.id} has no tooltip"
            if isinstance(getattr(item, "min", None), (int, float)):
                assert item.max is not None, f"{node_id}.{item.id} needs a max"


# ---- timelines ---------------------------------------------------------------------------------------------

def speed_timeline(comfy, model, keys="0:1.0, 2:0.25, 4:1.0", fps=30.0, seconds=6.0, interpolation="smooth",
                   start_time=0.0):
    return comfy.one("StyleGANV_SpeedCurveTimeline", model=model, fps=fps, duration=seconds, unit="seconds",
                     start_time=start_time, speed_keyframes=keys, interpolation=interpolation)


def test_speed_curve_timeline_is_slow_in_the_middle_and_keeps_fps(comfy, model):
    tl = speed_timeline(comfy, model)
    assert tl.num_frames == 180 and tl.fps == 30.0 and tl.dataset_fps == 25.0
    steps = tl.t.diff() * 30.0 / 25.0  # seconds of the training video per second of output: the speed
    assert steps[0].item() == pytest.approx(1.0, abs=1e-3)
    assert steps[59].item() == pytest.approx(0.25, abs=0.01)
    assert steps[-1].item() == pytest.approx(1.0, abs=1e-3) and bool((steps > 0).all())
    # A constant speed keyframe is the base Timeline node's formula.
    constant = speed_timeline(comfy, model, keys="0:0.5", fps=24.0, seconds=2.0, start_time=1.0)
    reference = timeline(comfy, model, frames=48, fps=24.0, start_time=1.0, speed=0.5)
    assert torch.allclose(constant.t, reference.t) and constant.speed == pytest.approx(0.5)
    # Linear ramp: the trapezoid area under the speed is where the video is at the last key.
    linear = speed_timeline(comfy, model, keys="0:1, 1:0", fps=10.0, seconds=1.1, interpolation="linear")
    assert linear.t[10].item() == pytest.approx(0.5 * 25.0)


def test_bad_keyframes_are_refused_with_the_input_named(comfy, model):
    problem = comfy.validate("StyleGANV_SpeedCurveTimeline", unit="seconds", speed_keyframes="0:1, fast",
                             interpolation="smooth")
    assert "speed_keyframes" in problem and "time:value" in problem
    assert "interpolation 'cubic'" in comfy.validate("StyleGANV_SpeedCurveTimeline", unit="seconds",
                                                     speed_keyframes="0:1", interpolation="cubic")
    assert comfy.validate("StyleGANV_SpeedCurveTimeline", unit="seconds", speed_keyframes="0:1, 2:0.5",
                          interpolation="linear") is True
    with pytest.raises(ValueError, match="speed_keyframes: cannot read keyframe 'x'"):
        speed_timeline(comfy, model, keys="0:1, x")
    with pytest.raises(ValueError, match="speed_keyframes: key times must increase"):
        speed_timeline(comfy, model, keys="1:1, 1:2")
    with pytest.raises(ValueError, match="before its start"):
        speed_timeline(comfy, model, keys="0:-1")


def test_reverse_ping_pong_freeze_offset_concat(comfy, model):
    tl = timeline(comfy, model, frames=5, fps=10.0, start_time=1.0)
    reverse = comfy.one("StyleGANV_ReverseTimeline", timeline=tl)
    assert reverse.t.tolist() == tl.t.tolist()[::-1] and reverse.fps == 10.0
    pingpong = comfy.one("StyleGANV_PingPongTimeline", timeline=tl)
    assert pingpong.t.tolist() == tl.t.tolist() + tl.t.tolist()[-2:0:-1]
    frozen = comfy.one("StyleGANV_FreezeTimeline", timeline=tl, at_seconds=0.2, hold_seconds=0.3)
    t = tl.t.tolist()
    assert frozen.t.tolist() == t[:3] + [t[2]] * 3 + t[3:]
    shifted = comfy.one("StyleGANV_OffsetTimeline", timeline=tl, seconds=2.0)
    assert torch.allclose(shifted.t, tl.t + 2.0 * 25.0) and shifted.start_time == pytest.approx(3.0)
    joined = comfy.one("StyleGANV_ConcatTimelines", first=tl, second=reverse)
    assert joined.t.tolist() == t + t[::-1] and joined.fps == 10.0
    with pytest.raises(ValueError, match="different fps"):
        comfy.run("StyleGANV_ConcatTimelines", first=tl, second=timeline(comfy, model, frames=2, fps=12.0))
    with pytest.raises(ValueError, match=r"before the motion's start.*use at least -1"):
        comfy.run("StyleGANV_OffsetTimeline", timeline=tl, seconds=-1.5)
    with pytest.raises(ValueError, match="past the end of the timeline"):
        comfy.run("StyleGANV_FreezeTimeline", timeline=tl, at_seconds=0.5, hold_seconds=1.0)


def test_reversed_timeline_renders_the_frames_backwards(comfy, model):
    c, m, tl = content(comfy, model), motion(comfy), timeline(comfy, model, frames=4)
    forward = render(comfy, model, c, m, tl)
    backward = render(comfy, model, c, m, comfy.one("StyleGANV_ReverseTimeline", timeline=tl))
    assert torch.allclose(backward, forward.flip(0), atol=1e-5)


# ---- motions -----------------------------------------------------------------------------------------------

def loop_motion(comfy, model, seed=8, batch=1, seconds=2.0):
    return comfy.run("StyleGANV_LoopMotion", model=model, seed=seed, batch_size=batch, period_seconds=seconds).args


def test_loop_motion_period_follows_the_model(comfy, model, generator):
    loop, seconds = loop_motion(comfy, model, seconds=2.0)
    distance = generator.synthesis.motion_encoder.distance
    assert loop.period_codes == round(2.0 * 25.0 / distance) and seconds == loop.period_codes * distance / 25.0
    conditional = comfy.one("StyleGANV_LoadModel", ckpt_name="conditional.safetensors", dtype="fp32")
    loop30, seconds30 = loop_motion(comfy, conditional, seconds=2.0)
    assert loop30.period_codes == round(2.0 * 30.0 / distance) and seconds30 == loop30.period_codes * distance / 30
    tiny, tiny_seconds = loop_motion(comfy, model, seconds=0.01)
    assert tiny.period_codes == 1 and tiny_seconds == distance / 25.0


def test_loop_timeline_covers_exactly_one_period_and_wraps_seamlessly(comfy, model, generator):
    loop, seconds = loop_motion(comfy, model)
    tl = comfy.one("StyleGANV_LoopTimeline", model=model, motion=loop, fps=25.0, periods=1)
    period = loop.period(generator)
    assert tl.num_frames == round(seconds * 25.0) and tl.fps == 25.0
    assert tl.t[0] == 0 and torch.allclose(tl.t.diff(), torch.full_like(tl.t.diff(), period / tl.num_frames))
    two = comfy.one("StyleGANV_LoopTimeline", model=model, motion=loop, fps=25.0, periods=2)
    assert two.num_frames == 2 * tl.num_frames

    c = content(comfy, model)
    frames = render(comfy, model, c, loop, tl)
    assert frames.shape == (tl.num_frames, 32, 32, 3)
    # The frame after the last is the first: render one step past the end and compare.
    step = period / tl.num_frames
    past = comfy.one("StyleGANV_OffsetTimeline", timeline=tl, seconds=step / 25.0)
    assert torch.allclose(render(comfy, model, c, loop, past)[-1], frames[0], atol=1e-5)
    # And the wrap is no bigger a change than the steps inside the loop.
    steps = (frames[1:] - frames[:-1]).abs().mean(dim=(1, 2, 3))
    wrap = (frames[0] - frames[-1]).abs().mean()
    assert wrap <= steps.max() and wrap < 3 * steps.median()
    with pytest.raises(ValueError, match="needs a looping motion"):
        comfy.run("StyleGANV_LoopTimeline", model=model, motion=motion(comfy), fps=25.0, periods=1)


def test_blend_weights_zero_and_one_are_exactly_the_inputs(comfy, model):
    c, tl = content(comfy, model), timeline(comfy, model, frames=4)
    a, b = motion(comfy, seed=1), motion(comfy, seed=2)
    fa, fb = render(comfy, model, c, a, tl), render(comfy, model, c, b, tl)
    for weight, expected in ((0.0, fa), (1.0, fb)):
        blended = comfy.one("StyleGANV_BlendMotion", motion_a=a, motion_b=b, weight=weight)
        assert torch.equal(render(comfy, model, c, blended, tl), expected)
    middle = render(comfy, model, c, comfy.one("StyleGANV_BlendMotion", motion_a=a, motion_b=b, weight=0.5), tl)
    assert not torch.allclose(middle, fa, atol=1e-4) and not torch.allclose(middle, fb, atol=1e-4)


def test_blend_refuses_incompatible_motions(comfy, model):
    with pytest.raises(ValueError, match=r"cannot be combined.*\(2\).*\(3\)"):
        comfy.run("StyleGANV_BlendMotion", motion_a=motion(comfy, batch=2), motion_b=motion(comfy, batch=3),
                  weight=0.5)
    with pytest.raises(ValueError, match="looping"):
        comfy.run("StyleGANV_BlendMotion", motion_a=loop_motion(comfy, model)[0], motion_b=motion(comfy), weight=0.5)
    loops = comfy.one("StyleGANV_BlendMotion", motion_a=loop_motion(comfy, model, seed=1)[0],
                      motion_b=loop_motion(comfy, model, seed=2)[0], weight=0.3)
    assert comfy.one("StyleGANV_LoopTimeline", model=model, motion=loops, fps=25.0, periods=1).num_frames == 48


def test_motion_intensity(comfy, model, generator):
    from stylegan_v.motions import mean_code

    c, m, tl = content(comfy, model), motion(comfy, seed=5), timeline(comfy, model, frames=12, fps=5.0)
    same = comfy.one("StyleGANV_MotionIntensity", motion=m, intensity=1.0)
    assert torch.equal(render(comfy, model, c, same, tl), render(comfy, model, c, m, tl))
    still = comfy.one("StyleGANV_MotionIntensity", motion=m, intensity=0.0)
    codes = still.codes(generator, 0, 6)
    assert torch.allclose(codes, mean_code(generator).expand_as(codes))

    def movement(mo):
        frames = render(comfy, model, c, mo, tl)
        return (frames[1:] - frames[:-1]).abs().mean().item()

    calm, normal, wild = (movement(comfy.one("StyleGANV_MotionIntensity", motion=m, intensity=k))
                          for k in (0.0, 1.0, 2.5))
    assert calm < normal < wild


def test_grid_rows_share_a_motion_and_columns_a_content(comfy, model):
    contents, motions = content(comfy, model, seed=21, batch=3), motion(comfy, seed=22, batch=2)
    tl = timeline(comfy, model, frames=3)
    grid_content, grid_motion, columns = comfy.run("StyleGANV_ContentMotionGrid", content=contents,
                                                   motion=motions).args
    assert columns == 3 and grid_content.batch_size == 6 and grid_motion.batch_size == 6
    tiled = render(comfy, model, grid_content, grid_motion, tl, grid_columns=columns)
    assert tiled.shape == (3, 64, 96, 3)
    for b in range(3):
        single = type(contents)(ws=contents.ws[b:b + 1], c=None)
        alone = render(comfy, model, single, motions, tl).reshape(2, 3, 32, 32, 3)  # content b with both motions
        for r in range(2):
            assert torch.allclose(tiled[:, r * 32:(r + 1) * 32, b * 32:(b + 1) * 32], alone[r], atol=1e-5)
    with pytest.raises(ValueError, match="more than 64"):
        comfy.run("StyleGANV_ContentMotionGrid", content=content(comfy, model, batch=9), motion=motion(comfy, batch=8))


# ---- content -----------------------------------------------------------------------------------------------

def morph(comfy, a, b, tl, keys="", interpolation="smooth"):
    return comfy.one("StyleGANV_MorphContent", content_from=a, content_to=b, timeline=tl, keyframes=keys,
                     interpolation=interpolation)


def test_morph_endpoints_are_exactly_the_inputs(comfy, model):
    a, b = content(comfy, model, seed=1, batch=2), content(comfy, model, seed=2, batch=2)
    tl = timeline(comfy, model, frames=9, fps=4.0)
    for interpolation in ("smooth", "linear"):
        ws = morph(comfy, a, b, tl, interpolation=interpolation).ws.ws_for(torch.arange(9))
        assert torch.equal(ws[:, 0], a.ws) and torch.equal(ws[:, 8], b.ws)
        distance = [(ws[:, k] - b.ws).norm().item() for k in range(9)]
        assert distance == sorted(distance, reverse=True)
    held = morph(comfy, a, b, tl, keys="0.5:0, 1.5:1").ws.ws_for(torch.arange(9))
    assert torch.equal(held[:, 2], a.ws) and torch.equal(held[:, 6], b.ws) and torch.equal(held[:, 8], b.ws)
    # Rendered: the first and last frames are those of the endpoint contents.
    m = motion(comfy, batch=2)
    images = render(comfy, model, morph(comfy, a, b, tl), m, tl).reshape(2, 9, 32, 32, 3)
    start = render(comfy, model, a, m, tl).reshape(2, 9, 32, 32, 3)
    end = render(comfy, model, b, m, tl).reshape(2, 9, 32, 32, 3)
    assert torch.allclose(images[:, 0], start[:, 0], atol=1e-5) and torch.allclose(images[:, 8], end[:, 8], atol=1e-5)
    assert not torch.allclose(images[:, 4], start[:, 4], atol=1e-3)


def test_morph_errors(comfy, model):
    a, tl = content(comfy, model, batch=2), timeline(comfy, model, frames=3)
    for other in (3, 4):  # 4 is a multiple of 2, but the videos still cannot be paired
        with pytest.raises(ValueError, match=rf"Morph Content: the first content's batch_size \(2\) and the "
                                             rf"second's batch_size \({other}\) differ"):
            morph(comfy, a, content(comfy, model, batch=other), tl)
    with pytest.raises(ValueError, match="different models"):
        morph(comfy, a, type(a)(ws=a.ws[:, :4], c=None), tl)
    assert "keyframes: cannot read" in comfy.validate("StyleGANV_MorphContent", keyframes="0:0 1:1",
                                                      interpolation="smooth")
    assert comfy.validate("StyleGANV_MorphContent", keyframes="", interpolation="smooth") is True
    assert morph(comfy, a, content(comfy, model, batch=1), timeline(comfy, model, frames=1)).batch_size == 2


def test_style_mix_takes_the_layer_range(comfy, model, generator):
    a, b = content(comfy, model, seed=1, batch=2), content(comfy, model, seed=2, batch=1)
    mixed = comfy.one("StyleGANV_StyleMix", content=a, style_source=b, first_layer=2, last_layer=4).ws
    assert torch.equal(mixed[:, :2], a.ws[:, :2]) and torch.equal(mixed[:, 5:], a.ws[:, 5:])
    assert torch.equal(mixed[:, 2:5], b.ws[:, 2:5].expand(2, -1, -1))
    with pytest.raises(ValueError, match=f"0 <= first <= last < {generator.num_ws}"):
        comfy.run("StyleGANV_StyleMix", content=a, style_source=b, first_layer=0, last_layer=generator.num_ws)
    assert "must not be above" in comfy.validate("StyleGANV_StyleMix", first_layer=3, last_layer=1)
    with pytest.raises(ValueError, match="not a morph"):
        comfy.run("StyleGANV_StyleMix", content=morph(comfy, a, a, timeline(comfy, model, 2)), style_source=b,
                  first_layer=0, last_layer=1)


def test_direction_with_keyframed_strength(comfy, model):
    a, b = content(comfy, model, seed=1, batch=2), content(comfy, model, seed=2, batch=2)
    direction = comfy.one("StyleGANV_DirectionFromContents", content_from=a, content_to=b)
    assert torch.allclose(direction.vector, (b.ws - a.ws).mean(0), atol=1e-6)
    tl = timeline(comfy, model, frames=5, fps=10.0)
    edited = comfy.one("StyleGANV_ApplyDirection", content=a, direction=direction, timeline=tl, strength=2.0,
                       strength_keyframes="0:0, 0.4:1", interpolation="linear")
    ws = edited.ws.ws_for(torch.arange(5))
    assert torch.equal(ws[:, 0], a.ws)
    assert torch.allclose(ws[:, 2], a.ws + 1.0 * direction.vector, atol=1e-5)
    assert torch.allclose(ws[:, 4], a.ws + 2.0 * direction.vector, atol=1e-5)
    images = render(comfy, model, edited, motion(comfy, batch=2), tl)
    assert images.shape == (10, 32, 32, 3)
    assert "strength_keyframes" in comfy.validate("StyleGANV_ApplyDirection", strength_keyframes="",
                                                  interpolation="smooth")


# ---- latents as files --------------------------------------------------------------------------------------

def test_save_and_load_content_and_motion(comfy, model):
    from stylegan_v.motions import BlendedMotion, ScaledMotion

    c = content(comfy, model, seed=31, batch=2)
    loop = comfy.one("StyleGANV_MotionIntensity", intensity=0.7, motion=comfy.one(
        "StyleGANV_BlendMotion", motion_a=loop_motion(comfy, model, seed=1, batch=2)[0],
        motion_b=loop_motion(comfy, model, seed=2, batch=2)[0], weight=0.25))
    out = comfy.run("StyleGANV_SaveLatents", filename_prefix="stylegan_v_latents/look", content=c, motion=loop)
    (saved,) = out.ui["latents"]
    assert saved["subfolder"] == "stylegan_v_latents" and saved["type"] == "output"
    name = f"stylegan_v_latents/{saved['filename']} [output]"
    options = comfy.nodes["StyleGANV_LoadContent"].GET_SCHEMA().inputs[0].options
    assert name in options and comfy.validate("StyleGANV_LoadContent", latent_file=name) is True

    loaded = comfy.one("StyleGANV_LoadContent", latent_file=name)
    assert torch.equal(loaded.ws, c.ws) and loaded.c is None
    loaded_motion = comfy.one("StyleGANV_LoadMotion", latent_file=name)
    assert loaded_motion == loop and isinstance(loaded_motion, ScaledMotion)
    assert isinstance(loaded_motion.base, BlendedMotion)
    tl = timeline(comfy, model, frames=3)
    assert torch.equal(render(comfy, model, loaded, loaded_motion, tl), render(comfy, model, c, loop, tl))
    # A second save does not overwrite the first.
    again = comfy.run("StyleGANV_SaveLatents", filename_prefix="stylegan_v_latents/look", motion=motion(comfy))
    assert again.ui["latents"][0]["filename"] != saved["filename"]
    motion_only = f"stylegan_v_latents/{again.ui['latents'][0]['filename']} [output]"
    with pytest.raises(ValueError, match="holds no content"):
        comfy.run("StyleGANV_LoadContent", latent_file=motion_only)


def test_latent_files_in_the_input_folder_and_bad_files(comfy, model):
    from stylegan_v.latents import save_latents

    c = content(comfy, model, seed=41)
    save_latents(comfy.input_dir / "stylegan_v_latents" / "shared.safetensors", ws=c.ws)
    # Files saved by earlier versions carry the checkpoint's hash, which is not needed to load them.
    save_latents(comfy.input_dir / "earlier.safetensors", ws=c.ws, model_fingerprint="0" * 64)
    assert torch.equal(comfy.one("StyleGANV_LoadContent", latent_file="earlier.safetensors").ws, c.ws)
    (comfy.input_dir / "junk.safetensors").write_bytes(b"not a safetensors file")
    options = comfy.nodes["StyleGANV_LoadContent"].GET_SCHEMA().inputs[0].options
    assert "stylegan_v_latents/shared.safetensors" in options and "junk.safetensors" in options
    assert torch.equal(comfy.one("StyleGANV_LoadContent", latent_file="stylegan_v_latents/shared.safetensors").ws,
                       c.ws)
    with pytest.raises(ValueError, match="holds no motion"):
        comfy.run("StyleGANV_LoadMotion", latent_file="stylegan_v_latents/shared.safetensors")
    with pytest.raises(ValueError, match="cannot load 'junk.safetensors': .*not a valid safetensors"):
        comfy.run("StyleGANV_LoadContent", latent_file="junk.safetensors")
    assert "is not a file in the input folder" in comfy.validate("StyleGANV_LoadMotion", latent_file="gone.safetensors")
    with pytest.raises(ValueError, match="outside ComfyUI's input and output folders"):
        comfy.run("StyleGANV_LoadContent", latent_file="../../etc/passwd")


def test_save_latents_refuses_what_it_cannot_store(comfy, model):
    c, tl = content(comfy, model, batch=2), timeline(comfy, model, frames=2)
    with pytest.raises(ValueError, match="nothing to save"):
        comfy.run("StyleGANV_SaveLatents", filename_prefix="x/none")
    with pytest.raises(ValueError, match="morph or a direction"):
        comfy.run("StyleGANV_SaveLatents", filename_prefix="x/morph", content=morph(comfy, c, c, tl))
    grid_motion = comfy.run("StyleGANV_ContentMotionGrid", content=c, motion=motion(comfy, batch=2)).args[1]
    with pytest.raises(ValueError, match="grid"):
        comfy.run("StyleGANV_SaveLatents", filename_prefix="x/grid", motion=grid_motion)


def test_directions_as_files(comfy, model, generator):
    a, b = content(comfy, model, seed=1), content(comfy, model, seed=2)
    direction = comfy.one("StyleGANV_DirectionFromContents", content_from=a, content_to=b)
    (saved,) = comfy.run("StyleGANV_SaveDirection", direction=direction,
                         filename_prefix="stylegan_v_latents/smile").ui["latents"]
    name = f"stylegan_v_latents/{saved['filename']} [output]"
    assert comfy.validate("StyleGANV_LoadDirection", direction_file=name) is True
    assert torch.equal(comfy.one("StyleGANV_LoadDirection", direction_file=name).vector, direction.vector)
    # An attribute boundary stored as .npy [1, w_dim] applies to every layer.
    boundary = np.random.default_rng(0).standard_normal((1, generator.w_dim)).astype(np.float32)
    np.save(comfy.input_dir / "boundary.npy", boundary)
    loaded = comfy.one("StyleGANV_LoadDirection", direction_file="boundary.npy")
    assert torch.equal(loaded.vector, torch.from_numpy(boundary[0]))
    tl = timeline(comfy, model, frames=2)
    edited = comfy.one("StyleGANV_ApplyDirection", content=a, direction=loaded, timeline=tl, strength=1.5,
                       strength_keyframes="0:1", interpolation="smooth")
    assert torch.allclose(edited.ws.ws_for(torch.arange(1))[:, 0], a.ws + 1.5 * loaded.vector, atol=1e-6)
    np.save(comfy.input_dir / "wrong.npy", np.zeros((3, 5), np.float32))
    wrong = comfy.one("StyleGANV_LoadDirection", direction_file="wrong.npy")
    with pytest.raises(ValueError, match=r"shape \[3, 5\], which does not fit"):
        comfy.run("StyleGANV_ApplyDirection", content=a, direction=wrong, timeline=tl, strength=1.0,
                  strength_keyframes="0:1", interpolation="smooth")
    np.save(comfy.input_dir / "nan.npy", np.full((generator.w_dim,), np.nan, np.float32))
    with pytest.raises(ValueError, match="finite direction"):
        comfy.run("StyleGANV_LoadDirection", direction_file="nan.npy")


# ---- conditional models ------------------------------------------------------------------------------------

def test_edits_keep_class_labels_of_conditional_models(comfy):
    model = comfy.one("StyleGANV_LoadModel", ckpt_name="conditional.safetensors", dtype="fp32")
    a = comfy.one("StyleGANV_SampleContent", model=model, seed=1, batch_size=2, truncation_psi=1.0, class_index=0)
    b = comfy.one("StyleGANV_SampleContent", model=model, seed=2, batch_size=2, truncation_psi=1.0, class_index=2)
    tl = timeline(comfy, model, frames=3)
    morphed = morph(comfy, a, b, tl)
    assert torch.equal(morphed.c, a.c)
    assert render(comfy, model, morphed, motion(comfy), tl).shape == (6, 32, 32, 3)
    grid_content, grid_motion, columns = comfy.run("StyleGANV_ContentMotionGrid", content=b,
                                                   motion=motion(comfy, batch=2)).args
    assert grid_content.c.shape == (4, 3) and torch.equal(grid_content.c, b.c[[0, 1, 0, 1]])
    assert render(comfy, model, grid_content, grid_motion, tl, grid_columns=columns).shape == (3, 64, 64, 3)


def test_sample_content_by_class(comfy, model):
    conditional = comfy.one("StyleGANV_LoadModel", ckpt_name="conditional.safetensors", dtype="fp32")
    chosen = comfy.one("StyleGANV_SampleContentByClass", model=conditional, seed=6, classes="2, 0, 2",
                       truncation_psi=0.8)
    assert torch.equal(chosen.c, torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 0, 1]]))
    # Same noise per video as Sample Content: one class for all is Sample Content with that class_index.
    same = comfy.one("StyleGANV_SampleContent", model=conditional, seed=6, batch_size=3, truncation_psi=0.8,
                     class_index=2)
    assert torch.allclose(chosen.ws[[0, 2]], same.ws[[0, 2]], atol=1e-6)
    assert not torch.allclose(chosen.ws[1], same.ws[1], atol=1e-3)  # the class changes the content
    class0 = comfy.one("StyleGANV_SampleContent", model=conditional, seed=6, batch_size=3, truncation_psi=0.8,
                       class_index=0)
    assert torch.allclose(chosen.ws[1], class0.ws[1], atol=1e-6)
    assert render(comfy, conditional, chosen, motion(comfy), timeline(comfy, conditional, 2)).shape == (6, 32, 32, 3)
    with pytest.raises(ValueError, match="class 3 is out of range: this model has 3 classes"):
        comfy.run("StyleGANV_SampleContentByClass", model=conditional, seed=0, classes="1, 3", truncation_psi=1.0)
    with pytest.raises(ValueError, match="not class-conditional"):
        comfy.run("StyleGANV_SampleContentByClass", model=model, seed=0, classes="1", truncation_psi=1.0)
    assert "whole numbers" in comfy.validate("StyleGANV_SampleContentByClass", classes="1, two")
    assert "empty" in comfy.validate("StyleGANV_SampleContentByClass", classes=" , ")


def test_timelines_far_out_render_quickly_and_beyond_the_limit_are_refused(comfy, model):
    """The timeline nodes reach the windowed renderer and the library's model-time limit (2^39 dataset frames)."""
    far = timeline(comfy, model, frames=3, start_time=1_000_000.0, speed=100.0)  # the widgets' extremes
    frames = render(comfy, model, content(comfy, model), motion(comfy), far)
    assert frames.shape[0] == 3 and torch.isfinite(frames).all()
    with pytest.raises(ValueError, match=r"2\^39"):
        speed_timeline(comfy, model, keys="0:1e12", seconds=2.0)
    with pytest.raises(ValueError, match=r"2\^39"):
        comfy.one("StyleGANV_OffsetTimeline", timeline=far, seconds=1e300)
