"""Render and Render to File: frames of (model, content, motion, timeline), chunk by chunk."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from fractions import Fraction

import comfy.model_management as mm
import comfy.utils
import folder_paths
import torch
from comfy.cli_args import args

from stylegan_v import render
from stylegan_v.batching import combined_batch
from stylegan_v.limits import check_render_memory
from stylegan_v.video import write_mp4s

from .comfy_api_compat import InputImpl, Types, io, ui
from .loader import OUT_OF_MEMORY, generator_on_device
from .payloads import Content, ContentType, ModelType, MotionType, Timeline, TimelineType

GIB = 1024**3


def render_inputs() -> list[io.Input]:
    """Inputs shared by both render nodes (same order: saved workflows list widgets by position)."""
    return [
        ModelType.Input("model", tooltip="The generator from Load StyleGAN-V Model."),
        ContentType.Input("content", tooltip="What the videos show, from StyleGAN-V Sample Content."),
        MotionType.Input("motion", tooltip="How the videos move, from StyleGAN-V Sample Motion. Its batch size "
                                           "must equal the content's, or be 1 (shared)."),
        TimelineType.Input("timeline", tooltip="Which instants to render, from StyleGAN-V Timeline."),
        io.Int.Input("chunk_size", default=16, min=1, max=1024,
                     tooltip="Frames per video rendered at once. Larger is faster on big GPUs, smaller needs "
                             "less memory; the frames are the same either way."),
        io.Int.Input("grid_columns", default=0, min=0, max=64,
                     tooltip="0: videos of a batch one after another. N: the batch tiled into one video, "
                             "N videos wide."),
    ]


def out_of_memory(what: str) -> RuntimeError:
    return RuntimeError(f"out of memory while {what}: lower chunk_size or the batch size, or use a smaller "
                        "model or dtype fp16; for long videos use 'StyleGAN-V Render to File', which streams "
                        "to disk.")


def output_geometry(generator, batch: int, grid_columns: int) -> tuple[int, int, int]:
    """(videos, height, width) of what the render nodes emit."""
    h = w = generator.img_resolution
    if not grid_columns:
        return batch, h, w
    columns = min(grid_columns, batch)
    return 1, math.ceil(batch / columns) * h, columns * w


def check_compatible(generator, content: Content, motion: render.Motion) -> int:
    """The batch size the inputs render, or an error naming the mismatch."""
    expected = (generator.num_ws, generator.w_dim)
    if content.latent_shape != expected or (generator.c_dim and content.c is None):
        raise ValueError(f"the content was sampled from another model (latents {list(content.latent_shape)}, this "
                         f"model needs {list(expected)}); connect Sample Content to the same Load Model node.")
    return combined_batch(content.batch_size, motion.batch_size, "content", "motion")


def frame_chunks(model, content: Content, motion, timeline: Timeline, chunk_size: int,
                 grid_columns: int) -> tuple[Iterator[tuple[int, torch.Tensor]], tuple[int, int, int]]:
    """Raw frames [videos, n, 3, H, W] chunk by chunk, with progress and prompt interruption."""
    generator = generator_on_device(model)
    batch = check_compatible(generator, content, motion)
    geometry = output_geometry(generator, batch, grid_columns)
    # Refused before the first chunk, with the estimate and the remedy, rather than failing halfway.
    check_render_memory(generator, batch, min(chunk_size, timeline.num_frames),
                        device=next(generator.parameters()).device)

    def chunks():
        progress = comfy.utils.ProgressBar(math.ceil(timeline.num_frames / chunk_size))
        mm.throw_exception_if_processing_interrupted()
        try:
            for first, frames in render.render_chunks(generator, content.ws, motion, timeline.t, c=content.c,
                                                      chunk_size=chunk_size):
                if grid_columns:
                    frames = render.grid(frames, min(grid_columns, batch)).unsqueeze(0)
                yield first, frames
                progress.update(1)
                # Checked between chunks, so a stop request ends even a very long render promptly.
                mm.throw_exception_if_processing_interrupted()
        except OUT_OF_MEMORY:
            mm.soft_empty_cache()
            raise out_of_memory(f"rendering {chunk_size} frames of {batch} video(s) at once") from None

    return chunks(), geometry


def frame_rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1000)


class Render(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_Render",
            display_name="StyleGAN-V Render",
            category="StyleGAN-V",
            description="Renders the videos in memory. For an mp4, connect video to Save Video; for image nodes "
                        "(upscale, preview, animated WEBP) use images with fps. All frames are kept in memory: for "
                        "long videos use StyleGAN-V Render to File.",
            inputs=render_inputs(),
            outputs=[
                io.Image.Output(display_name="images", tooltip="All frames [N, H, W, 3], for image nodes (upscale, "
                                                                "preview, animated WEBP); a batch of videos comes "
                                                                "video after video (or tiled, with grid_columns)."),
                io.Float.Output(display_name="fps", tooltip="Frame rate of the timeline, for savers that take "
                                                            "images (Save Animated WEBP, Create Video)."),
                io.Video.Output(display_name="video", tooltip="The same frames with their frame rate: connect it "
                                                              "straight to Save Video for an mp4."),
            ],
        )

    @classmethod
    def execute(cls, model, content, motion, timeline, chunk_size: int, grid_columns: int) -> io.NodeOutput:
        chunks, (videos, h, w) = frame_chunks(model, content, motion, timeline, chunk_size, grid_columns)
        frames = timeline.num_frames
        device = mm.intermediate_device()
        needed = videos * frames * h * w * 3 * 4
        free = mm.get_free_memory(device)
        if needed > 0.9 * free:
            raise RuntimeError(f"the images would need {needed / GIB:.1f} GiB but only {free / GIB:.1f} GiB are "
                               f"free: shorten the timeline ({frames} frames), lower the batch size, or use "
                               "'StyleGAN-V Render to File', which streams to disk with little memory.")
        try:
            images = torch.empty([videos, frames, h, w, 3], dtype=torch.float32, device=device)
        except OUT_OF_MEMORY:
            raise out_of_memory(f"allocating {needed / GIB:.1f} GiB of images") from None
        for first, chunk in chunks:
            images[:, first:first + chunk.shape[1]] = render.to_unit(chunk).to(device)
        images = images.reshape(videos * frames, h, w, 3)
        video = InputImpl.VideoFromComponents(Types.VideoComponents(images=images, frame_rate=frame_rate(timeline.fps)))
        return io.NodeOutput(images, timeline.fps, video)


class RenderToFile(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_RenderToFile",
            display_name="StyleGAN-V Render to File",
            category="StyleGAN-V",
            description="Renders straight into H.264 mp4 files in ComfyUI's output folder, chunk by chunk, so "
                        "memory does not grow with the length: hours of video work. The workflow is embedded in "
                        "the file like ComfyUI's own video saver does. A batch gives one file per video, or one "
                        "tiled file with grid_columns.",
            inputs=[
                *render_inputs(),
                io.Int.Input("crf", default=18, min=0, max=51,
                             tooltip="H.264 quality (constant rate factor): 0 is lossless, 18 looks lossless, "
                                     "23 is the usual default; higher means smaller files."),
                io.String.Input("filename_prefix", default="stylegan_v/video",
                                tooltip="Name of the file in ComfyUI's output folder; may include a subfolder "
                                        "and %date:yyyy-MM-dd% style placeholders."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def _metadata(cls) -> dict[str, str] | None:
        if args.disable_metadata or cls.hidden is None:
            return None
        metadata = {}
        for key, value in (cls.hidden.extra_pnginfo or {}).items():  # the UI workflow, as SaveVideo embeds it
            metadata[key] = json.dumps(value)
        if cls.hidden.prompt is not None:
            metadata["prompt"] = json.dumps(cls.hidden.prompt)
        return metadata or None

    @classmethod
    def execute(cls, model, content, motion, timeline, chunk_size: int, grid_columns: int, crf: int,
                filename_prefix: str) -> io.NodeOutput:
        chunks, (videos, h, w) = frame_chunks(model, content, motion, timeline, chunk_size, grid_columns)
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, folder_paths.get_output_directory(), w, h)
        files = [f"{name}_{counter + i:05}_.mp4" for i in range(videos)]
        # Each file is encoded in its own thread beside the rendering, a few chunks behind it.
        write_mp4s([os.path.join(folder, f) for f in files], (render.to_uint8(chunk).cpu() for _, chunk in chunks),
                   timeline.fps, crf=crf, metadata=cls._metadata())
        results = [ui.SavedResult(f, subfolder, io.FolderType.output) for f in files]
        return io.NodeOutput(ui=ui.PreviewVideo(results))
