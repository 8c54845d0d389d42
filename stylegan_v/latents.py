"""Latents as files: content (ws and class labels) and motion (its exact recipe) in one safetensors file,
and latent directions in their own files.

A motion is stored as its recipe (seeds, loop period, blend weights, intensity),
not as numbers: seeded noise is platform-independent (NumPy's PCG64 seeded by
SeedSequence), so the recipe reproduces the same motion on any machine and for
any timeline length. The one exception is a motion fitted to a clip (kind
"fitted"): its fitted noise vectors are numbers no seed gives, so they are stored
as a tensor of the file (named in the recipe), and the recipe keeps the seed of
the noise that continues them.

Format versions: 1 had the seeded kinds only; 2 adds "fitted". Files of either
version load; a file of a newer version is refused with a message saying so.

A direction file holds one float32 tensor "direction", [w_dim] or [num_ws, w_dim]; directions
found elsewhere load too: any .safetensors with a single tensor, or a .npy array.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .fileio import atomic_output
from .motions import BlendedMotion, LoopingMotion, Motion, MotionSeed, ScaledMotion
from .projection.fitted_motion import FittedMotion

FORMAT = "stylegan-v-latents"
VERSION = "2"
READABLE_VERSIONS = ("1", "2")
MOTION_TENSOR_PREFIX = "motion_noise"
MAX_DEPTH = 16
DIRECTION_FORMAT = "stylegan-v-direction"
DIRECTION_SUFFIXES = (".safetensors", ".npy")


def motion_to_dict(motion: Motion, tensors: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """The motion's recipe; the numbers of fitted motions go into `tensors` (required for those)."""
    if isinstance(motion, FittedMotion):
        if tensors is None:
            raise TypeError("a fitted motion is stored with its noise tensor: pass a tensors dict")
        name = f"{MOTION_TENSOR_PREFIX}_{sum(k.startswith(MOTION_TENSOR_PREFIX) for k in tensors)}"
        tensors[name] = motion.prefix
        return {"kind": "fitted", "noise": name, "tail_seed": motion.tail_seed, "batch_size": motion.batch_size,
                "fitted_noise": motion.fitted_noise, "z_dim": int(motion.prefix.shape[2])}
    if isinstance(motion, MotionSeed):
        return {"kind": "seed", "seed": motion.seed, "batch_size": motion.batch_size}
    if isinstance(motion, LoopingMotion):
        return {"kind": "loop", "seed": motion.seed, "batch_size": motion.batch_size,
                "period_codes": motion.period_codes}
    if isinstance(motion, BlendedMotion):
        return {"kind": "blend", "a": motion_to_dict(motion.a, tensors), "b": motion_to_dict(motion.b, tensors),
                "weight": float(motion.weight)}
    if isinstance(motion, ScaledMotion):
        return {"kind": "scale", "base": motion_to_dict(motion.base, tensors), "intensity": float(motion.intensity)}
    raise TypeError(f"cannot save a motion of type {type(motion).__name__}")


def _fitted_from_dict(data: dict[str, Any], tensors: dict[str, torch.Tensor] | None) -> FittedMotion:
    name = data["noise"]
    if not isinstance(name, str) or tensors is None or name not in tensors:
        raise ValueError(f"fitted motion refers to a noise tensor {name!r} that the file does not hold")
    noise = tensors[name]
    declared = [int(data["batch_size"]), int(data["fitted_noise"]), int(data["z_dim"])]
    if list(noise.shape) != declared:
        raise ValueError(f"fitted motion noise {name!r} is {list(noise.shape)}, the recipe says {declared}")
    if not noise.is_floating_point() or not bool(torch.isfinite(noise).all()):
        raise ValueError(f"fitted motion noise {name!r} must hold finite floating-point numbers")
    return FittedMotion(noise, int(data["tail_seed"]))


def motion_from_dict(data: Any, depth: int = 0, tensors: dict[str, torch.Tensor] | None = None) -> Motion:
    """The motion a recipe describes; `tensors`: the file's tensors, which fitted motions refer to."""
    if depth > MAX_DEPTH:
        raise ValueError("motion recipe is nested too deeply")
    if not isinstance(data, dict) or "kind" not in data:
        raise ValueError("motion recipe must be an object with a 'kind'")
    kind = data["kind"]
    try:
        if kind == "seed":
            return MotionSeed(int(data["seed"]), int(data["batch_size"]))
        if kind == "loop":
            return LoopingMotion(int(data["seed"]), int(data["batch_size"]), int(data["period_codes"]))
        if kind == "fitted":
            return _fitted_from_dict(data, tensors)
        if kind == "blend":
            return BlendedMotion(motion_from_dict(data["a"], depth + 1, tensors),
                                 motion_from_dict(data["b"], depth + 1, tensors), float(data["weight"]))
        if kind == "scale":
            return ScaledMotion(motion_from_dict(data["base"], depth + 1, tensors), float(data["intensity"]))
    except KeyError as e:
        raise ValueError(f"motion recipe of kind {kind!r} lacks {e}") from None
    raise ValueError(f"unknown motion kind {kind!r}")


