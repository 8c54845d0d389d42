"""Latents as files: save content, motion and directions, and load them in another workflow or machine.

Files are written to ComfyUI's output folder (by default its `stylegan_v_latents` subfolder) and
listed for loading from the input folder (top level and `stylegan_v_latents/`) and from
`output/stylegan_v_latents/` (marked " [output]", ComfyUI's own annotation).
"""

from __future__ import annotations

import os
from pathlib import Path

import comfy.model_management as mm
import folder_paths
import torch

from stylegan_v.latents import DIRECTION_SUFFIXES, load_direction, load_latents, save_direction, save_latents

from .comfy_api_compat import io
from .editing_content import Direction, DirectionType
from .model_files import content_hash
from .payloads import Content, ContentType, MotionType

SUBFOLDER = "stylegan_v_latents"
LATENT_EXTENSIONS = (".safetensors",)
DIRECTION_EXTENSIONS = DIRECTION_SUFFIXES


def _listed(root: str, folder: str, extensions: tuple[str, ...], recursive: bool) -> list[str]:
    base = Path(root) / folder
    if not base.is_dir():
        return []
    found = base.rglob("*") if recursive else base.iterdir()
    return sorted(p.relative_to(root).as_posix() for p in found if p.is_file() and p.suffix.lower() in extensions)


def file_options(extensions: tuple[str, ...]) -> list[str]:
    """Loadable files: input/*, input/stylegan_v_latents/**, output/stylegan_v_latents/** [output]."""
    inputs, outputs = folder_paths.get_input_directory(), folder_paths.get_output_directory()
    names = _listed(inputs, "", extensions, recursive=False) + _listed(inputs, SUBFOLDER, extensions, True)
    return names + [f"{name} [output]" for name in _listed(outputs, SUBFOLDER, extensions, True)]


def listed_problem(name: str, input_name: str, extensions: tuple[str, ...]) -> bool | str:
    # ComfyUI 0.3.75 does not check V3 combo values itself: refuse unknown names with the prompt.
    if name in file_options(extensions):
        return True
    return (f"{input_name} '{name}' is not a file in the input folder or output/{SUBFOLDER}; save one with "
            "StyleGAN-V Save Latents (or put it in the input folder) and refresh")


def resolve(name: str) -> Path:
    """The file a listed name refers to; never outside the input and output folders."""
    path = Path(folder_paths.get_annotated_filepath(name)).resolve()
    roots = [Path(folder_paths.get_input_directory()).resolve(), Path(folder_paths.get_output_directory()).resolve()]
    if not any(path.is_relative_to(root) for root in roots):
        raise ValueError(f"'{name}' is outside ComfyUI's input and output folders")
    if not path.is_file():
        raise FileNotFoundError(f"latent file '{name}' was not found (looked in {path.parent}); save one with "
                                "StyleGAN-V Save Latents or put it in the input folder, then refresh")
    return path


def read_latents(name: str) -> dict:
    path = resolve(name)
    try:
        return load_latents(path)
    except ValueError as e:
        raise ValueError(f"cannot load '{name}': {e}") from None


def read_direction(name: str) -> torch.Tensor:
    path = resolve(name)
    try:
        return load_direction(path)
    except ValueError as e:
        raise ValueError(f"cannot load '{name}': {e}") from None


def save_path(filename_prefix: str) -> tuple[Path, str, str]:
    """(path, file name, subfolder) of the next free name for `filename_prefix` in the output folder."""
    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
        filename_prefix, folder_paths.get_output_directory())
    file = f"{name}_{counter:05}_.safetensors"
    return Path(folder) / file, file, subfolder


def saved(file: str, subfolder: str) -> dict:
    return {"latents": [{"filename": file, "subfolder": subfolder, "type": "output"}]}


