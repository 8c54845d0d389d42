"""Load Model: a StyleGAN-V checkpoint from models/stylegan_v, managed by ComfyUI."""

from __future__ import annotations

import pickle

import comfy.model_management as mm
import comfy.model_patcher
import torch

import stylegan_v
from stylegan_v.generator import parse_precision

from . import model_files
from .comfy_api_compat import io
from .payloads import ModelType

# Saved workflows store these strings; every one but "auto" is a spelling stylegan_v's parse_precision reads.
DTYPES = ["auto", "fp32", "fp16", "bf16"]

# Out-of-memory from the compute device or from the host. torch.cuda.OutOfMemoryError is the
# spelling every supported torch has (torch.OutOfMemoryError is an alias from 2.5 on).
OUT_OF_MEMORY = (torch.cuda.OutOfMemoryError, MemoryError)


class StyleGANVModel(torch.nn.Module):
    """The generator as ComfyUI's model management sees it.

    ModelPatcher keeps its bookkeeping (device, loaded memory, ...) as attributes of the
    module it manages; this holder takes them, so the library's Generator stays untouched.
    """

    def __init__(self, generator: torch.nn.Module, ckpt_name: str):
        super().__init__()
        self.generator = generator
        self.ckpt_name = ckpt_name


def resolve_precision(dtype: str, device: torch.device) -> torch.dtype:
    """'auto' follows the original: fp16 in the top blocks where the device runs it fast."""
    if dtype != "auto":
        return parse_precision(dtype)
    return torch.float16 if mm.should_use_fp16(device) and device.type == "cuda" else torch.float32


def load_generator(path: str, ckpt_name: str) -> torch.nn.Module:
    try:
        # The digest ComfyUI's cache key already took (memoised): a .pkl is not hashed again to convert.
        return stylegan_v.load(path, net="G_ema", device="cpu", sha256=model_files.content_hash(path))
    except (ValueError, pickle.UnpicklingError, EOFError) as e:  # CheckpointError and the .pkl importer's errors
        raise ValueError(f"'{ckpt_name}' is not a usable StyleGAN-V checkpoint: {e}. "
                         "Use a StyleGAN-V .safetensors made by this pack's trainer or an original "
                         "StyleGAN-V .pkl snapshot (network-snapshot-*.pkl).") from None


class LoadModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_LoadModel",
            display_name="Load StyleGAN-V Model",
            category="StyleGAN-V",
            description="Loads a StyleGAN-V generator from models/stylegan_v. Original .pkl snapshots are "
                        "imported safely (no code in the file is run). ComfyUI manages the model's memory: "
                        "it can offload it, and 'Unload models' frees it.",
            inputs=[
                io.Combo.Input("ckpt_name", options=model_files.checkpoint_names(),
                               tooltip="Checkpoint in models/stylegan_v (.safetensors, or an original .pkl)."),
                io.Combo.Input("dtype", options=DTYPES, default="auto",
                               tooltip="Precision of the top synthesis blocks. auto: fp16 on CUDA GPUs "
                                       "(like the original), fp32 elsewhere."),
            ],
            outputs=[ModelType.Output(display_name="model", tooltip="The generator, for the other StyleGAN-V nodes.")],
        )

    @classmethod
    def validate_inputs(cls, ckpt_name: str, dtype: str) -> bool | str:
        # ComfyUI 0.3.75 checks V3 combo values against nothing, so a bad name would only fail
        # at run time; refuse it with the prompt (HTTP 400) instead.
        problems = []
        if ckpt_name not in model_files.checkpoint_names():
            problems.append(f"ckpt_name '{ckpt_name}' is not in models/stylegan_v; pick one of the listed files "
                            "(or put the checkpoint there and refresh)")
        if dtype not in DTYPES:
            problems.append(f"dtype '{dtype}' must be one of {', '.join(DTYPES)}")
        return "; ".join(problems) or True

    @classmethod
    def fingerprint_inputs(cls, ckpt_name: str, dtype: str) -> str:
        # The cache follows the file's content: replacing a file under the same name reloads it.
        return model_files.content_hash(model_files.checkpoint_path(ckpt_name))

    @classmethod
    def execute(cls, ckpt_name: str, dtype: str) -> io.NodeOutput:
        path = model_files.checkpoint_path(ckpt_name)
        generator = load_generator(path, ckpt_name)
        generator.eval().requires_grad_(False)
        load_device = mm.get_torch_device()
        generator.set_precision(resolve_precision(dtype, load_device))
        holder = StyleGANVModel(generator, ckpt_name)
        patcher = comfy.model_patcher.ModelPatcher(holder, load_device=load_device,
                                                   offload_device=mm.unet_offload_device())
        return io.NodeOutput(patcher)


def generator_on_device(patcher) -> torch.nn.Module:
    """Ask ComfyUI to load the model on its compute device (offloading others) and return it."""
    try:
        # Whole, never partially: with less free VRAM than the model the patcher would leave the
        # layers that do not fit on the CPU, and the render would then fail on mixed devices.
        mm.load_models_gpu([patcher], force_full_load=True)
    except OUT_OF_MEMORY:
        mm.soft_empty_cache()
        raise RuntimeError("out of memory while loading the StyleGAN-V model: unload other models (Manager > "
                           "Unload models, or POST /free), or load it with dtype fp16.") from None
    return patcher.model.generator
