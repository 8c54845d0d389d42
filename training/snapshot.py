"""Full training snapshots (resume) and G_ema exports, written atomically.

A training snapshot is one safetensors file that is also a valid stylegan_v
checkpoint (`stylegan_v.load(path, net="G_ema"|"G"|"D")` reads it): the three
networks under their usual prefixes, plus optimiser state (`G_opt.*`, `D_opt.*`),
augmentation state and RNG states (`rng.<rank>.*`) as tensors, and everything
else (counters, options, numpy RNG states, optimiser hyper-parameters) as JSON in
the metadata. Nothing is pickled.

Writes go to a temporary file in the same folder, are fsync'ed, then renamed
over the target with os.replace and the folder is fsync'ed: a crash or a full
disk leaves either the old file or the new one, never a torn file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from stylegan_v.checkpoint import FORMAT_NAME, FORMAT_VERSION
from stylegan_v.config import ModelConfig

STATE_PREFIX = "training-state-"
EXPORT_PREFIX = "network-snapshot-"
BEST_EXPORT = "network-best.safetensors"
STATE_KIND = "stylegan-v-training-state"
STATE_VERSION = "1"
_STATE_RE = re.compile(rf"^{STATE_PREFIX}(\d+(?:\.\d+)?)\.safetensors$")


class SnapshotError(RuntimeError):
    """A snapshot could not be written or read; the message names the file and the cause."""


def kimg_tag(cur_nframes: int) -> str:
    """'000200' for 200 kimg, as the original; '000001.236' when not a whole kimg (small test runs)."""
    whole, rest = divmod(int(cur_nframes), 1000)
    return f"{whole:06d}" if rest == 0 else f"{whole:06d}.{rest:03d}"


def state_name(cur_nframes: int) -> str:
    return f"{STATE_PREFIX}{kimg_tag(cur_nframes)}.safetensors"


def export_name(cur_nframes: int) -> str:
    return f"{EXPORT_PREFIX}{kimg_tag(cur_nframes)}.safetensors"


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform/filesystem
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], what: str = "file") -> Path:
    """Run `write(tmp_path)`, fsync, rename to `path`. On any failure the old `path` is untouched.

    Raises SnapshotError naming the file and the cause (e.g. a full disk).
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except Exception as e:
        cause = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
        raise SnapshotError(f"could not write {what} {path}: {cause}") from e
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return path


def atomic_write_text(path: str | os.PathLike, text: str, what: str = "file") -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), what)


# ---- optimiser state <-> flat tensors + JSON -------------------------------------------

def optimizer_to_flat(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, entry in sd["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.state.{idx}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    groups = [dict(g, betas=list(g["betas"])) if "betas" in g else dict(g) for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_flat(opt: torch.optim.Optimizer, prefix: str, tensors: Mapping[str, torch.Tensor],
                        info: dict) -> None:
    state: dict[int, dict] = {}
    head = f"{prefix}.state."
    for name, value in tensors.items():
        if name.startswith(head):
            idx, key = name[len(head):].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for idx, entry in info.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(entry)
    groups = [dict(g, betas=tuple(float(b) for b in g["betas"])) if "betas" in g else g for g in info["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})


# ---- training snapshots -----------------------------------------------------------------

def save_training_state(path: str | os.PathLike, *, nets: Mapping[str, torch.nn.Module],
                        optimizers: Mapping[str, torch.optim.Optimizer], tensors: Mapping[str, torch.Tensor],
                        state: dict, model_config: ModelConfig, provenance: dict) -> Path:
    """Write one training snapshot atomically; `state` must be JSON-serialisable."""
    from safetensors.torch import save_file

    flat: dict[str, torch.Tensor] = {}
    for name, net in nets.items():
        for key, value in net.state_dict().items():
            flat[f"{name}.{key}"] = value.detach().to("cpu", torch.float32).contiguous()
    opt_info = {}
    for name, opt in optimizers.items():
        t, info = optimizer_to_flat(opt, f"{name}_opt")
        flat.update(t)
        opt_info[name] = info
    for key, value in tensors.items():
        flat[key] = value.detach().to("cpu").contiguous()
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "nets": ",".join(nets),
        "model_config": model_config.to_json(),
        "dataset_fps": repr(float(model_config.dataset_fps)),
        "provenance": json.dumps(provenance, sort_keys=True),
        "kind": STATE_KIND,
        "training_state_version": STATE_VERSION,
        "training_state": json.dumps(dict(state, optimizers=opt_info)),
    }
    return atomic_write(path, lambda tmp: save_file(flat, str(tmp), metadata=meta), what="training snapshot")


def load_training_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict, ModelConfig]:
    """(all tensors, state JSON, model config) of a snapshot written by save_training_state."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training snapshot not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            if meta.get("kind") != STATE_KIND:
                raise SnapshotError(f"{path} is not a training snapshot (no '{STATE_KIND}' metadata); "
                                    "use --init to start a new run from exported weights")
            if meta.get("training_state_version") != STATE_VERSION:
                raise SnapshotError(f"{path} has training-state version {meta.get('training_state_version')!r}, "
                                    f"this trainer reads {STATE_VERSION!r}")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        state = json.loads(meta["training_state"])
        config = ModelConfig.from_json(meta["model_config"])
    except SnapshotError:
        raise
    except Exception as e:  # a torn or foreign file: say which and why
        raise SnapshotError(f"cannot read training snapshot {path}: {e}") from e
    return tensors, state, config


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


def export_generator(path: str | os.PathLike, G_ema: torch.nn.Module, model_config: ModelConfig,
                     provenance: dict) -> Path:
    """G_ema in our checkpoint format (what the nodes and stylegan_v.load read), atomically."""
    import stylegan_v

    def write(tmp: Path) -> None:
        stylegan_v.save(G_ema, tmp, model_config=model_config, provenance=provenance)

    return atomic_write(path, write, what="G_ema export")
