"""Training snapshots (resume) and G_ema exports: file names, the file format, atomic writes.

A training snapshot is one safetensors file that is also a valid stylegan_v
checkpoint (`stylegan_v.load(path, net="G_ema"|"G"|"D")` reads it): the three
networks under their usual prefixes, plus optimiser state (`G_opt.*`, `D_opt.*`),
augmentation state (`augment.p`) and RNG states (`rng.<rank>.*`) as tensors, and
everything else (counters, the run's preset and seed, numpy RNG states,
optimiser hyper-parameters) as JSON in the metadata. Nothing is pickled.

`save_training_state` writes a `TrainingState.state_dict()` in this layout and
`read_state_dict` turns a loaded file back into one. Writes are atomic
(stylegan_v.fileio): a crash or a full disk leaves the old file or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import torch

from stylegan_v.checkpoint import FORMAT_NAME, FORMAT_VERSION, open_safetensors
from stylegan_v.config import ModelConfig
from stylegan_v.errors import CheckpointError
from stylegan_v.fileio import AtomicWriteError, atomic_output

STATE_PREFIX = "training-state-"
EXPORT_PREFIX = "network-snapshot-"
BEST_EXPORT = "network-best.safetensors"
STATE_KIND = "stylegan-v-training-state"
STATE_VERSION = "1"
NETS = ("G_ema", "G", "D")  # in the file's "nets" metadata; stylegan_v.load picks from these
_STATE_RE = re.compile(rf"^{STATE_PREFIX}(\d+(?:\.\d+)?)\.safetensors$")


class TrainingStateError(CheckpointError):
    """A training snapshot that cannot be read; the message names the file and the cause."""


def kimg_tag(cur_nframes: int) -> str:
    """'000200' for 200 kimg, as the original; '000001.236' when not a whole kimg (small test runs)."""
    whole, rest = divmod(int(cur_nframes), 1000)
    return f"{whole:06d}" if rest == 0 else f"{whole:06d}.{rest:03d}"


def state_name(cur_nframes: int) -> str:
    return f"{STATE_PREFIX}{kimg_tag(cur_nframes)}.safetensors"


def export_name(cur_nframes: int) -> str:
    return f"{EXPORT_PREFIX}{kimg_tag(cur_nframes)}.safetensors"


# ---- optimiser state <-> flat tensors + JSON -------------------------------------------

def optimizer_to_flat(sd: dict, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimiser's state_dict() as `<prefix>.state.<idx>.<key>` tensors and JSON (the rest)."""
    tensors, scalars = {}, {}
    for idx, entry in sd["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.state.{idx}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    groups = [dict(g, betas=list(g["betas"])) if "betas" in g else dict(g) for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_flat(prefix: str, tensors: Mapping[str, torch.Tensor], info: dict) -> dict:
    """The optimiser state_dict() that optimizer_to_flat wrote."""
    state: dict[int, dict] = {}
    head = f"{prefix}.state."
    for name, value in tensors.items():
        if name.startswith(head):
            idx, key = name[len(head):].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for idx, entry in info.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(entry)
    groups = [dict(g, betas=tuple(float(b) for b in g["betas"])) if "betas" in g else g for g in info["param_groups"]]
    return {"state": state, "param_groups": groups}


# ---- training snapshots -----------------------------------------------------------------

class StateFile(NamedTuple):
    tensors: dict[str, torch.Tensor]
    state: dict                 # the JSON part (counters, train, seed, rng, optimizers, ...)
    model: ModelConfig
    provenance: dict


def save_training_state(path: str | os.PathLike, state_dict: dict, *, run: dict, model_config: ModelConfig,
                        provenance: dict) -> Path:
    """Write a TrainingState.state_dict() atomically; `run` (the preset, seed, data) must be JSON-serialisable."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    flat: dict[str, torch.Tensor] = {}
    for name in NETS:
        for key, value in state_dict[name].items():
            flat[f"{name}.{key}"] = value.detach().to("cpu", torch.float32).contiguous()
    optimizers = {}
    for name in ("G", "D"):
        tensors, info = optimizer_to_flat(state_dict[f"{name}_opt"], f"{name}_opt")
        flat.update(tensors)
        optimizers[name] = info
    rng_json = []
    for rank, rng in enumerate(state_dict["rng"]):
        flat[f"rng.{rank}.torch_cpu"] = rng["torch_cpu"].to(torch.uint8)
        if rng.get("torch_cuda") is not None:
            flat[f"rng.{rank}.torch_cuda"] = rng["torch_cuda"].to(torch.uint8)
        rng_json.append({"numpy": rng["numpy"], "data_items": rng["data_items"]})
    if state_dict["augment_p"] is not None:
        flat["augment.p"] = state_dict["augment_p"].detach().to("cpu").reshape(1)
    state = dict(run, counters=state_dict["counters"], world_size=len(rng_json), rng=rng_json,
                 best=state_dict["best"], ada=state_dict["ada"], scalers=state_dict["scalers"],
                 torch_version=torch.__version__, optimizers=optimizers)
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "nets": ",".join(NETS),
        "model_config": model_config.to_json(),
        "dataset_fps": repr(float(model_config.dataset_fps)),
        "provenance": json.dumps(provenance, sort_keys=True),
        "kind": STATE_KIND,
        "training_state_version": STATE_VERSION,
        "training_state": json.dumps(state),
    }
    path = Path(path)
    with atomic_output(path, what="training snapshot") as tmp:
        try:
            save_file(flat, tmp, metadata=meta)
        except SafetensorError as e:  # safetensors reports I/O failures (a full disk) as its own type
            raise OSError(str(e)) from e
    return path


def load_training_state(path: str | os.PathLike) -> StateFile:
    """Tensors, state JSON, model config and provenance of a snapshot written by save_training_state."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training snapshot not found: {path}")
    try:
        with open_safetensors(path, "training snapshot") as f:
            meta = dict(f.metadata() or {})
            if meta.get("kind") != STATE_KIND:
                raise TrainingStateError(f"{path} is not a training snapshot (no '{STATE_KIND}' metadata); "
                                         "use --init to start a new run from exported weights")
            if meta.get("training_state_version") != STATE_VERSION:
                raise TrainingStateError(f"{path} has training-state version "
                                         f"{meta.get('training_state_version')!r}, this trainer reads "
                                         f"{STATE_VERSION!r}")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        state = json.loads(meta["training_state"])
        config = ModelConfig.from_json(meta["model_config"])
        provenance = json.loads(meta.get("provenance") or "{}")
    except TrainingStateError:
        raise
    except Exception as e:  # a torn or foreign file: say which and why
        raise TrainingStateError(f"cannot read training snapshot {path}: {e}") from e
    return StateFile(tensors, state, config, provenance)


