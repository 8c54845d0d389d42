"""Original snapshot -> state dicts of G_ema, G and D plus the recovered ModelConfig.

The file is read by the restricted unpickler (nothing from it runs), the inert
module trees are flattened into state dicts in torch's order, the config is
recovered from the shapes and the pickled experiment config, and every state
dict is then checked against the network that config builds (`stylegan_v.layout`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import check_regular_file, sha256_file
from ..config import ModelConfig
from ..errors import LegacyLayoutError, SnapshotError
from ..layout import NET_NAMES, holds_defined_value, layout
from .config_recovery import recover_config
from .modules import class_name, clean_tensor, collect_state_dict, describe, submodule
from .unpickler import PersistentObject, is_int, unpickle


@dataclass(frozen=True)
class OriginalSnapshot:
    config: ModelConfig
    state_dicts: dict[str, dict[str, torch.Tensor]]  # "G_ema", "G", "D" (those present), official key order
    sha256: str
    source: str  # file name
    notes: tuple[str, ...]  # values that were defaulted, overridden or inconsistent in the file


def read_snapshot(path, *, motion_z_distance: int | None = None, max_num_frames: int | None = None,
                  dataset_fps: float | None = None, num_fp16_res: int | None = None,
                  conv_clamp: float | None = None, sha256: str | None = None) -> OriginalSnapshot:
    """Read an original StyleGAN-V `network-snapshot-*.pkl` without executing anything from it.

    Shapes fix most of the config; the rest comes from the experiment config pickled with the
    networks. Keyword arguments override what the file records, or supply what it does not:
    `motion_z_distance` (default: min_period_len, as the original config interpolates it),
    `max_num_frames` (default 1024; G only, D's is part of its weights), `dataset_fps` (default 25),
    `num_fp16_res` and `conv_clamp` (for G and D; defaults 4 and 256). Every value that was
    defaulted, overridden or found inconsistent is listed in `OriginalSnapshot.notes`.
    `sha256` is the file's digest when the caller has already computed it (it is not hashed again).

    Raises FileNotFoundError for a missing file, `LegacyLayoutError` for snapshots of the older
    internal code base, and `SnapshotError` (a CheckpointError, so a ValueError) for anything else
    that is not a usable snapshot, including every global outside the unpickler's allow-list.
    """
    path = check_regular_file(path, "StyleGAN-V snapshot")
    _check_positive_int("motion_z_distance", motion_z_distance)
    _check_positive_int("max_num_frames", max_num_frames)
    if num_fp16_res is not None and (not is_int(num_fp16_res) or num_fp16_res < 0):
        raise ValueError(f"num_fp16_res must be a non-negative integer, got {num_fp16_res!r}")
    for name, value in (("dataset_fps", dataset_fps), ("conv_clamp", conv_clamp)):
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    source = path.name
    sha256 = sha256 or sha256_file(path)
    top = unpickle(path, source)
    overrides = dict(motion_z_distance=motion_z_distance, max_num_frames=max_num_frames, dataset_fps=dataset_fps,
                     num_fp16_res=num_fp16_res, conv_clamp=conv_clamp)
    try:
        config, states, notes = _convert(top, path, source, **overrides)
    except SnapshotError as e:
        if str(e).startswith(f"{source}:"):
            raise
        raise type(e)(f"{source}: {e}") from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as e:
        # The allow-list admits only inert objects, but they can still be assembled into odd shapes.
        raise SnapshotError(f"{source}: malformed snapshot structure ({type(e).__name__}: {e})") from None
    return OriginalSnapshot(config=config, state_dicts=states, sha256=sha256, source=source, notes=tuple(notes))


def _check_positive_int(name: str, value) -> None:
    if value is not None and (not is_int(value) or value <= 0):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _convert(top: Any, path: Path, source: str, **overrides
             ) -> tuple[ModelConfig, dict[str, dict[str, torch.Tensor]], list[str]]:
    if not isinstance(top, dict):
        raise SnapshotError(f"{source}: not a StyleGAN-V snapshot: the pickle holds a {describe(top)}, "
                            f"expected a dict with G_ema")
    if top.get("G_ema") is None:
        keys = ", ".join(repr(k) for k in list(top)[:8]) or "none"
        raise SnapshotError(f"{source}: not a StyleGAN-V snapshot: missing G_ema (top-level keys: {keys})")
    roots = {name: top[name] for name in NET_NAMES if top.get(name) is not None}
    for name, root in roots.items():
        expected_class = "Discriminator" if name == "D" else "Generator"
        if not isinstance(root, PersistentObject) or root.class_name != expected_class:
            raise SnapshotError(f"{source}: {name} is a {describe(root)}, expected the persistent "
                                f"{expected_class} of the original code")

    raw = {"G_ema": collect_state_dict(roots["G_ema"], "G_ema")}
    _detect_legacy_generator(roots["G_ema"], raw["G_ema"], source)
    raw.update({name: collect_state_dict(root, name) for name, root in roots.items() if name != "G_ema"})
    # Every state-dict entry is copied to float32; views of one storage must not multiply a small file.
    needed = sum(t.numel() for sd in raw.values() for t in sd.values()) * 4
    if needed > 2 * path.stat().st_size + (1 << 20):
        raise SnapshotError(f"{source}: the networks' tensors would need {needed} bytes, far more than the file "
                            f"holds (tensors share storage); corrupt or hostile file")
    states = {name: {k: clean_tensor(t, f"{source}: {name}.{k}") for k, t in sd.items()} for name, sd in raw.items()}
    del raw

    config, notes = recover_config(top, roots, states, source, path.stem, **overrides)
    for net, state in states.items():
        _check_layout(state, net, config, source)
    return config, states, notes


def _detect_legacy_generator(root: Any, state: dict[str, torch.Tensor], source: str) -> None:
    time_encoder = submodule(root, "synthesis.motion_encoder.time_encoder", "G_ema")
    class_names = {class_name(time_encoder)} if time_encoder is not None else set()
    motion = submodule(root, "synthesis.motion_encoder", "G_ema")
    if motion is not None:
        class_names.add(class_name(motion))
    has_amplitudes = any(".amplitudes_predictor." in k for k in state)
    has_aligners = any(".aligners_predictor." in k for k in state)
    if (has_amplitudes and not has_aligners) or class_names & {"PeriodicFeatsTimeEncoder", "MotionEncoder"}:
        raise LegacyLayoutError(
            f"{source}: older internal layout (time encoder has amplitudes_predictor, no aligners_predictor; "
            f"module classes: {', '.join(sorted(class_names)) or '?'}). This snapshot comes from the pre-release "
            f"StyleGAN-V code base (cvpr2022-stylegan-v), whose motion path computes a different function; only "
            f"snapshots of the public universome/stylegan-v code are supported")


def _check_layout(state: dict[str, torch.Tensor], net: str, config: ModelConfig, source: str) -> None:
    """The state dict holds exactly what our network for `config` holds, in its order, buffers at their values.

    The config was recovered from these very shapes, so a mismatch means a layout the recovery does not know.
    """
    expected = layout(net, config)
    missing = [k for k in expected.shapes if k not in state]
    unexpected = [k for k in state if k not in expected.shapes]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s), e.g. {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s), e.g. {', '.join(unexpected[:3])}")
        raise SnapshotError(f"{source}: {net} does not have the StyleGAN-V layout: {'; '.join(parts)}")
    for key, shape in expected.shapes.items():
        if tuple(state[key].shape) != shape:
            raise SnapshotError(f"{source}: {net}.{key} has shape {list(state[key].shape)}, but the recovered "
                                f"config implies {list(shape)} (unknown layout or inconsistent file)")
    if list(state) != list(expected.shapes):
        raise SnapshotError(f"{source}: {net} has the expected tensors in an unexpected order (unknown layout)")
    for key, reference in expected.defined.items():
        if not holds_defined_value(state[key], reference):
            raise SnapshotError(f"{source}: buffer {net}.{key} does not hold its defined value "
                                f"(corrupt file or an unknown variant of the model)")
