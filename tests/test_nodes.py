"""Every node of the pack called in-process inside the real ComfyUI 0.3.75 (fast unit tests).

The pack is loaded by ComfyUI's own custom-node loader; nodes run through their V3
`execute`. References are the library's functions and the documented formulas, so these
tests check the nodes' plumbing (shapes, order, devices, errors), not the model itself.
"""

from __future__ import annotations

import math
import os
import pickle

import av
import numpy as np
import pytest
import torch

from host.harness import require_host
from host.models import BUNDLED_DEMO, DEMO_CHECKPOINT, make_checkpoint

pytestmark = pytest.mark.host

NODE_IDS = ["StyleGANV_LoadModel", "StyleGANV_SampleContent", "StyleGANV_SampleMotion", "StyleGANV_Timeline",
            "StyleGANV_Render", "StyleGANV_RenderToFile"]


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    from host.inprocess import load_comfy

    work = tmp_path_factory.mktemp("comfy_inprocess")
    comfy_nodes, _ = load_comfy(require_host(), work)
    models = work / "models" / "stylegan_v"
    make_checkpoint(models / DEMO_CHECKPOINT, seed=0)
    make_checkpoint(models / "conditional.safetensors", seed=1, c_dim=3, dataset_fps=30.0)
    (models / "corrupt.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    (models / "not_stylegan.pkl").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))

    class Comfy:
        nodes = {k: comfy_nodes.NODE_CLASS_MAPPINGS[k] for k in NODE_IDS}
        output_dir = work / "output"
        models_dir = models

        def run(self, node_id, **inputs):
            return self.nodes[node_id].execute(**inputs)

    return Comfy()


@pytest.fixture(scope="module")
def model(comfy):
    return comfy.run("StyleGANV_LoadModel", ckpt_name=DEMO_CHECKPOINT, dtype="auto").args[0]


def timeline(comfy, model, frames=6, fps=25.0, start_time=0.0, speed=1.0):
    return comfy.run("StyleGANV_Timeline", model=model, fps=fps, duration=frames, unit="frames",
                     start_time=start_time, speed=speed).args[0]


def latents(comfy, model, batch=2, motion_batch=None, seed=3):
    content = comfy.run("StyleGANV_SampleContent", model=model, seed=seed, batch_size=batch, truncation_psi=1.0,
                        class_index=-1).args[0]
    motion = comfy.run("StyleGANV_SampleMotion", seed=seed + 1, batch_size=motion_batch or batch).args[0]
    return content, motion


def test_every_node_is_registered_documented_and_categorised(comfy):
    for node_id, cls in comfy.nodes.items():
        schema = cls.GET_SCHEMA()
        assert schema.node_id == node_id and schema.category == "StyleGAN-V"
        assert schema.display_name and len(schema.description) > 40, node_id
        for item in (schema.inputs or []) + (schema.outputs or []):
            assert item.tooltip and len(item.tooltip) > 10, f"{node_id}.{item.id} has no tooltip"


def test_load_model_wraps_generator_for_comfy_model_management(comfy, model):
    import comfy.model_management as mm
    from comfy.model_patcher import ModelPatcher

    import stylegan_v

    assert isinstance(model, ModelPatcher)
    generator = model.model.generator
    assert isinstance(generator, stylegan_v.Generator) and not generator.training
    assert generator.precision == "float32"  # auto on a CPU
    mm.load_models_gpu([model])
    assert any(loaded.model is model for loaded in mm.current_loaded_models)
    reference = stylegan_v.load(comfy.models_dir / DEMO_CHECKPOINT)
    for (name, a), (_, b) in zip(generator.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("dtype,precision", [("fp16", "float16"), ("bf16", "bfloat16"), ("fp32", "float32")])
def test_load_model_dtype(comfy, dtype, precision):
    patcher = comfy.run("StyleGANV_LoadModel", ckpt_name=DEMO_CHECKPOINT, dtype=dtype).args[0]
    assert patcher.model.generator.precision == precision


def test_load_model_cache_key_follows_file_content(comfy):
    load = comfy.nodes["StyleGANV_LoadModel"]
    path = comfy.models_dir / "changing.safetensors"
    make_checkpoint(path, seed=5)
    first = load.fingerprint_inputs(ckpt_name=path.name, dtype="auto")
    content = path.read_bytes()
    path.unlink()
    path.write_bytes(content)  # same content, new file and mtime
    assert load.fingerprint_inputs(ckpt_name=path.name, dtype="auto") == first
    make_checkpoint(path, seed=6)
    assert load.fingerprint_inputs(ckpt_name=path.name, dtype="auto") != first


def test_bundled_demo_model_loads_by_name_without_copying(comfy):
    import folder_paths

    import stylegan_v

    assert folder_paths.get_folder_paths("stylegan_v")[-1] == str(BUNDLED_DEMO.parent)
    shadow = comfy.models_dir / DEMO_CHECKPOINT  # the tests' random-weight model of the same name wins...
    assert folder_paths.get_full_path("stylegan_v", DEMO_CHECKPOINT) == str(shadow)
    aside = shadow.with_suffix(".aside")
    shadow.rename(aside)
    try:  # ...and without it the name resolves to the model the pack ships
        assert DEMO_CHECKPOINT in folder_paths.get_filename_list("stylegan_v")
        generator = comfy.run("StyleGANV_LoadModel", ckpt_name=DEMO_CHECKPOINT, dtype="fp32").args[0].model.generator
    finally:
        aside.rename(shadow)
    shipped = stylegan_v.load(BUNDLED_DEMO)
    for (name, a), (_, b) in zip(generator.state_dict().items(), shipped.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_load_model_errors_say_what_is_wrong(comfy):
    with pytest.raises(FileNotFoundError, match="missing.safetensors.*models/stylegan_v"):
        comfy.run("StyleGANV_LoadModel", ckpt_name="missing.safetensors", dtype="auto")
    with pytest.raises(ValueError, match="corrupt.safetensors' is not a usable StyleGAN-V checkpoint"):
        comfy.run("StyleGANV_LoadModel", ckpt_name="corrupt.safetensors", dtype="auto")
    with pytest.raises(ValueError, match="not_stylegan.pkl' is not a usable StyleGAN-V checkpoint.*snapshot"):
        comfy.run("StyleGANV_LoadModel", ckpt_name="not_stylegan.pkl", dtype="auto")


def test_load_model_imports_original_pkl(comfy, official_pkl):
    import shutil

    import stylegan_v

    shutil.copy(official_pkl, comfy.models_dir / "official.pkl")
    patcher = comfy.run("StyleGANV_LoadModel", ckpt_name="official.pkl", dtype="fp32").args[0]
    reference = stylegan_v.load(official_pkl)
    got = patcher.model.generator.state_dict()
    assert got.keys() == reference.state_dict().keys()
    assert all(torch.equal(got[k], v) for k, v in reference.state_dict().items())


def test_sample_content_is_seeded_and_matches_the_library(comfy, model):
    from stylegan_v import render

    content, _ = latents(comfy, model, batch=3, seed=11)
    generator = model.model.generator
    assert torch.equal(content.ws, render.sample_content(generator, 11, 3))
    assert content.c is None and content.ws.device.type == "cpu"
    again, _ = latents(comfy, model, batch=3, seed=11)
    other, _ = latents(comfy, model, batch=3, seed=12)
    assert torch.equal(again.ws, content.ws) and not torch.equal(other.ws, content.ws)
    psi0 = comfy.run("StyleGANV_SampleContent", model=model, seed=11, batch_size=3, truncation_psi=0.0,
                     class_index=-1).args[0]
    w_avg = generator.mapping.w_avg
    assert torch.allclose(psi0.ws, w_avg.expand_as(psi0.ws))  # psi 0 is the average content


def test_sample_content_class_conditional(comfy):
    model = comfy.run("StyleGANV_LoadModel", ckpt_name="conditional.safetensors", dtype="auto").args[0]
    content = comfy.run("StyleGANV_SampleContent", model=model, seed=1, batch_size=2, truncation_psi=1.0,
                        class_index=2).args[0]
    assert torch.equal(content.c, torch.tensor([[0.0, 0, 1], [0, 0, 1]]))
    with pytest.raises(ValueError, match="class_index 3 is out of range: this model has 3 classes"):
        comfy.run("StyleGANV_SampleContent", model=model, seed=1, batch_size=2, truncation_psi=1.0, class_index=3)
    images, fps, _ = comfy.run("StyleGANV_Render", model=model, content=content,
                               motion=comfy.run("StyleGANV_SampleMotion", seed=0, batch_size=1).args[0],
                               timeline=timeline(comfy, model, frames=3), chunk_size=2, grid_columns=0).args
    assert images.shape == (6, 32, 32, 3)


def test_sample_motion_carries_seed_and_batch(comfy):
    motion = comfy.run("StyleGANV_SampleMotion", seed=42, batch_size=3).args[0]
    assert (motion.seed, motion.batch_size) == (42, 3)


@pytest.mark.parametrize("duration,unit,fps,frames", [(2.0, "seconds", 25.0, 50), (0.01, "seconds", 30.0, 1),
                                                       (1.5, "seconds", 10.0, 15), (7.0, "frames", 60.0, 7)])
def test_timeline_frame_count(comfy, model, duration, unit, fps, frames):
    tl = comfy.run("StyleGANV_Timeline", model=model, fps=fps, duration=duration, unit=unit, start_time=0.0,
                   speed=1.0).args[0]
    assert tl.num_frames == frames and tl.fps == fps


def test_timeline_uses_the_model_dataset_fps(comfy, model):
    conditional = comfy.run("StyleGANV_LoadModel", ckpt_name="conditional.safetensors", dtype="auto").args[0]
    for m, dataset_fps in ((model, 25.0), (conditional, 30.0)):
        tl = timeline(comfy, m, frames=5, fps=50.0, start_time=2.0, speed=0.5)
        expected = torch.tensor([(2.0 + 0.5 * k / 50.0) * dataset_fps for k in range(5)], dtype=torch.float64)
        assert tl.dataset_fps == dataset_fps
        assert torch.allclose(tl.t, expected)


def test_timeline_refuses_absurd_lengths(comfy, model):
    with pytest.raises(ValueError, match="frames, more than the limit"):
        comfy.run("StyleGANV_Timeline", model=model, fps=240.0, duration=1_000_000.0, unit="seconds",
                  start_time=0.0, speed=1.0)


def test_render_matches_the_library_video_major(comfy, model):
    from stylegan_v import render

    content, motion = latents(comfy, model, batch=2)
    tl = timeline(comfy, model, frames=5)
    images, fps, video = comfy.run("StyleGANV_Render", model=model, content=content, motion=motion, timeline=tl,
                                   chunk_size=2, grid_columns=0).args
    expected = render.to_unit(render.render(model.model.generator, content.ws, motion, tl.t, chunk_size=5))
    assert images.shape == (10, 32, 32, 3) and images.dtype == torch.float32 and images.device.type == "cpu"
    assert torch.allclose(images, expected.reshape(10, 32, 32, 3), atol=1e-5)
    assert 0 <= float(images.min()) and float(images.max()) <= 1 and float(images.std()) > 0.05
    assert fps == 25.0
    components = video.get_components()
    assert components.images.shape == images.shape and components.frame_rate == 25
    assert video.get_dimensions() == (32, 32)


def test_render_is_independent_of_chunk_size(comfy, model):
    content, motion = latents(comfy, model, batch=1)
    tl = timeline(comfy, model, frames=7)
    outs = [comfy.run("StyleGANV_Render", model=model, content=content, motion=motion, timeline=tl, chunk_size=n,
                      grid_columns=0).args[0] for n in (1, 3, 16)]
    assert torch.allclose(outs[0], outs[1], atol=1e-5) and torch.allclose(outs[0], outs[2], atol=1e-5)


def test_render_grid_tiles_the_batch(comfy, model):
    content, motion = latents(comfy, model, batch=3)
    tl = timeline(comfy, model, frames=4)
    flat = comfy.run("StyleGANV_Render", model=model, content=content, motion=motion, timeline=tl, chunk_size=4,
                     grid_columns=0).args[0].reshape(3, 4, 32, 32, 3)
    tiled, _, video = comfy.run("StyleGANV_Render", model=model, content=content, motion=motion, timeline=tl,
                                chunk_size=3, grid_columns=2).args
    assert tiled.shape == (4, 64, 64, 3) and video.get_dimensions() == (64, 64)
    for b in range(3):
        row, col = divmod(b, 2)
        assert torch.allclose(tiled[:, row * 32:(row + 1) * 32, col * 32:(col + 1) * 32], flat[b], atol=1e-5)
    assert float(tiled[:, 32:, 32:].abs().max()) == 0.0  # the empty cell is black


def test_render_shares_a_single_motion_and_refuses_mismatched_batches(comfy, model):
    content, _ = latents(comfy, model, batch=2)
    shared = comfy.run("StyleGANV_SampleMotion", seed=0, batch_size=1).args[0]
    tl = timeline(comfy, model, frames=2)
    images = comfy.run("StyleGANV_Render", model=model, content=content, motion=shared, timeline=tl, chunk_size=2,
                       grid_columns=0).args[0]
    assert images.shape == (4, 32, 32, 3)
    three = comfy.run("StyleGANV_SampleMotion", seed=0, batch_size=3).args[0]
    with pytest.raises(ValueError, match=r"content batch_size \(2\) and motion batch_size \(3\) differ"):
        comfy.run("StyleGANV_Render", model=model, content=content, motion=three, timeline=tl, chunk_size=2,
                  grid_columns=0)


def test_render_refuses_content_from_another_model(comfy, model):
    conditional = comfy.run("StyleGANV_LoadModel", ckpt_name="conditional.safetensors", dtype="auto").args[0]
    content, motion = latents(comfy, model, batch=1)
    with pytest.raises(ValueError, match="content was sampled from another model"):
        comfy.run("StyleGANV_Render", model=conditional, content=content, motion=motion,
                  timeline=timeline(comfy, conditional, frames=2), chunk_size=2, grid_columns=0)


def test_render_refuses_images_that_cannot_fit_in_memory(comfy, model):
    content, motion = latents(comfy, model, batch=1)
    huge = comfy.run("StyleGANV_Timeline", model=model, fps=240.0, duration=9_000_000, unit="frames",
                     start_time=0.0, speed=1.0).args[0]
    with pytest.raises(RuntimeError, match="GiB but only .* free.*Render to File"):
        comfy.run("StyleGANV_Render", model=model, content=content, motion=motion, timeline=huge, chunk_size=16,
                  grid_columns=0)


def test_render_refuses_a_chunk_that_cannot_fit_before_rendering(comfy, model, monkeypatch):
    import stylegan_v
    import stylegan_v.limits as limits

    monkeypatch.setattr(limits, "available_bytes", lambda device="cpu": 2 * 2**30)  # any machine: 2 GiB free
    content, motion = latents(comfy, model, batch=64)
    tl = timeline(comfy, model, frames=1024)
    need = limits.render_memory_bytes(stylegan_v.load(comfy.models_dir / DEMO_CHECKPOINT), 64, 1024)
    assert need > 2**30  # the estimate of this chunk is over the 1 GiB budget
    for node in ("StyleGANV_Render", "StyleGANV_RenderToFile"):
        with pytest.raises(MemoryError, match="64 videos x 1024 frames at once needs about .* smaller chunk"):
            comfy.run(node, model=model, content=content, motion=motion, timeline=tl, chunk_size=1024,
                      grid_columns=0, **({"crf": 18, "filename_prefix": "x"} if node.endswith("File") else {}))


@pytest.fixture
def progress_hook():
    from comfy import utils as comfy_utils

    calls = []
    previous = comfy_utils.PROGRESS_BAR_HOOK
    comfy_utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    yield calls
    comfy_utils.set_progress_bar_global_hook(previous)


def test_render_reports_progress_per_chunk(comfy, model, progress_hook):
    content, motion = latents(comfy, model, batch=1)
    comfy.run("StyleGANV_Render", model=model, content=content, motion=motion, timeline=timeline(comfy, model, 7),
              chunk_size=3, grid_columns=0)
    assert progress_hook == [(1, 3), (2, 3), (3, 3)]


def decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, float(stream.average_rate), stream.codec_context.name, dict(container.metadata)


def test_render_to_file_streams_an_h264_mp4(comfy, model):
    content, motion = latents(comfy, model, batch=1)
    tl = timeline(comfy, model, frames=9, fps=12.0)
    images = comfy.run("StyleGANV_Render", model=model, content=content, motion=motion, timeline=tl, chunk_size=4,
                       grid_columns=0).args[0]
    out = comfy.run("StyleGANV_RenderToFile", model=model, content=content, motion=motion, timeline=tl,
                    chunk_size=4, grid_columns=0, crf=0, filename_prefix="unit/single")
    (saved,) = out.ui.as_dict()["images"]
    assert saved["subfolder"] == "unit" and saved["type"] == "output"
    frames, fps, codec, _ = decode(comfy.output_dir / "unit" / saved["filename"])
    assert frames.shape == (9, 32, 32, 3) and fps == 12.0 and codec == "h264"
    expected = images.numpy() * 255
    error = np.abs(frames - expected).mean()
    shuffled = np.abs(frames - expected[::-1]).mean()
    assert error < 12 and error < shuffled / 2, (error, shuffled)  # near-lossless, and frame by frame


def test_render_to_file_batch_gives_one_file_per_video_or_a_grid(comfy, model):
    content, motion = latents(comfy, model, batch=3)
    tl = timeline(comfy, model, frames=4)
    out = comfy.run("StyleGANV_RenderToFile", model=model, content=content, motion=motion, timeline=tl,
                    chunk_size=3, grid_columns=0, crf=23, filename_prefix="unit/batch")
    saved = out.ui.as_dict()["images"]
    assert len(saved) == 3 and len({s["filename"] for s in saved}) == 3
    for s in saved:
        assert decode(comfy.output_dir / "unit" / s["filename"])[0].shape == (4, 32, 32, 3)
    out = comfy.run("StyleGANV_RenderToFile", model=model, content=content, motion=motion, timeline=tl,
                    chunk_size=3, grid_columns=3, crf=23, filename_prefix="unit/grid")
    (s,) = out.ui.as_dict()["images"]
    assert decode(comfy.output_dir / "unit" / s["filename"])[0].shape == (4, 32, 96, 3)


def test_interrupt_stops_a_long_render_between_chunks_and_leaves_no_file(comfy, model, progress_hook):
    import comfy.model_management as mm
    from comfy import utils as comfy_utils

    def interrupt_at_second_chunk(value, total, preview, node_id=None):
        progress_hook.append((value, total))
        if value == 2:
            mm.interrupt_current_processing(True)

    comfy_utils.set_progress_bar_global_hook(interrupt_at_second_chunk)
    content, motion = latents(comfy, model, batch=1)
    long = comfy.run("StyleGANV_Timeline", model=model, fps=25.0, duration=3600.0, unit="seconds", start_time=0.0,
                     speed=1.0).args[0]
    with pytest.raises(mm.InterruptProcessingException):
        comfy.run("StyleGANV_RenderToFile", model=model, content=content, motion=motion, timeline=long,
                  chunk_size=2, grid_columns=0, crf=23, filename_prefix="unit/interrupted")
    assert progress_hook[-1] == (2, math.ceil(90_000 / 2))
    assert not mm.processing_interrupted()  # the flag was consumed by the check
    unit = comfy.output_dir / "unit"
    assert [name for name in (os.listdir(unit) if unit.exists() else []) if "interrupted" in name] == []


def test_combo_values_are_validated_before_execution(comfy):
    load, tl = comfy.nodes["StyleGANV_LoadModel"], comfy.nodes["StyleGANV_Timeline"]
    assert load.validate_inputs(ckpt_name=DEMO_CHECKPOINT, dtype="fp16") is True
    assert "ckpt_name 'nope.safetensors' is not in models/stylegan_v" in load.validate_inputs(
        ckpt_name="nope.safetensors", dtype="auto")
    assert "dtype 'fp8' must be one of auto, fp32, fp16, bf16" in load.validate_inputs(ckpt_name=DEMO_CHECKPOINT,
                                                                                        dtype="fp8")
    assert tl.validate_inputs(unit="frames") is True and "unit 'minutes'" in tl.validate_inputs(unit="minutes")


def test_out_of_memory_becomes_advice(comfy, model, monkeypatch):
    import comfy.model_management as mm

    from stylegan_v import render

    def exhausted(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        yield  # a generator, like the real one

    content, motion = latents(comfy, model, batch=1)
    monkeypatch.setattr(render, "render_chunks", exhausted)
    for node_id, extra in (("StyleGANV_Render", {}), ("StyleGANV_RenderToFile", {"crf": 18,
                                                                                 "filename_prefix": "unit/oom"})):
        with pytest.raises(RuntimeError, match="out of memory while rendering.*lower chunk_size.*Render to File"):
            comfy.run(node_id, model=model, content=content, motion=motion, timeline=timeline(comfy, model, 4),
                      chunk_size=4, grid_columns=0, **extra)
    monkeypatch.setattr(mm, "load_models_gpu", lambda *a, **k: exhausted().__next__())
    with pytest.raises(RuntimeError, match="out of memory while loading.*Unload models.*fp16"):
        comfy.run("StyleGANV_SampleContent", model=model, seed=0, batch_size=1, truncation_psi=1.0, class_index=-1)


def test_longer_timeline_never_changes_the_beginning(comfy, model):
    content, motion = latents(comfy, model, batch=2)
    short, long = (comfy.run("StyleGANV_Render", model=model, content=content, motion=motion,
                             timeline=timeline(comfy, model, frames=n), chunk_size=chunk, grid_columns=0).args[0]
                   .reshape(2, n, 32, 32, 3) for n, chunk in ((4, 4), (40, 16)))
    assert torch.allclose(long[:, :4], short, atol=1e-5)
    assert not torch.allclose(long[:, 4:8], short, atol=1e-2)  # and it does move


def test_render_to_file_memory_is_bounded_by_a_few_chunks(comfy, model, monkeypatch):
    """However long the video, the renderer can never run more than a few chunks ahead of the encoder."""
    import time as _time

    import comfy.model_management as mm

    from stylegan_v import render

    counts = {"produced": 0, "consumed": 0, "max_ahead": 0, "frames": 0}

    def fast_renderer(G, ws, motion, t, c=None, chunk_size=16):
        for first in range(0, t.shape[0], chunk_size):
            n = min(chunk_size, t.shape[0] - first)
            counts["produced"] += 1
            yield first, torch.zeros(ws.shape[0], n, 3, 32, 32)

    def slow_encoder(path, batches, fps, crf=18, metadata=None):
        for batch in batches:
            counts["consumed"] += 1
            counts["frames"] += batch.shape[0]
            counts["max_ahead"] = max(counts["max_ahead"], counts["produced"] - counts["consumed"])
            _time.sleep(0.002)
        return counts["frames"]

    from stylegan_v import video

    monkeypatch.setattr(render, "render_chunks", fast_renderer)
    monkeypatch.setattr(video, "write_mp4", slow_encoder)
    content, motion = latents(comfy, model, batch=1)
    long = comfy.run("StyleGANV_Timeline", model=model, fps=25.0, duration=2000, unit="frames", start_time=0.0,
                     speed=1.0).args[0]
    assert not mm.processing_interrupted()
    comfy.run("StyleGANV_RenderToFile", model=model, content=content, motion=motion, timeline=long, chunk_size=8,
              grid_columns=0, crf=18, filename_prefix="unit/bounded")
    assert counts["frames"] == 2000 and counts["produced"] == 250
    assert counts["max_ahead"] <= 4, counts  # queue depth 2, plus the chunks in hand on each side