def save_latents(path: str | os.PathLike, *, ws: torch.Tensor | None = None, c: torch.Tensor | None = None,
                 motion: Motion | None = None, **metadata: str) -> Path:
    """Write content and/or motion; metadata strings (e.g. the model's name) are kept alongside."""
    from safetensors.torch import save_file

    if ws is None and motion is None:
        raise ValueError("nothing to save: give ws (content) and/or a motion")
    tensors = {}
    if ws is not None:
        if ws.ndim != 3:
            raise ValueError(f"ws must be [B, num_ws, w_dim], got {list(ws.shape)}")
        tensors["ws"] = ws.detach().to("cpu", torch.float32).contiguous()
    if c is not None:
        tensors["c"] = c.detach().to("cpu", torch.float32).contiguous()
    meta = {str(k): str(v) for k, v in metadata.items()}
    meta.update(format=FORMAT, format_version=VERSION)
    if motion is not None:
        meta["motion"] = json.dumps(motion_to_dict(motion, tensors))
    path = Path(path)
    with atomic_output(path, what="latents file") as tmp:
        save_file(tensors or {"empty": torch.zeros(0)}, tmp, metadata=meta)
    return path


def load_latents(path: str | os.PathLike) -> dict[str, Any]:
    """{'ws': tensor | None, 'c': tensor | None, 'motion': Motion | None, 'metadata': {...}}."""
    from .checkpoint import open_safetensors

    path = Path(path)
    try:
        # Bounded like a checkpoint: a regular file whose header fits it, under any file name.
        with open_safetensors(path, "latent file") as f:
            meta = dict(f.metadata() or {})
            # Copied into memory of their own: safetensors hands out tensors at the file's offsets,
            # unaligned, and some CPUs' kernels round differently on unaligned input (seen on
            # AVX-512), so frames rendered from a loaded file would differ in the last bits from
            # the same content fresh.
            tensors = {k: f.get_tensor(k).clone() for k in f.keys()}
    except FileNotFoundError:
        raise
    except Exception as e:
        raise ValueError(f"{path.name} is not a valid safetensors file ({e})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path.name} is not a StyleGAN-V latent file (format {meta.get('format')!r})")
    version = meta.get("format_version", "1")
    if version not in READABLE_VERSIONS:
        raise ValueError(f"{path.name} is a latent file of format version {version!r}, newer than this version "
                         f"reads ({', '.join(READABLE_VERSIONS)}): update the pack")
    ws = tensors.get("ws")
    if ws is not None and (ws.ndim != 3 or not torch.isfinite(ws).all()):
        raise ValueError(f"{path.name}: ws must be a finite [B, num_ws, w_dim] tensor, got {list(ws.shape)}")
    try:
        motion = motion_from_dict(json.loads(meta["motion"]), tensors=tensors) if "motion" in meta else None
    except (json.JSONDecodeError, ValueError, TypeError) as e:
        raise ValueError(f"{path.name}: bad motion recipe: {e}") from None
    extra = {k: v for k, v in meta.items() if k not in ("format", "format_version", "motion")}
    return {"ws": ws, "c": tensors.get("c"), "motion": motion, "metadata": extra}


def _checked_direction(vector: torch.Tensor, name: str) -> torch.Tensor:
    vector = vector.detach().float()
    while vector.ndim > 1 and vector.shape[0] == 1:
        vector = vector[0]  # [1, w_dim], as InterFaceGAN-style boundaries are stored
    if vector.ndim not in (1, 2) or vector.numel() == 0 or not bool(torch.isfinite(vector).all()):
        raise ValueError(f"{name} must hold a finite direction of shape [w_dim] or [num_ws, w_dim], "
                         f"got {list(vector.shape)}")
    return vector


def save_direction(path: str | os.PathLike, direction: torch.Tensor, source: str = "") -> Path:
    """Write a direction [w_dim] or [num_ws, w_dim]; `source` says where it came from."""
    from safetensors.torch import save_file

    path = Path(path)
    vector = _checked_direction(direction, "a saved direction").to("cpu").contiguous()
    with atomic_output(path, what="latents file") as tmp:
        save_file({"direction": vector}, tmp, metadata={"format": DIRECTION_FORMAT, "source": str(source)})
    return path


def load_direction(path: str | os.PathLike) -> torch.Tensor:
    """A direction float32 [w_dim] or [num_ws, w_dim] from .safetensors (its tensor 'direction', or its only
    tensor) or .npy (no pickles); leading axes of size 1 are dropped."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"direction file not found: {path}")
    if path.suffix.lower() not in DIRECTION_SUFFIXES:
        raise ValueError(f"{path.name}: a direction file is {' or '.join(DIRECTION_SUFFIXES)}")
    try:
        if path.suffix.lower() == ".npy":
            vector = torch.from_numpy(np.load(path, allow_pickle=False).astype(np.float32))
        else:
            tensors = load_file(str(path))
            if "direction" in tensors:
                vector = tensors["direction"]
            elif len(tensors) == 1:
                vector = next(iter(tensors.values()))
            else:
                raise ValueError(f"it holds {sorted(tensors)}, none named 'direction'")
    except (OSError, ValueError, RuntimeError) as e:
        raise ValueError(f"cannot read a direction from {path.name}: {e}") from None
    return _checked_direction(vector, path.name)
