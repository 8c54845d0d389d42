"""Small checkpoints the node tests create: tiny32 generators with random weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

DEMO_CHECKPOINT = "stylegan_v_demo.safetensors"  # the name the example workflows load
# The trained demo model the pack ships and lists in models/stylegan_v without copying.
BUNDLED_DEMO = Path(__file__).resolve().parents[2] / "stylegan_v" / "assets" / DEMO_CHECKPOINT


def make_checkpoint(path: Path, *, seed: int = 0, c_dim: int = 0, dataset_fps: float | None = None) -> Path:
    """Write a tiny32 generator with random weights (optionally class-conditional) to `path`."""
    import stylegan_v

    config = stylegan_v.preset("tiny32")
    if c_dim:
        config = dataclasses.replace(config, generator=dataclasses.replace(config.generator, c_dim=c_dim),
                                     discriminator=dataclasses.replace(config.discriminator, c_dim=c_dim))
    if dataset_fps is not None:
        config = dataclasses.replace(config, dataset_fps=dataset_fps)
    torch.manual_seed(seed)
    generator = stylegan_v.Generator(config.generator).eval()
    return stylegan_v.save(generator, path, model_config=config, provenance={"made_by": "tests (random weights)"})
