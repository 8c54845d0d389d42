"""Project Image and Project Video: pictures and clips into StyleGAN-V latents (image/video to video)."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import replace

import comfy.model_management as mm
import comfy.utils
import torch

from stylegan_v import render
from stylegan_v.projection import FAST, FAST_VIDEO, project_images, project_video

from .comfy_api_compat import io
from .loader import OUT_OF_MEMORY, generator_on_device
from .payloads import Content, ContentType, ModelType, MotionType

LATENTS = ["w+", "w"]
PERCEPTUALS = ["auto", "inception", "none"]
PREVIEW_SIZE = 512


def search_inputs(preset) -> list[io.Input]:
    """The search settings both nodes share (same order: saved workflows list widgets by position)."""
    return [
        io.Int.Input("steps", default=preset.steps, min=1, max=100_000,
                     tooltip="Optimiser steps: more fit closer and take longer."),
        io.Combo.Input("latent", options=LATENTS, default="w+",
                       tooltip="w+: one latent per layer (closer fits); w: one latent for all layers (stays "
                               "closer to what the model usually draws)."),
        io.Combo.Input("perceptual", options=PERCEPTUALS, default="auto",
                       tooltip="Perceptual distance next to the pixel loss: inception (the FID network, from the "
                               "metrics extra), none (pixels only), auto (inception when installed)."),
        io.Int.Input("seed", default=0, min=0, max=0xFFFF_FFFF, tooltip="Seed of the search's random choices."),
        io.Int.Input("class_index", default=-1, min=-1, max=100_000,
                     tooltip="Class of the picture, for class-conditional models (required there); ignored by "
                             "unconditional models."),
    ]


def raw_frames(generator, images: torch.Tensor, what: str) -> torch.Tensor:
    """ComfyUI IMAGE [B, H, W, 3] in 0..1 -> raw [B, 3, H, W] in [-1, 1], refusing the wrong size."""
    r = generator.img_resolution
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{what} must be RGB images [B, H, W, 3], got {list(images.shape)} (remove an alpha "
                         "channel or convert grayscale to RGB first)")
    if tuple(images.shape[1:3]) != (r, r):
        raise ValueError(f"{what} is {images.shape[2]}x{images.shape[1]}, but this model draws {r}x{r}: resize "
                         f"it to {r}x{r} first (for example with Upscale Image, crop: center)")
    return images.float().movedim(-1, 1) * 2 - 1


def labels(generator, class_index: int, batch: int) -> torch.Tensor | None:
    if not generator.c_dim:
        return None
    if not 0 <= class_index < generator.c_dim:
        raise ValueError(f"this model is class-conditional: set class_index to the picture's class "
                         f"(0 to {generator.c_dim - 1})")
    return render.class_labels(generator, 0, batch, class_index)


def progress_callback(steps: int, preview_every: int):
    bar = comfy.utils.ProgressBar(steps)

    def callback(progress) -> None:
        preview = None
        if preview_every and (progress.step % preview_every == 0 or progress.step == progress.steps):
            from PIL import Image

            frame = render.to_uint8(progress.frames[0].cpu()).numpy()
            preview = ("JPEG", Image.fromarray(frame), PREVIEW_SIZE)
        bar.update_absolute(progress.step, steps, preview)
        # Checked after every step, so a stop request ends a long search promptly.
        mm.throw_exception_if_processing_interrupted()

    return callback


@contextlib.contextmanager
def autograd(generator, *tensors: torch.Tensor | None):
    """ComfyUI runs every node under torch.inference_mode(), and the model's weights and the input
    images were made there: autograd may not save such tensors for the backward pass. Yields a copy
    of the generator and of `tensors` made outside inference mode, with gradients on."""
    with torch.inference_mode(False), torch.enable_grad():
        yield copy.deepcopy(generator), *(None if x is None else x.clone() for x in tensors)


def config(preset, steps: int, latent: str, perceptual: str, seed: int):
    if latent not in LATENTS or perceptual not in PERCEPTUALS:
        raise ValueError(f"latent must be one of {', '.join(LATENTS)} and perceptual one of {', '.join(PERCEPTUALS)}")
    return replace(preset, steps=steps, latent=latent, perceptual=perceptual, seed=seed)


def schema(node_id: str, display_name: str, description: str, source: list[io.Input], preset, preview: str,
           outputs: list[io.Output]) -> io.Schema:
    """Both nodes' shape: model, what to project (`source`), the search settings, the preview interval.

    Saved workflows list widget values by position, so this order is part of the nodes' interface.
    """
    return io.Schema(
        node_id=node_id,
        display_name=display_name,
        category="StyleGAN-V",
        description=description,
        inputs=[
            ModelType.Input("model", tooltip="The generator from Load StyleGAN-V Model."),
            *source,
            *search_inputs(preset),
            io.Int.Input("preview_every", default=10, min=0, max=10_000,
                         tooltip=f"Show {preview} every this many steps (0: no preview)."),
        ],
        outputs=outputs,
    )


class ProjectImage(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            "StyleGANV_ProjectImage", "StyleGAN-V Project Image",
            "Finds the content that makes the model draw your picture at a chosen moment of a motion, so that "
            "Render animates it. The picture must have the model's size. A live preview of the fit is shown while "
            "it searches.",
            [io.Image.Input("image", tooltip="The picture(s) to project; a batch gives one content per picture."),
             MotionType.Input("motion", tooltip="The motion the picture is matched in, from Sample Motion (batch "
                                                "1, or one per picture). Render with the same motion."),
             io.Float.Input("time", default=0.0, min=0.0, max=1_000_000.0, step=0.1,
                            tooltip="The moment of the motion, in seconds of real-time playback, at which the "
                                    "render reproduces the picture.")],
            FAST, "the fit",
            [ContentType.Output(display_name="content", tooltip="The fitted content, for Render.")],
        )

    @classmethod
    def execute(cls, model, image, motion, time: float, steps: int, latent: str, perceptual: str, seed: int,
                class_index: int, preview_every: int) -> io.NodeOutput:
        generator = generator_on_device(model)
        targets = raw_frames(generator, image, "image")
        c = labels(generator, class_index, targets.shape[0])
        t = float(time) * float(generator.model_config.dataset_fps)
        try:
            with autograd(generator, targets.to(next(generator.parameters()).device), c) as (generator, targets, c):
                result = project_images(generator, targets, t=t, motion=motion, c=c,
                                        config=config(FAST, steps, latent, perceptual, seed),
                                        callback=progress_callback(steps, preview_every))
        except OUT_OF_MEMORY:
            mm.soft_empty_cache()
            raise RuntimeError("out of memory while projecting: project fewer pictures at once") from None
        return io.NodeOutput(Content(ws=result.ws.to(mm.intermediate_device()), c=c))


class ProjectVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            "StyleGANV_ProjectVideo", "StyleGAN-V Project Video",
            "Finds a content and a motion that reproduce a short clip (2 frames or more, e.g. 8-64), so that it "
            "can be continued past its end, looped, slowed or re-timed with the Timeline and motion nodes. The "
            "frames must have the model's size.",
            [io.Image.Input("images", tooltip="The clip's frames in order, e.g. from a video loader."),
             io.Float.Input("fps", default=25.0, min=0.01, max=1000.0, step=1.0,
                            tooltip="Frame rate of the clip (the fitted motion plays it back at this rate).")],
            FAST_VIDEO, "a frame of the fit",
            [ContentType.Output(display_name="content", tooltip="The fitted content, for Render."),
             MotionType.Output(display_name="motion", tooltip="The fitted motion; past the clip it continues like "
                                                              "any other motion.")],
        )

    @classmethod
    def execute(cls, model, images, fps: float, steps: int, latent: str, perceptual: str, seed: int,
                class_index: int, preview_every: int) -> io.NodeOutput:
        generator = generator_on_device(model)
        clip = raw_frames(generator, images, "images")
        if clip.shape[0] < 2:
            raise ValueError(f"images holds {clip.shape[0]} frame; a clip needs at least 2 to show motion (use "
                             "StyleGAN-V Project Image for a single picture)")
        c = labels(generator, class_index, 1)
        try:
            with autograd(generator, clip.to(next(generator.parameters()).device), c) as (generator, clip, c):
                result = project_video(generator, clip, fps, c=c,
                                       config=config(FAST_VIDEO, steps, latent, perceptual, seed),
                                       callback=progress_callback(steps, preview_every))
        except OUT_OF_MEMORY:
            mm.soft_empty_cache()
            raise RuntimeError("out of memory while projecting the clip: use fewer frames") from None
        return io.NodeOutput(Content(ws=result.ws.to(mm.intermediate_device()), c=c), result.motion)


NODES = [ProjectImage, ProjectVideo]