def read_state_dict(file: StateFile) -> dict:
    """The TrainingState.state_dict() a snapshot holds (the inverse of save_training_state's layout)."""
    tensors, state = file.tensors, file.state
    sd: dict = {name: {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")}
                for name in NETS}
    for name in ("G", "D"):
        sd[f"{name}_opt"] = optimizer_from_flat(f"{name}_opt", tensors, state["optimizers"][name])
    sd["rng"] = [{"torch_cpu": tensors[f"rng.{rank}.torch_cpu"], "torch_cuda": tensors.get(f"rng.{rank}.torch_cuda"),
                  "numpy": entry["numpy"], "data_items": int(entry["data_items"])}
                 for rank, entry in enumerate(state["rng"])]
    p = tensors.get("augment.p")
    sd["augment_p"] = p.reshape(()) if p is not None else None
    sd["ada"] = state.get("ada")
    sd["scalers"] = state.get("scalers") or {}
    sd["counters"] = state["counters"]
    sd["best"] = state.get("best") or {}
    return sd


def list_states(outdir: str | os.PathLike) -> list[Path]:
    """Training snapshots in `outdir`, oldest first (by kimg in the name)."""
    folder = Path(outdir)
    if not folder.is_dir():
        return []
    found = [(float(m.group(1)), p) for p in folder.iterdir() if (m := _STATE_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def find_latest(outdir: str | os.PathLike) -> Path | None:
    states = list_states(outdir)
    return states[-1] if states else None


def prune_states(outdir: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the newest `keep` training snapshots (exports are never deleted)."""
    if keep <= 0:
        return []
    removed = []
    for path in list_states(outdir)[:-keep]:
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


# What stylegan_v.fileio.atomic_output leaves after a kill mid-write: ".<target>.<8 random chars><suffix>",
# for the targets the trainer writes (states, exports, the best export, sample videos).
_OWN_TEMP_RE = re.compile(rf"^\.(({STATE_PREFIX}|{EXPORT_PREFIX})[\d.]+\.safetensors|{re.escape(BEST_EXPORT)}|"
                          r"samples-[\d.]+\.mp4)\.[a-z0-9_]{8}\.\w+$")


def remove_stale_temp_files(outdir: str | os.PathLike, older_than: float) -> list[Path]:
    """Delete the trainer's own temporary files last modified before `older_than` (a time.time())."""
    folder = Path(outdir)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        if _OWN_TEMP_RE.match(path.name) and path.is_file() and path.stat().st_mtime < older_than:
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return sorted(removed)


def export_generator(path: str | os.PathLike, G_ema: torch.nn.Module, model_config: ModelConfig,
                     provenance: dict) -> Path:
    """G_ema in our checkpoint format (what the nodes and stylegan_v.load read); stylegan_v.save is atomic."""
    import stylegan_v
    from safetensors import SafetensorError

    try:
        return stylegan_v.save(G_ema, path, model_config=model_config, provenance=provenance)
    except SafetensorError as e:  # an I/O failure inside safetensors, reported as the file it was writing
        raise AtomicWriteError(f"could not write G_ema export {path}: {e}") from e