class SaveLatents(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_SaveLatents",
            display_name="StyleGAN-V Save Latents",
            category="StyleGAN-V/Latents",
            description="Saves a content and/or a motion to a .safetensors file in the output folder, so a look "
                        "can be reused in other workflows and on other machines (Load Content / Load Motion). "
                        "Motions are stored as their recipe (seeds, loop, blend, intensity), which reproduces "
                        "them exactly at any length; a motion fitted by Project Video keeps its fitted noise as "
                        "numbers.",
            inputs=[
                io.String.Input("filename_prefix", default=f"{SUBFOLDER}/look",
                                tooltip="File name in the output folder, with subfolder; files in "
                                        f"output/{SUBFOLDER} are offered by the load nodes."),
                ContentType.Input("content", optional=True,
                                  tooltip="The content to save (fixed latents, not a morph or direction edit)."),
                MotionType.Input("motion", optional=True, tooltip="The motion to save."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, filename_prefix: str, content: Content | None = None, motion=None) -> io.NodeOutput:
        if content is None and motion is None:
            raise ValueError("Save Latents has nothing to save: connect a content and/or a motion")
        ws = c = None
        if content is not None:
            if not isinstance(content.ws, torch.Tensor):
                raise ValueError("Save Latents stores fixed content latents; a morph or a direction applied over "
                                 "time cannot be saved (save its inputs instead)")
            ws, c = content.ws, content.c
        path, file, subfolder = save_path(filename_prefix)
        try:
            save_latents(path, ws=ws, c=c, motion=motion)
        except TypeError:
            raise ValueError("this motion cannot be saved (a content x motion grid's motion); save the motions "
                             "that go into the grid instead") from None
        return io.NodeOutput(ui=saved(file, subfolder))


class _LatentFileLoader(io.ComfyNode):
    """What both latent loaders share: a listed file, cached by its content."""

    @classmethod
    def validate_inputs(cls, latent_file: str) -> bool | str:
        return listed_problem(latent_file, "latent_file", LATENT_EXTENSIONS)

    @classmethod
    def fingerprint_inputs(cls, latent_file: str) -> str:
        return content_hash(str(resolve(latent_file)))


class LoadContent(_LatentFileLoader):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_LoadContent",
            display_name="StyleGAN-V Load Content",
            category="StyleGAN-V/Latents",
            description="Loads a content saved by StyleGAN-V Save Latents (from the input folder or "
                        f"output/{SUBFOLDER}). Use it with the model it was sampled from.",
            inputs=[io.Combo.Input("latent_file", options=file_options(LATENT_EXTENSIONS),
                                   tooltip=f"A latent file in the input folder or output/{SUBFOLDER}.")],
            outputs=[ContentType.Output(display_name="content", tooltip="The saved content, for Render.")],
        )

    @classmethod
    def execute(cls, latent_file: str) -> io.NodeOutput:
        data = read_latents(latent_file)
        if data["ws"] is None:
            raise ValueError(f"'{latent_file}' holds no content (only a motion): use StyleGAN-V Load Motion")
        ws, c = data["ws"], data["c"]
        if c is not None and (c.ndim != 2 or c.shape[0] != ws.shape[0]):
            raise ValueError(f"'{latent_file}': class labels {list(c.shape)} do not match {ws.shape[0]} contents")
        # Files from earlier versions also carry a "model_fingerprint" (the checkpoint file's hash); it is ignored.
        return io.NodeOutput(Content(ws=ws.to(mm.intermediate_device()), c=c))


class LoadMotion(_LatentFileLoader):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_LoadMotion",
            display_name="StyleGAN-V Load Motion",
            category="StyleGAN-V/Latents",
            description="Loads a motion saved by StyleGAN-V Save Latents (from the input folder or "
                        f"output/{SUBFOLDER}); it is the same motion on any machine and at any length.",
            inputs=[io.Combo.Input("latent_file", options=file_options(LATENT_EXTENSIONS),
                                   tooltip=f"A latent file in the input folder or output/{SUBFOLDER}.")],
            outputs=[MotionType.Output(display_name="motion", tooltip="The saved motion, for Render.")],
        )

    @classmethod
    def execute(cls, latent_file: str) -> io.NodeOutput:
        motion = read_latents(latent_file)["motion"]
        if motion is None:
            raise ValueError(f"'{latent_file}' holds no motion (only a content): use StyleGAN-V Load Content")
        return io.NodeOutput(motion)


class SaveDirection(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_SaveDirection",
            display_name="StyleGAN-V Save Direction",
            category="StyleGAN-V/Latents",
            description="Saves a latent direction to a .safetensors file in the output folder, for StyleGAN-V "
                        "Load Direction in other workflows.",
            inputs=[
                DirectionType.Input("direction", tooltip="The direction to save."),
                io.String.Input("filename_prefix", default=f"{SUBFOLDER}/direction",
                                tooltip=f"File name in the output folder, with subfolder (output/{SUBFOLDER} "
                                        "is offered by Load Direction)."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, direction: Direction, filename_prefix: str) -> io.NodeOutput:
        path, file, subfolder = save_path(filename_prefix)
        save_direction(path, direction.vector, source=direction.source)
        return io.NodeOutput(ui=saved(file, subfolder))


class LoadDirection(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_LoadDirection",
            display_name="StyleGAN-V Load Direction",
            category="StyleGAN-V/Latents",
            description="Loads a latent direction: a file from StyleGAN-V Save Direction, or any .safetensors or "
                        ".npy holding a [w_dim] or [num_ws, w_dim] vector (e.g. an attribute boundary found for "
                        "this model).",
            inputs=[io.Combo.Input("direction_file", options=file_options(DIRECTION_EXTENSIONS),
                                   tooltip=f"A .safetensors or .npy file in the input folder or output/{SUBFOLDER}.")],
            outputs=[DirectionType.Output(display_name="direction", tooltip="The direction, for Apply Direction.")],
        )

    @classmethod
    def validate_inputs(cls, direction_file: str) -> bool | str:
        return listed_problem(direction_file, "direction_file", DIRECTION_EXTENSIONS)

    @classmethod
    def fingerprint_inputs(cls, direction_file: str) -> str:
        return content_hash(str(resolve(direction_file)))

    @classmethod
    def execute(cls, direction_file: str) -> io.NodeOutput:
        return io.NodeOutput(Direction(vector=read_direction(direction_file), source=os.path.basename(direction_file)))


NODES = [SaveLatents, LoadContent, LoadMotion, SaveDirection, LoadDirection]
