"""Our checkpoint format: one safetensors file, validated before use.

Tensor keys are `<net>.<original state-dict key>` (net = G_ema, G or D), so an
original snapshot maps 1:1. Metadata (strings) holds the model config JSON, the
format version, the dataset fps and the provenance. Loading checks every key,
shape and dtype against the network the config builds (`stylegan_v.layout`), and the buffers
that the config fixes against their defined values, and names whatever is wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .config import ModelConfig
from .discriminator import Discriminator
from .errors import CheckpointError
from .fileio import atomic_output
from .generator import Generator, inference_memory_format
from .layout import NET_NAMES, build_network, holds_defined_value, network_layout

FORMAT_NAME = "stylegan-v"
FORMAT_VERSION = "1"
PICKLE_SUFFIXES = (".pkl", ".pickle")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# A checkpoint's header lists a few thousand tensors (a training state: three networks and their optimisers)
# in well under a megabyte; these bounds refuse a hostile header before it is parsed into millions of objects.
MAX_HEADER_BYTES = 8 << 20
MAX_TENSORS = 1 << 16


def _default_model_config(net: nn.Module) -> ModelConfig:
    existing = getattr(net, "model_config", None)
    if isinstance(existing, ModelConfig):
        return existing
    if isinstance(net, Generator):
        return ModelConfig(generator=net.cfg)
    if isinstance(net, Discriminator):
        return ModelConfig(discriminator=net.cfg)
    raise TypeError(f"cannot save a {type(net).__name__}; expected a Generator or Discriminator")


def save(net: nn.Module, path: str | os.PathLike, *, model_config: ModelConfig | None = None,
         net_name: str | None = None, **metadata) -> Path:
    """Write one network (G_ema by default for a Generator, D for a Discriminator)."""
    if net_name is None:
        net_name = "D" if isinstance(net, Discriminator) else "G_ema"
    return save_networks({net_name: net}, path, model_config=model_config or _default_model_config(net), **metadata)


def save_networks(nets: Mapping[str, nn.Module], path: str | os.PathLike, *, model_config: ModelConfig,
                  provenance: Mapping | None = None, **metadata) -> Path:
    """Write several networks of one model into one file, atomically."""
    from safetensors.torch import save_file

    unknown = sorted(set(nets) - set(NET_NAMES))
    if unknown or not nets:
        raise ValueError(f"network names must be among {', '.join(NET_NAMES)}; got {', '.join(nets) or 'none'}")
    tensors = {}
    for name, net in nets.items():
        for key, value in net.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().to("cpu", torch.float32).contiguous()
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    meta.update({
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "nets": ",".join(nets),
        "model_config": model_config.to_json(),
        "dataset_fps": repr(float(model_config.dataset_fps)),
        "provenance": json.dumps(dict(provenance or {}), sort_keys=True),
    })
    path = Path(path)
    with atomic_output(path, what="checkpoint") as tmp:
        save_file(tensors, tmp, metadata=meta)
    return path


def check_regular_file(path: str | os.PathLike, what: str = "checkpoint") -> Path:
    """`path` as a Path if it names a regular file (after symlinks); it is not opened.

    FileNotFoundError if nothing is there; CheckpointError for a directory, FIFO, device or socket,
    which a reader could block on or read for ever.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    if not stat.S_ISREG(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise CheckpointError(f"{path}: the {what} is {kind}, expected a regular file")
    return path


@contextlib.contextmanager
def _safe_open(path: Path, **kwargs):
    """safetensors.safe_open, also for a name that is not valid UTF-8 (which it refuses): then through an fd."""
    from safetensors import safe_open

    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        fd = os.open(path, os.O_RDONLY)
        try:
            with safe_open(f"/dev/fd/{fd}", framework="pt", **kwargs) as f:
                yield f
        finally:
            os.close(fd)
        return
    with safe_open(str(path), framework="pt", **kwargs) as f:
        yield f


def _check_header(path: Path, size: int) -> None:
    """Refuse a safetensors header that is larger than the file allows, lists too many tensors, or
    places tensors outside the file, before safetensors parses it or any tensor is read."""
    name = path.name
    with open(path, "rb") as f:
        head = f.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < length <= min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"{name} is not a valid safetensors file (its header length {length} does not "
                                  f"fit the file's {size} bytes, or exceeds {MAX_HEADER_BYTES})")
        try:
            header = json.loads(f.read(length))
        except (ValueError, RecursionError) as e:
            raise CheckpointError(f"{name} is not a valid safetensors file (header: {type(e).__name__})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name} is not a valid safetensors file (the header is not an object)")
    entries = [v for k, v in header.items() if k != "__metadata__"]
    if len(entries) > MAX_TENSORS:
        raise CheckpointError(f"{name}: the header lists {len(entries)} tensors, more than {MAX_TENSORS}")
    data_bytes, total = size - 8 - length, 0
    for entry in entries:
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_bytes):
            raise CheckpointError(f"{name} is not a valid safetensors file (a tensor lies outside the file)")
        total += offsets[1] - offsets[0]
    if total > data_bytes:
        raise CheckpointError(f"{name} is not a valid safetensors file (its tensors overlap)")


