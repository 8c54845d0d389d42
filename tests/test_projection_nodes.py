"""Project Image and Project Video inside the real ComfyUI 0.3.75 host (in-process).

These check the nodes' plumbing: IMAGE conversion, the library called with the node's settings,
progress with live previews, interruption, refusals, and the fitted motion flowing on to Render
and to latent files. The projection's quality is measured in test_projection.py.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from host.harness import require_host
from host.models import DEMO_CHECKPOINT, make_checkpoint

pytestmark = pytest.mark.host

IDS = ["StyleGANV_LoadModel", "StyleGANV_SampleContent", "StyleGANV_SampleMotion", "StyleGANV_Timeline",
       "StyleGANV_Render", "StyleGANV_ProjectImage", "StyleGANV_ProjectVideo", "StyleGANV_SaveLatents",
       "StyleGANV_LoadMotion"]
SEARCH = {"latent": "w+", "perceptual": "none", "seed": 0, "class_index": -1}


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    from host.inprocess import load_comfy

    work = tmp_path_factory.mktemp("comfy_projection")
    comfy_nodes, _ = load_comfy(require_host(), work)
    make_checkpoint(work / "models" / "stylegan_v" / DEMO_CHECKPOINT, seed=0)

    class Comfy:
        nodes: ClassVar[dict] = {k: comfy_nodes.NODE_CLASS_MAPPINGS[k] for k in IDS}

        def run(self, node_id, **inputs):
            return self.nodes[node_id].execute(**inputs)

    return Comfy()


@pytest.fixture(scope="module")
def model(comfy):
    return comfy.run("StyleGANV_LoadModel", ckpt_name=DEMO_CHECKPOINT, dtype="fp32").args[0]


def frames(comfy, model, count: int, seed: int = 1):
    """Rendered frames as ComfyUI IMAGE [count, H, W, 3]."""
    content = comfy.run("StyleGANV_SampleContent", model=model, seed=seed, batch_size=1, truncation_psi=1.0,
                        class_index=-1).args[0]
    motion = comfy.run("StyleGANV_SampleMotion", seed=seed, batch_size=1).args[0]
    timeline = comfy.run("StyleGANV_Timeline", model=model, fps=25.0, duration=count, unit="frames",
                         start_time=0.0, speed=1.0).args[0]
    return comfy.run("StyleGANV_Render", model=model, content=content, motion=motion, timeline=timeline,
                     chunk_size=16, grid_columns=0).args[0]


@pytest.fixture
def progress_events():
    import comfy.utils

    events = []
    previous = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None:
                                             events.append((value, total, preview)))
    yield events
    comfy.utils.set_progress_bar_global_hook(previous)


def test_nodes_are_registered_with_tooltips(comfy):
    for node_id in ("StyleGANV_ProjectImage", "StyleGANV_ProjectVideo"):
        schema = comfy.nodes[node_id].GET_SCHEMA()
        assert schema.category == "StyleGAN-V" and len(schema.description) > 40
        for item in (schema.inputs or []) + (schema.outputs or []):
            assert item.tooltip and len(item.tooltip) > 10, f"{node_id}.{item.id}"


def test_project_image_reports_progress_with_previews(comfy, model, progress_events):
    from PIL import Image

    image = frames(comfy, model, 1)
    motion = comfy.run("StyleGANV_SampleMotion", seed=5, batch_size=1).args[0]
    progress_events.clear()  # the render that made the picture reported its own progress
    (content,) = comfy.run("StyleGANV_ProjectImage", model=model, image=image, motion=motion, time=0.2, steps=4,
                           preview_every=2, **SEARCH).args
    generator = model.model.generator
    assert content.ws.shape == (1, generator.num_ws, generator.w_dim) and content.c is None
    assert [value for value, _, _ in progress_events] == [1, 2, 3, 4]
    previews = [preview for _, _, preview in progress_events if preview is not None]
    assert len(previews) == 2 and previews[0][0] == "JPEG" and isinstance(previews[0][1], Image.Image)
    assert previews[0][1].size == (generator.img_resolution, generator.img_resolution)


def test_project_video_gives_content_and_a_motion_that_renders_past_the_clip(comfy, model, tmp_path):
    from stylegan_v.projection import FittedMotion

    clip = frames(comfy, model, 4, seed=2)
    content, motion = comfy.run("StyleGANV_ProjectVideo", model=model, images=clip, fps=25.0, steps=3,
                                preview_every=0, **SEARCH).args
    assert isinstance(motion, FittedMotion)
    longer = comfy.run("StyleGANV_Timeline", model=model, fps=25.0, duration=12, unit="frames", start_time=0.0,
                       speed=1.0).args[0]
    images = comfy.run("StyleGANV_Render", model=model, content=content, motion=motion, timeline=longer,
                       chunk_size=16, grid_columns=0).args[0]
    assert images.shape == (12, *clip.shape[1:]) and bool(torch.isfinite(images).all())
    # The fitted motion is saved as numbers and loads back as the same motion.
    saved = comfy.run("StyleGANV_SaveLatents", filename_prefix="stylegan_v_latents/clip", motion=motion)
    name = f"stylegan_v_latents/{saved.ui['latents'][0]['filename']} [output]"
    loaded = comfy.run("StyleGANV_LoadMotion", latent_file=name).args[0]
    assert isinstance(loaded, FittedMotion) and torch.equal(loaded.prefix, motion.prefix)


def test_a_stop_request_ends_the_search(comfy, model):
    import comfy.model_management as mm

    image = frames(comfy, model, 1)
    motion = comfy.run("StyleGANV_SampleMotion", seed=5, batch_size=1).args[0]
    mm.interrupt_current_processing(True)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            comfy.run("StyleGANV_ProjectImage", model=model, image=image, motion=motion, time=0.0, steps=1000,
                      preview_every=0, **SEARCH)
    finally:
        mm.interrupt_current_processing(False)


def test_refusals_name_the_problem(comfy, model):
    motion = comfy.run("StyleGANV_SampleMotion", seed=5, batch_size=1).args[0]
    with pytest.raises(ValueError, match="this model draws 32x32: resize it"):
        comfy.run("StyleGANV_ProjectImage", model=model, image=torch.zeros(1, 48, 64, 3), motion=motion, time=0.0,
                  steps=1, preview_every=0, **SEARCH)
    with pytest.raises(ValueError, match="RGB"):
        comfy.run("StyleGANV_ProjectImage", model=model, image=torch.zeros(1, 32, 32, 4), motion=motion, time=0.0,
                  steps=1, preview_every=0, **SEARCH)
    with pytest.raises(ValueError, match="at least 2"):
        comfy.run("StyleGANV_ProjectVideo", model=model, images=torch.zeros(1, 32, 32, 3), fps=25.0, steps=1,
                  preview_every=0, **SEARCH)


def test_projection_runs_under_inference_mode_like_comfyui(comfy):
    # ComfyUI executes every node inside torch.inference_mode(), so the model's weights, the
    # pictures and the motion all come from there; the search needs autograd all the same.
    with torch.inference_mode():
        model = comfy.run("StyleGANV_LoadModel", ckpt_name=DEMO_CHECKPOINT, dtype="fp32").args[0]
        clip = frames(comfy, model, 2, seed=3)
        motion = comfy.run("StyleGANV_SampleMotion", seed=5, batch_size=1).args[0]
        (content,) = comfy.run("StyleGANV_ProjectImage", model=model, image=clip[:1], motion=motion, time=0.0,
                               steps=2, preview_every=0, **SEARCH).args
        fitted, _ = comfy.run("StyleGANV_ProjectVideo", model=model, images=clip, fps=25.0, steps=2,
                              preview_every=0, **SEARCH).args
    generator = model.model.generator
    assert content.ws.shape == fitted.ws.shape == (1, generator.num_ws, generator.w_dim)
    assert bool(torch.isfinite(content.ws).all()) and bool(torch.isfinite(fitted.ws).all())