@contextlib.contextmanager
def open_safetensors(path: str | os.PathLike, what: str = "checkpoint", device: str = "cpu"):
    """safetensors' reader for any of our files, after the checks every reader needs: a regular
    file, and a header whose size, tensor count and offsets fit the file (so a hostile header
    costs nothing), under any file name."""
    path = check_regular_file(path, what)
    _check_header(path, path.stat().st_size)
    with _safe_open(path, device=device) as f:
        yield f


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    path = check_regular_file(path)
    _check_header(path, path.stat().st_size)
    try:
        with _safe_open(path) as f:
            return dict(f.metadata() or {})
    except Exception as e:  # safetensors raises several types for malformed headers
        raise CheckpointError(f"{path.name} is not a valid safetensors file ({e})") from None


def read_config(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, str]]:
    meta = read_metadata(path)
    name = Path(path).name
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{name} is a safetensors file but not a StyleGAN-V checkpoint "
                              f"(metadata 'format' is {meta.get('format')!r}, expected {FORMAT_NAME!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{name} has format version {meta.get('format_version')!r}; this version reads "
                              f"{FORMAT_VERSION!r}")
    if "model_config" not in meta:
        raise CheckpointError(f"{name} has no 'model_config' metadata")
    try:
        config = ModelConfig.from_json(meta["model_config"])
    except ValueError as e:
        raise CheckpointError(f"{name}: bad model config metadata: {e}") from None
    return config, meta


def load_state(path: str | os.PathLike, net: str, config: ModelConfig, nets_present: list[str],
               device: str | torch.device = "cpu") -> nn.Module:
    name = Path(path).name
    if net not in nets_present:
        raise CheckpointError(f"{name} has no {net!r} network; it contains: {', '.join(nets_present) or 'nothing'}")
    with torch.device("meta"):
        model = build_network(net, config)
    expected = network_layout(model, config)
    prefix = f"{net}."
    state = {}
    with _safe_open(Path(path), device="cpu") as f:
        keys = [k[len(prefix):] for k in f.keys() if k.startswith(prefix)]
        missing = [k for k in expected.shapes if k not in keys]
        unexpected = [k for k in keys if k not in expected.shapes]
        if missing:
            raise CheckpointError(f"{name}: {net} is missing {len(missing)} tensor(s), first: {missing[0]!r} "
                                  f"(config does not match the weights, or the file is incomplete)")
        if unexpected:
            raise CheckpointError(f"{name}: {net} has unexpected tensor(s), first: {unexpected[0]!r}")
        for key, shape in expected.shapes.items():
            tensor = f.get_tensor(prefix + key)
            if tuple(tensor.shape) != shape:
                raise CheckpointError(f"{name}: {net}.{key} has shape {list(tensor.shape)}, the config needs "
                                      f"{list(shape)}")
            if tensor.dtype not in (torch.float32, torch.float16, torch.bfloat16):
                raise CheckpointError(f"{name}: {net}.{key} has dtype {tensor.dtype}, expected a float type")
            tensor = tensor.to(torch.float32)
            if not torch.isfinite(tensor).all():
                raise CheckpointError(f"{name}: {net}.{key} contains NaN or infinite values")
            reference = expected.defined.get(key)
            if reference is not None and not holds_defined_value(tensor, reference):
                raise CheckpointError(f"{name}: buffer {net}.{key} does not hold its defined value "
                                      f"(corrupt file or a config that does not match the weights)")
            state[key] = tensor
    model.load_state_dict(state, assign=True)
    model.model_config = config
    return model.to(device).eval().requires_grad_(False)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content: the one file hash (cache names, import provenance)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    root = os.environ.get("STYLEGAN_V_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "stylegan_v")
    return Path(root) / "converted"


def _check_sha256(sha256: str | None) -> None:
    # A caller's digest names a cache file, so it must be a digest and nothing that could leave the folder.
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256_HEX.fullmatch(sha256)):
        raise ValueError(f"sha256 must be 64 lowercase hex digits, got {sha256!r}")


def convert_pickle(src: str | os.PathLike, dst: str | os.PathLike, *, sha256: str | None = None,
                   **overrides) -> Path:
    """Import an original snapshot safely (no code from it runs) and write our format.

    `sha256`: the file's digest when the caller already has it (it is recorded as provenance).
    """
    from .legacy import read_snapshot

    _check_sha256(sha256)
    snap = read_snapshot(src, sha256=sha256, **overrides)
    nets = {}
    for name, state in snap.state_dicts.items():
        with torch.device("meta"):
            model = build_network(name, snap.config)
        model.load_state_dict(state, assign=True)
        nets[name] = model
    provenance = {"imported_from": snap.source, "sha256": snap.sha256, "notes": list(snap.notes)}
    return save_networks(nets, dst, model_config=snap.config, provenance=provenance)


def _is_pickle(path: Path) -> bool:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"  # pickle protocol >= 2 header


def resolve_checkpoint(path: str | os.PathLike, use_cache: bool = True, *, sha256: str | None = None,
                       **overrides) -> Path:
    """Path of a safetensors file for `path`, converting an original .pkl once (cached by content hash).

    `sha256`: the file's digest when the caller already has it, so that a conversion hashes the file once.
    """
    _check_sha256(sha256)
    path = check_regular_file(path)
    if not _is_pickle(path):
        return path
    digest = sha256 or sha256_file(path)
    tag = hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:8] if overrides else "default"
    cached = cache_dir() / f"{digest}-{tag}.safetensors"
    if use_cache and cached.is_file():
        return cached
    target = cached if use_cache else Path(tempfile.mkdtemp(prefix="stylegan_v_")) / "converted.safetensors"
    try:
        return convert_pickle(path, target, sha256=digest, **overrides)
    except OSError:
        if not use_cache:
            raise
        # An unwritable cache must not stop the user: convert to a private temp file instead.
        return resolve_checkpoint(path, use_cache=False, sha256=digest, **overrides)


def load(path: str | os.PathLike, net: str = "G_ema", device: str | torch.device = "cpu", *,
         sha256: str | None = None, **overrides) -> nn.Module:
    """Load G_ema, G or D from our .safetensors or an original .pkl (imported safely).

    `overrides` (motion_z_distance, max_num_frames, dataset_fps, ...) apply to .pkl
    snapshots, which do not always record these values. `sha256` is the file's digest
    when the caller already has it (a .pkl is then not hashed again).
    """
    if net not in NET_NAMES:
        raise ValueError(f"net must be one of {', '.join(NET_NAMES)}; got {net!r}")
    st_path = resolve_checkpoint(path, sha256=sha256, **overrides)
    config, meta = read_config(st_path)
    nets_present = [n for n in meta.get("nets", "").split(",") if n]
    model = load_state(st_path, net, config, nets_present, device=device)
    if net != "D":
        model.to(memory_format=inference_memory_format(device))
    model.checkpoint_metadata = meta
    return model
