"""Safe reader for the original StyleGAN-V `network-snapshot-*.pkl` files.

The original snapshots are pickles whose network classes are rebuilt by
executing Python source stored inside the file (`torch_utils.persistence`).
Loading them with `pickle.load` runs whatever code the file carries. This module
never does: a restricted unpickler resolves only an explicit allow-list of
globals, turns every class into an inert record of its pickled state, reads
tensors through `torch.load(..., weights_only=True)` and refuses everything else
with a `SnapshotError` naming the offending global.

From the inert tree it rebuilds the state dicts of G_ema, G and D in the
original key order, checks them against the layout the original code produces
(and the deterministic buffers against their defining formulas), and recovers
the `ModelConfig` from the tensor shapes plus the OmegaConf config pickled
alongside (resolving its `${...}` interpolations without OmegaConf).
"""

from __future__ import annotations

import copyreg
import errno
import hashlib
import io
import math
import pickle
import pickletools
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import DiscriminatorConfig, GeneratorConfig, ModelConfig
from .errors import CheckpointError

__all__ = ["SnapshotError", "LegacyLayoutError", "OriginalSnapshot", "read_snapshot",
           "generator_state_shapes", "discriminator_state_shapes"]

NET_NAMES = ("G_ema", "G", "D")

# Limits that keep a hostile file from making the tree walkers loop for ever.
_MAX_MODULE_DEPTH = 64
_MAX_MODULES = 100_000
_MAX_CFG_DEPTH = 64
_MAX_CFG_STEPS = 10_000
_MAX_CFG_STRING = 4096
# Config values beyond these are treated as unrecorded (a hostile file must not make the renderer allocate).
_MAX_PLAUSIBLE_FRAMES = 1 << 20
_MAX_PLAUSIBLE_FPS = 1000.0
_MAX_TENSOR_DIMS = 16
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a non-zip torch.save file


class SnapshotError(CheckpointError):
    """An original snapshot that cannot be imported; the message names the file and the problem."""


class LegacyLayoutError(SnapshotError):
    """A snapshot from the older internal StyleGAN-V code base, whose networks differ from the public one."""


@dataclass(frozen=True)
class OriginalSnapshot:
    config: ModelConfig
    state_dicts: dict[str, dict[str, torch.Tensor]]  # "G_ema", "G", "D" (those present), official key order
    sha256: str
    source: str  # file name
    notes: tuple[str, ...]  # values that were defaulted, overridden or inconsistent in the file


# ---------------------------------------------------------------------------------------------------------------
# Restricted unpickling
# ---------------------------------------------------------------------------------------------------------------

class PersistentObject:
    """What `persistence._reconstruct_persistent_obj(meta)` would have built, minus the code execution."""

    __slots__ = ("class_name", "module_src", "version", "state")

    def __init__(self, class_name: str, module_src: str, version: Any, state: dict):
        self.class_name = class_name
        self.module_src = module_src  # kept as text only (useful to identify layouts); never executed
        self.version = version
        self.state = state

    def __setstate__(self, state):  # BUILD on a reconstructed object is not part of the format
        raise SnapshotError("a persistent object received extra pickled state, which the original format never has")

    def __repr__(self) -> str:
        return f"<persistent {self.class_name}>"


class _Inert:
    """Stand-in for an allowed class: records constructor arguments and pickled state, runs nothing."""

    __slots__ = ("args", "state")
    global_name = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args = args
        obj.state = None
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<inert {self.global_name}>"


class _TypeRef:
    """A harmless reference to a builtin type (OmegaConf metadata stores `object_type=dict` etc.); not callable."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __setstate__(self, state):
        raise SnapshotError(f"pickled state applied to the type reference {self.name}")

    def __repr__(self) -> str:
        return f"<type {self.name}>"


class _DtypeSpec:
    """numpy.dtype as pickled: a name, then a state tuple whose second entry is the byte order."""

    __slots__ = ("name", "byteorder")

    def __init__(self, name: str):
        self.name = name
        self.byteorder = "="

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) >= 2 and state[1] in ("<", ">", "|", "="):
            self.byteorder = state[1]

    def to_numpy(self) -> np.dtype:
        try:
            dtype = np.dtype(self.name)
        except TypeError as e:
            raise SnapshotError(f"unsupported numpy dtype {self.name!r} in the pickle") from e
        if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
            raise SnapshotError(f"refusing numpy dtype {self.name!r}: only plain numeric dtypes are allowed")
        return dtype.newbyteorder(self.byteorder) if self.byteorder in "<>" else dtype


class _ArrayRecord:
    """numpy.ndarray rebuilt from raw bytes (numeric dtypes only; object arrays could hold anything)."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise SnapshotError("malformed numpy array state in the pickle")
        _, shape, dtype, fortran, raw = state
        if not isinstance(dtype, _DtypeSpec) or not isinstance(raw, (bytes, bytearray)):
            raise SnapshotError("refusing a numpy array that is not plain numeric data")
        self.array = _array_from_bytes(raw, dtype.to_numpy(), shape, "F" if fortran else "C")

    def __repr__(self) -> str:
        return f"<array {None if self.array is None else self.array.shape}>"


def _array_from_bytes(raw, dtype: np.dtype, shape, order: str) -> np.ndarray:
    if not (isinstance(shape, tuple) and all(_is_int(s) and s >= 0 for s in shape)):
        raise SnapshotError("malformed numpy array shape in the pickle")
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw):
        raise SnapshotError("numpy array data does not match its shape in the pickle")
    return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape, order=order).copy()


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# Classes that appear in snapshots (configs, optimisers, plain torch modules, the D time encoder); they become
# `_Inert` records. Anything not listed here or handled in `_RestrictedUnpickler.find_class` is refused.
_INERT_CLASSES = frozenset({
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.base.ContainerMetadata",
    "omegaconf.base.Metadata",
    "training.layers.TemporalDifferenceEncoder",
    "src.training.layers.TemporalDifferenceEncoder",
    "torch.nn.modules.sparse.Embedding",
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.container.ModuleList",
    "torch.nn.modules.container.ModuleDict",
    "torch.optim.adam.Adam",
})
_MODULE_CLASSES = frozenset({
    "training.layers.TemporalDifferenceEncoder",
    "src.training.layers.TemporalDifferenceEncoder",
    "torch.nn.modules.sparse.Embedding",
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.container.ModuleList",
    "torch.nn.modules.container.ModuleDict",
})
_TYPE_REFS = frozenset({
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.set", "builtins.frozenset",
    "builtins.int", "builtins.float", "builtins.str", "builtins.bool", "builtins.bytes",
    "typing.Any", "numpy.ndarray",
})
_PERSISTENT_RECONSTRUCTORS = frozenset({
    "src.torch_utils.persistence._reconstruct_persistent_obj",
    "torch_utils.persistence._reconstruct_persistent_obj",
})
_EASYDICTS = frozenset({"src.dnnlib.util.EasyDict", "dnnlib.util.EasyDict"})
_NUMPY_CORES = ("numpy.core", "numpy._core")


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose `find_class` is an allow-list; every callable it hands out is specific to this load.

    Classes returned to the pickle stream are created per load, so a hostile stream that sets attributes on
    them (BUILD applied to a class) cannot change how a later, honest file is read.
    """

    def __init__(self, file, source: str):
        super().__init__(file)
        self._source = source
        self._classes: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        qualname = f"{module}.{name}"
        if qualname in _PERSISTENT_RECONSTRUCTORS:
            return self._reconstruct_persistent
        if qualname == "torch.storage._load_from_bytes":
            return self._load_storage
        if qualname == "torch._utils._rebuild_tensor_v2":
            return self._rebuild_tensor
        if qualname in ("torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"):
            return self._rebuild_parameter
        if qualname == "collections.OrderedDict":
            return self._ordered_dict
        if qualname == "collections.defaultdict":
            return self._defaultdict
        if qualname in _EASYDICTS:
            return self._class(qualname, _make_easydict_class)
        if qualname in _INERT_CLASSES or (module == "omegaconf.nodes" and name.isidentifier()):
            # Every OmegaConf value-node type is inert data (any Enum value inside one is still refused).
            return self._class(qualname, _make_inert_class)
        if qualname in _TYPE_REFS:
            return _TypeRef(qualname)
        if qualname == "numpy.dtype":
            return self._numpy_dtype
        if module in (f"{core}.multiarray" for core in _NUMPY_CORES):
            if name == "scalar":
                return self._numpy_scalar
            if name == "_reconstruct":
                return self._numpy_reconstruct
        if module in (f"{core}.numeric" for core in _NUMPY_CORES) and name == "_frombuffer":
            return self._numpy_frombuffer
        raise SnapshotError(
            f"{self._source}: refusing to load: the pickle references the global {qualname!r}, which is not "
            f"part of a StyleGAN-V snapshot (loading it could run code)")

    def persistent_load(self, pid):
        raise SnapshotError(f"{self._source}: the pickle uses persistent ids (as torch.save files do); "
                            f"it is not an original StyleGAN-V network-snapshot .pkl")

    def _class(self, qualname: str, factory) -> type:
        if qualname not in self._classes:
            self._classes[qualname] = factory(qualname)
        return self._classes[qualname]

    def _reconstruct_persistent(self, meta=None, *extra):
        if extra or not isinstance(meta, dict):
            raise SnapshotError(f"{self._source}: malformed persistent object (expected one meta dict)")
        if meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
            raise SnapshotError(f"{self._source}: unsupported persistent object type {meta.get('type')!r}")
        state = meta.get("state")
        if not isinstance(state, dict):
            raise SnapshotError(f"{self._source}: persistent {meta['class_name']} has no state dict")
        src = meta.get("module_src")
        return PersistentObject(meta["class_name"], src if isinstance(src, str) else "", meta.get("version"), state)

    def _load_storage(self, blob=None, *extra):
        if extra or not isinstance(blob, (bytes, bytearray)):
            raise SnapshotError(f"{self._source}: malformed tensor storage record")
        try:
            storage = torch.load(io.BytesIO(bytes(blob)), map_location="cpu", weights_only=True)
        except Exception as e:
            raise SnapshotError(f"{self._source}: a tensor storage could not be read ({type(e).__name__}: {e})") from e
        if not isinstance(storage, torch.storage.TypedStorage):
            raise SnapshotError(f"{self._source}: a tensor storage record holds a {type(storage).__name__}")
        return storage

    def _rebuild_tensor(self, storage=None, offset=None, size=None, stride=None, requires_grad=False,
                        backward_hooks=None, metadata=None, *extra):
        if extra or not isinstance(storage, torch.storage.TypedStorage):
            raise SnapshotError(f"{self._source}: malformed tensor record")
        if backward_hooks or metadata:
            raise SnapshotError(f"{self._source}: a tensor carries hooks or metadata, which snapshots never have")
        if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)
                and len(size) <= _MAX_TENSOR_DIMS and _is_int(offset) and offset >= 0
                and all(_is_int(s) and s >= 0 for s in size) and all(_is_int(s) and s >= 0 for s in stride)):
            raise SnapshotError(f"{self._source}: malformed tensor shape record")
        untyped, dtype = storage._untyped_storage, storage.dtype
        tensor = torch.empty((0,), dtype=dtype)
        numel = untyped.nbytes() // tensor.element_size()
        count = math.prod(size)
        if count > 0 and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= numel:
            raise SnapshotError(f"{self._source}: a tensor reaches past the end of its storage")
        if count > numel:  # overlapping strides would let a tiny file expand to any size when copied
            raise SnapshotError(f"{self._source}: a tensor has more elements than its storage")
        return tensor.set_(untyped, int(offset), [int(s) for s in size], [int(s) for s in stride])

    def _rebuild_parameter(self, data=None, *rest):
        if not isinstance(data, torch.Tensor):
            raise SnapshotError(f"{self._source}: malformed parameter record")
        return data

    def _ordered_dict(self, *args):
        if args:
            raise SnapshotError(f"{self._source}: OrderedDict called with arguments, which pickles never do")
        return OrderedDict()

    def _defaultdict(self, factory=None, *args):
        if args or not (factory is None or isinstance(factory, _TypeRef)):
            raise SnapshotError(f"{self._source}: defaultdict with an unsupported default factory")
        return {}  # the default factory is never needed to read a snapshot

    def _numpy_dtype(self, name=None, align=False, copy=False, *extra):
        if extra or not isinstance(name, str) or len(name) > 16:
            raise SnapshotError(f"{self._source}: unsupported numpy dtype record")
        return _DtypeSpec(name)

    def _numpy_scalar(self, dtype=None, raw=None, *extra):
        if extra or not isinstance(dtype, _DtypeSpec) or not isinstance(raw, (bytes, bytearray)):
            raise SnapshotError(f"{self._source}: refusing a numpy scalar that is not plain numeric data")
        return _array_from_bytes(raw, dtype.to_numpy(), (), "C")[()]

    def _numpy_reconstruct(self, subtype=None, shape=None, code=None, *extra):
        if extra or not (isinstance(subtype, _TypeRef) and subtype.name == "numpy.ndarray"):
            raise SnapshotError(f"{self._source}: unsupported numpy array record")
        return _ArrayRecord()

    def _numpy_frombuffer(self, buf=None, dtype=None, shape=None, order="C", *extra):
        if extra or not isinstance(dtype, _DtypeSpec) or not isinstance(buf, (bytes, bytearray)) or order not in "CF":
            raise SnapshotError(f"{self._source}: refusing a numpy array that is not plain numeric data")
        record = _ArrayRecord()
        record.array = _array_from_bytes(buf, dtype.to_numpy(), shape, order)
        return record


def _make_inert_class(qualname: str) -> type:
    return type(qualname.rsplit(".", 1)[-1], (_Inert,), {"__slots__": (), "global_name": qualname})


def _make_easydict_class(qualname: str) -> type:
    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise SnapshotError("EasyDict called with arguments, which pickles never do")

    def __setstate__(self, state):
        raise SnapshotError("EasyDict received pickled attribute state, which pickles never carry")

    return type("EasyDict", (dict,), {"__init__": __init__, "__setstate__": __setstate__, "global_name": qualname})


def _refuse_extension_opcodes(f, source: str) -> None:
    """EXT opcodes name globals through copyreg's registry, whose cache can bypass `find_class`.

    The registry is empty unless some library in this process filled it; only then is the stream scanned.
    """
    try:
        for opcode, _, _ in pickletools.genops(f):
            if opcode.name.startswith("EXT"):
                raise SnapshotError(f"{source}: the pickle uses copyreg extension codes, which snapshots never do")
    except SnapshotError:
        raise
    except Exception:
        return  # malformed streams are reported by the unpickler itself


def _unpickle(path: Path, source: str) -> Any:
    size = path.stat().st_size
    if size == 0:
        raise SnapshotError(f"{source}: empty file (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(2)
        if head == b"PK":
            raise SnapshotError(f"{source}: this is a zip archive (e.g. written by torch.save), "
                                f"not an original StyleGAN-V network-snapshot .pkl")
        if head == b"\x80":
            raise SnapshotError(f"{source}: truncated file (only the first byte of a pickle header)")
        if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= 5:
            raise SnapshotError(f"{source}: not a pickle file (no protocol 2-5 pickle header); "
                                f"expected an original StyleGAN-V network-snapshot .pkl")
        f.seek(0)
        if copyreg._inverted_registry or copyreg._extension_cache:
            _refuse_extension_opcodes(f, source)
            f.seek(0)
        try:
            obj = _RestrictedUnpickler(f, source).load()
        except SnapshotError as e:
            if str(e).startswith(f"{source}:"):
                raise
            raise SnapshotError(f"{source}: {e}") from None
        except EOFError as e:
            raise SnapshotError(f"{source}: truncated file (the pickle ends early: {e})") from None
        except pickle.UnpicklingError as e:
            if "truncated" in str(e):
                raise SnapshotError(f"{source}: truncated file ({e})") from None
            raise SnapshotError(f"{source}: corrupt pickle ({e})") from None
        except MemoryError:
            raise SnapshotError(f"{source}: the pickle asks for more memory than is available "
                                f"(corrupt or hostile file)") from None
        except Exception as e:
            raise SnapshotError(f"{source}: corrupt or unsupported pickle ({type(e).__name__}: {e})") from None
    if _is_int(obj) and obj == _TORCH_LEGACY_MAGIC:
        raise SnapshotError(f"{source}: this is a legacy torch.save file, not an original StyleGAN-V "
                            f"network-snapshot .pkl")
    return obj


# ---------------------------------------------------------------------------------------------------------------
# Module trees -> state dicts
# ---------------------------------------------------------------------------------------------------------------

def _module_state(node: Any, where: str) -> dict:
    if isinstance(node, PersistentObject):
        state = node.state
    elif isinstance(node, _Inert) and node.global_name in _MODULE_CLASSES:
        state = node.state
    else:
        raise SnapshotError(f"{where}: expected a network module, found {_describe(node)}")
    if not isinstance(state, dict):
        raise SnapshotError(f"{where}: module has no pickled state")
    for name in ("_parameters", "_buffers", "_modules"):
        if not isinstance(state.get(name), Mapping):
            raise SnapshotError(f"{where}: module state lacks {name}; not a torch module layout")
    return state


def _describe(node: Any) -> str:
    if isinstance(node, PersistentObject):
        return f"persistent {node.class_name}"
    if isinstance(node, _Inert):
        return node.global_name
    return type(node).__name__


def _class_name(node: Any) -> str:
    if isinstance(node, PersistentObject):
        return node.class_name
    if isinstance(node, _Inert):
        return node.global_name.rsplit(".", 1)[-1]
    return type(node).__name__


def _collect_state_dict(root: Any, net: str) -> dict[str, torch.Tensor]:
    """torch's `state_dict` order: a module's parameters, then persistent buffers, then its children."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()

    def visit(node: Any, prefix: str, depth: int) -> None:
        where = f"{net}.{prefix[:-1]}" if prefix else net
        if depth > _MAX_MODULE_DEPTH:
            raise SnapshotError(f"{where}: module tree is deeper than {_MAX_MODULE_DEPTH} levels")
        if id(node) in seen:
            raise SnapshotError(f"{where}: module tree has a cycle or a shared module")
        seen.add(id(node))
        if len(seen) > _MAX_MODULES:
            raise SnapshotError(f"{net}: module tree has more than {_MAX_MODULES} modules")
        state = _module_state(node, where)
        skip = state.get("_non_persistent_buffers_set") or ()
        if not isinstance(skip, (set, frozenset, list, tuple)):
            raise SnapshotError(f"{where}: malformed _non_persistent_buffers_set")
        entries = list(state["_parameters"].items())
        entries += [(k, v) for k, v in state["_buffers"].items() if k not in skip]
        for name, tensor in entries:
            if tensor is None:
                continue
            if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
                raise SnapshotError(f"{where}: entry {name!r} is {_describe(tensor)}, not a tensor")
            out[prefix + name] = tensor
        for name, child in state["_modules"].items():
            if child is None:
                continue
            if not isinstance(name, str):
                raise SnapshotError(f"{where}: malformed child module name {name!r}")
            visit(child, f"{prefix}{name}.", depth + 1)

    visit(root, "", 0)
    return out


def _clean_tensor(tensor: torch.Tensor, where: str) -> torch.Tensor:
    if not tensor.is_floating_point():
        raise SnapshotError(f"{where} has dtype {tensor.dtype}; expected floating point weights")
    tensor = tensor.detach().to(dtype=torch.float32, copy=True).contiguous()  # compact, no shared storage
    if not torch.isfinite(tensor).all():
        raise SnapshotError(f"{where} contains NaN or infinite values")
    return tensor


def _submodule(root: Any, path: str, net: str) -> Any | None:
    node = root
    for name in path.split("."):
        child = _module_state(node, net)["_modules"].get(name)
        if child is None:
            return None
        node = child
    return node


# ---------------------------------------------------------------------------------------------------------------
# OmegaConf configs (pickled as inert records; interpolations resolved by hand)
# ---------------------------------------------------------------------------------------------------------------

_DICTCONFIG = "omegaconf.dictconfig.DictConfig"
_LISTCONFIG = "omegaconf.listconfig.ListConfig"
_INTERPOLATION = re.compile(r"\$\{([^${}]*)\}")


class _Unresolved(Exception):
    pass


def _cfg_kind(node: Any) -> str | None:
    return node.global_name if isinstance(node, _Inert) and node.global_name.startswith("omegaconf.") else None


def _cfg_state(node: Any) -> dict:
    state = node.state if isinstance(node, _Inert) else None
    if not isinstance(state, dict):
        raise _Unresolved("config node without state")
    return state


def _cfg_parent(node: Any) -> Any | None:
    parent = _cfg_state(node).get("_parent")
    return parent if _cfg_kind(parent) in (_DICTCONFIG, _LISTCONFIG) else None


def _cfg_root(node: Any) -> Any:
    for _ in range(_MAX_CFG_DEPTH):
        parent = _cfg_parent(node)
        if parent is None:
            return node
        node = parent
    raise _Unresolved("config parent chain too long")


class _Budget:
    """Shared step counter for one lookup: string interpolations can fan out exponentially."""

    __slots__ = ("steps",)

    def __init__(self):
        self.steps = 0


def _cfg_resolve_node(node: Any, container: Any, depth: int, budget: _Budget) -> Any:
    """A config node's value: a python scalar, or a container node; interpolations followed."""
    budget.steps += 1
    if depth > _MAX_CFG_DEPTH or budget.steps > _MAX_CFG_STEPS:
        raise _Unresolved("interpolations nest too deep or fan out too far (cycle?)")
    kind = _cfg_kind(node)
    if kind in (_DICTCONFIG, _LISTCONFIG):
        content = _cfg_state(node).get("_content")
        if isinstance(content, str):
            return _cfg_interpolate(content, _cfg_parent(node) or node, depth + 1, budget)
        return node
    if kind is not None and kind.startswith("omegaconf.nodes."):
        value = _cfg_state(node).get("_val")
    else:
        value = node  # plain python value stored directly
    if isinstance(value, str):
        return _cfg_interpolate(value, container, depth + 1, budget)
    return value


def _cfg_interpolate(text: str, container: Any, depth: int, budget: _Budget) -> Any:
    if text == "???":
        raise _Unresolved("missing value")
    whole = _INTERPOLATION.fullmatch(text)
    if whole:
        return _cfg_reference(whole.group(1), container, depth, budget)
    if "${" not in text:
        return text

    def substitute(match: re.Match) -> str:
        value = _cfg_reference(match.group(1), container, depth, budget)
        if _cfg_kind(value) is not None:
            raise _Unresolved("container interpolated into a string")
        return str(value)

    result = _INTERPOLATION.sub(substitute, text)
    if len(result) > _MAX_CFG_STRING:
        raise _Unresolved("interpolated string too long")
    return result


def _cfg_reference(ref: str, container: Any, depth: int, budget: _Budget) -> Any:
    ref = ref.strip()
    if ":" in ref:
        raise _Unresolved(f"resolver {ref!r}")  # ${oc.env:...} and friends depend on the original machine
    if ref.startswith("."):  # relative (OmegaConf >= 2.1): one dot is the current node's container
        dots = len(ref) - len(ref.lstrip("."))
        base = container
        for _ in range(dots - 1):
            base = _cfg_parent(base)
            if base is None:
                raise _Unresolved("relative interpolation above the root")
        return _cfg_select(base, ref[dots:], depth, budget)
    return _cfg_select(_cfg_root(container), ref, depth, budget)


def _cfg_select(node: Any, path: str, depth: int = 0, budget: _Budget | None = None) -> Any:
    budget = budget or _Budget()
    keys = [k for k in re.sub(r"\[(\w+)\]", r".\1", path).split(".") if k]
    current = node
    for key in keys:
        kind = _cfg_kind(current)
        content = _cfg_state(current).get("_content") if kind in (_DICTCONFIG, _LISTCONFIG) else None
        if kind == _DICTCONFIG and isinstance(content, dict) and key in content:
            child = content[key]
        elif kind == _LISTCONFIG and isinstance(content, list) and key.isdigit() and int(key) < len(content):
            child = content[int(key)]
        else:
            raise _Unresolved(f"no key {key!r}")
        current = _cfg_resolve_node(child, current, depth + 1, budget)
    return current


class _ConfigSource:
    """Reads values from the pickled experiment config, tolerating anything missing or unresolvable."""

    def __init__(self, *nodes: Any):
        self._nodes = [n for n in nodes if _cfg_kind(n) == _DICTCONFIG]

    def get(self, *paths: str) -> Any:
        """First value found: each path is tried relative to each node, then from the config root."""
        for path in paths:
            for node in self._nodes:
                for base in (node, self._root(node)):
                    if base is None:
                        continue
                    try:
                        value = _cfg_select(base, path)
                    except (_Unresolved, RecursionError):
                        continue
                    if value is not None and _cfg_kind(value) is None:
                        return value
        return None

    @staticmethod
    def _root(node: Any) -> Any | None:
        try:
            return _cfg_root(node)
        except _Unresolved:
            return None

    def number(self, *paths: str, low: float = -math.inf, high: float = math.inf) -> float | int | None:
        """A finite number within [low, high] (values outside are treated as unrecorded), else None."""
        value = _finite_number(self.get(*paths))
        return value if value is not None and low <= value <= high else None


def _finite_number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    value = value.item() if isinstance(value, np.generic) else value
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------------------------------------------------------
# Layout: what the original code's state dicts contain for a given config
# ---------------------------------------------------------------------------------------------------------------

Shape = tuple[int, ...]


def generator_state_shapes(g: GeneratorConfig) -> list[tuple[str, Shape]]:
    """Keys and shapes of the original Generator's state dict, in its order (spec 5.4)."""
    d, code, k = g.time_enc_dim, g.motion_code_dim, g.motion_kernel_size
    te = "synthesis.motion_encoder.time_encoder."
    out: list[tuple[str, Shape]] = [
        (te + "freqs", (1, d)), (te + "phase_scales", (1, d)),
        (te + "periods_predictor.weight", (d, code)), (te + "phase_predictor.weight", (d, code)),
        (te + "aligners_predictor.weight", (2 * d, code)),
        ("synthesis.motion_encoder.conv.0.weight", (code, g.motion_z_dim + g.c_dim, k)),
        ("synthesis.motion_encoder.conv.0.bias", (code,)),
        ("synthesis.motion_encoder.conv.1.weight", (code, code, k)),
        ("synthesis.motion_encoder.conv.1.bias", (code,)),
    ]

    def layer(prefix: str, c_in: int, c_out: int, kernel: int, with_filter: bool) -> None:
        out.extend([(prefix + "weight", (c_out, c_in, kernel, kernel)), (prefix + "bias", (c_out,))])
        if with_filter:
            out.append((prefix + "resample_filter", (4, 4)))
        out.extend([(prefix + "affine.weight", (c_in, g.w_dim)), (prefix + "affine.bias", (c_in,))])

    for res in g.block_resolutions:
        b, c = f"synthesis.b{res}.", g.channels(res)
        out.append((b + "resample_filter", (4, 4)))
        if res == 4:
            out.append((b + "input.input.const", (1, c, 4, 4)))
            layer(b + "conv1.", c + g.motion_v_dim, c, 3, True)
        else:
            layer(b + "conv0.", g.channels(res // 2), c, 3, True)
            layer(b + "conv1.", c, c, 3, True)
        layer(b + "torgb.", c, g.img_channels, 1, False)
    out.append(("mapping.w_avg", (g.w_dim,)))
    if g.c_dim > 0:
        out.extend([("mapping.embed.weight", (g.w_dim, g.c_dim)), ("mapping.embed.bias", (g.w_dim,))])
    for i in range(g.mapping_layers):
        c_in = (g.z_dim + (g.w_dim if g.c_dim > 0 else 0)) if i == 0 else g.w_dim
        out.extend([(f"mapping.fc{i}.weight", (g.w_dim, c_in)), (f"mapping.fc{i}.bias", (g.w_dim,))])
    return out


def discriminator_state_shapes(d: DiscriminatorConfig) -> list[tuple[str, Shape]]:
    """Keys and shapes of the original Discriminator's state dict, in its order (spec 2, 5.5)."""
    out: list[tuple[str, Shape]] = []
    if d.num_frames > 1:
        out.append(("time_encoder.const_embed.weight", (d.max_num_frames, d.time_embed_dim)))
        out.append(("time_encoder.time_encoder.fourier_coefs", (1, d.num_fourier_coefs)))
    for res in d.block_resolutions:
        b = f"b{res}."
        c_in = d.channels(res) if res < d.resolution else 0
        tmp, c_out = d.channels(res), d.channels(res // 2)
        if res // 2 == d.concat_res:
            c_out //= d.num_frames_div_factor
        if res == d.concat_res:
            c_in = (c_in // d.num_frames_div_factor) * d.num_frames
        out.append((b + "resample_filter", (4, 4)))
        if c_in == 0:
            out.extend([(b + "fromrgb.weight", (tmp, d.img_channels, 1, 1)), (b + "fromrgb.bias", (tmp,)),
                        (b + "fromrgb.resample_filter", (4, 4))])
            c_in = tmp
        for name, shape in (("conv0", (tmp, c_in, 3, 3)), ("conv1", (c_out, tmp, 3, 3))):
            out.extend([(b + name + ".weight", shape), (b + name + ".bias", (shape[0],)),
                        (b + name + ".resample_filter", (4, 4))])
        out.extend([(b + "skip.weight", (c_out, c_in, 1, 1)), (b + "skip.resample_filter", (4, 4))])
    cond_dim = d.c_dim + d.time_cond_dim
    c4 = d.channels(4)
    cmap_dim = c4 if cond_dim > 0 else 0
    if cond_dim > 0:
        out.extend([("mapping.embed.weight", (cmap_dim, cond_dim)), ("mapping.embed.bias", (cmap_dim,))])
        for i in range(d.mapping_layers):
            out.extend([(f"mapping.fc{i}.weight", (cmap_dim, cmap_dim)), (f"mapping.fc{i}.bias", (cmap_dim,))])
    mbstd = d.mbstd_num_channels if d.mbstd_group_size else 0
    out.extend([("b4.conv.weight", (c4, c4 + mbstd, 3, 3)), ("b4.conv.bias", (c4,)),
                ("b4.conv.resample_filter", (4, 4)),
                ("b4.fc.weight", (c4, c4 * 16)), ("b4.fc.bias", (c4,)),
                ("b4.out.weight", (cmap_dim or 1, c4)), ("b4.out.bias", (cmap_dim or 1,))])
    return out


def _compare_layout(state: dict[str, torch.Tensor], expected: list[tuple[str, Shape]], net: str,
                    source: str) -> None:
    actual_keys = list(state)
    expected_keys = [k for k, _ in expected]
    missing = [k for k in expected_keys if k not in state]
    unexpected = [k for k in actual_keys if k not in dict(expected)]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s), e.g. {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s), e.g. {', '.join(unexpected[:3])}")
        raise SnapshotError(f"{source}: {net} does not have the StyleGAN-V layout: {'; '.join(parts)}")
    for key, shape in expected:
        if tuple(state[key].shape) != shape:
            raise SnapshotError(f"{source}: {net}.{key} has shape {list(state[key].shape)}, but the recovered "
                                f"config implies {list(shape)} (unknown layout or inconsistent file)")
    if actual_keys != expected_keys:
        raise SnapshotError(f"{source}: {net} has the expected tensors in an unexpected order (unknown layout)")


# ---------------------------------------------------------------------------------------------------------------
# Deterministic buffers
# ---------------------------------------------------------------------------------------------------------------

def _resample_filter() -> torch.Tensor:
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    return (torch.outer(f, f) / 64).to(torch.float32)


def _time_encoder_buffers(dim: int, min_period: float, max_period: float) -> tuple[torch.Tensor, torch.Tensor]:
    """freqs and phase_scales of the aligned time encoder (spec 1.4.4)."""
    periods = 2.0 ** np.linspace(math.log2(min_period), math.log2(max_period), dim)
    freqs = torch.from_numpy(2 * np.pi / periods[::-1].copy()).to(torch.float32).view(1, dim)
    phase_scales = max_period / (2 * np.pi / freqs)
    return freqs, phase_scales.to(torch.float32)


def _fourier_coefs(max_num_frames: int) -> torch.Tensor:
    n = math.ceil(math.log2(max_num_frames))
    return torch.tensor([[math.pi * 2.0**k / 2.0**n for k in range(n)]], dtype=torch.float32)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def _check_buffers(state: dict[str, torch.Tensor], net: str, cfg: ModelConfig, source: str) -> None:
    reference = _resample_filter()
    for key, tensor in state.items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "resample_filter":
            expected = reference
        elif leaf in ("freqs", "phase_scales"):
            g = cfg.generator
            freqs, scales = _time_encoder_buffers(g.time_enc_dim, g.min_period_len, g.max_period_len)
            expected = freqs if leaf == "freqs" else scales
        elif leaf == "fourier_coefs":
            expected = _fourier_coefs(cfg.discriminator.max_num_frames)
        else:
            continue
        if not _close(tensor, expected):
            raise SnapshotError(f"{source}: buffer {net}.{key} does not hold its defined value "
                                f"(corrupt file or an unknown variant of the model)")


# ---------------------------------------------------------------------------------------------------------------
# Config recovery
# ---------------------------------------------------------------------------------------------------------------

def _fit_channels(widths: dict[int, int], what: str, source: str) -> tuple[int, int]:
    """Smallest (channel_base, channel_max) with min(channel_base // res, channel_max) == width for every res."""
    channel_max = max(widths.values())
    low, high = 1, math.inf
    for res, width in widths.items():
        if width < channel_max:
            low, high = max(low, width * res), min(high, width * res + res - 1)
        else:
            low = max(low, channel_max * res)
    if low > high or any(min(low // r, channel_max) != w for r, w in widths.items()):
        listing = ", ".join(f"{r}:{w}" for r, w in sorted(widths.items()))
        raise SnapshotError(f"{source}: {what} block widths ({listing}) do not follow "
                            f"min(channel_base // res, channel_max); unknown layout")
    return int(low), int(channel_max)


def _shape(state: dict[str, torch.Tensor], key: str, net: str, source: str) -> tuple[int, ...]:
    if key not in state:
        raise SnapshotError(f"{source}: {net} has no {key}; not a StyleGAN-V network of the public code base")
    return tuple(state[key].shape)


def _snap_period(value: float) -> float:
    nearest = round(value)
    return float(nearest) if nearest > 0 and abs(value - nearest) <= 1e-4 * value else value


def _pick(name: str, override, recorded, default, notes: list[str], recorded_from: str = "the file"):
    if override is not None:
        if recorded is not None and recorded != override:
            notes.append(f"{name}={override} given by the caller overrides {recorded} recorded in {recorded_from}")
        return override
    if recorded is not None:
        return recorded
    notes.append(f"{name} is not recorded in the file; using {default}")
    return default


def _check_positive_int(name: str, value) -> None:
    if value is not None and (not _is_int(value) or value <= 0):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _detect_legacy_generator(root: Any, state: dict[str, torch.Tensor], source: str) -> None:
    time_encoder = _submodule(root, "synthesis.motion_encoder.time_encoder", "G_ema")
    class_names = {_class_name(time_encoder)} if time_encoder is not None else set()
    motion = _submodule(root, "synthesis.motion_encoder", "G_ema")
    if motion is not None:
        class_names.add(_class_name(motion))
    has_amplitudes = any(".amplitudes_predictor." in k for k in state)
    has_aligners = any(".aligners_predictor." in k for k in state)
    if (has_amplitudes and not has_aligners) or class_names & {"PeriodicFeatsTimeEncoder", "MotionEncoder"}:
        raise LegacyLayoutError(
            f"{source}: older internal layout (time encoder has amplitudes_predictor, no aligners_predictor; "
            f"module classes: {', '.join(sorted(class_names)) or '?'}). This snapshot comes from the pre-release "
            f"StyleGAN-V code base (cvpr2022-stylegan-v), whose motion path computes a different function; only "
            f"snapshots of the public universome/stylegan-v code are supported")


def _recover_generator(root: Any, state: dict[str, torch.Tensor], cfgs: _ConfigSource, notes: list[str],
                       source: str, *, motion_z_distance, max_num_frames, num_fp16_res, conv_clamp,
                       d_state: dict[str, torch.Tensor] | None) -> GeneratorConfig:
    net = "G_ema"
    te = "synthesis.motion_encoder.time_encoder."
    freqs = state.get(te + "freqs")
    if freqs is None or freqs.ndim != 2 or freqs.shape[1] < 2:
        _shape(state, te + "freqs", net, source)
        raise SnapshotError(f"{source}: {net}.{te}freqs has shape {list(freqs.shape)}; unknown layout")
    time_enc_dim = freqs.shape[1]
    conv0 = _shape(state, "synthesis.motion_encoder.conv.0.weight", net, source)
    conv1 = _shape(state, "synthesis.motion_encoder.conv.1.weight", net, source)
    c_dim = _shape(state, "mapping.embed.weight", net, source)[1] if "mapping.embed.weight" in state else 0
    fc0 = _shape(state, "mapping.fc0.weight", net, source)
    w_dim = fc0[0]
    z_dim = fc0[1] - (w_dim if c_dim else 0)
    mapping_layers = 0
    while f"mapping.fc{mapping_layers}.weight" in state:
        mapping_layers += 1
    block = re.compile(r"synthesis\.b(\d+)\.resample_filter")
    resolutions = sorted(int(m.group(1)) for k in state if (m := block.fullmatch(k)))
    if not resolutions or resolutions[0] != 4:
        raise SnapshotError(f"{source}: {net} has no synthesis.b4 block; unknown layout")
    resolution = resolutions[-1]
    widths = {4: _shape(state, "synthesis.b4.input.input.const", net, source)[1]}
    for res in resolutions[1:]:
        widths[res] = _shape(state, f"synthesis.b{res}.conv1.weight", net, source)[0]
    channel_base, channel_max = _fit_channels(widths, "generator", source)
    img_channels = _shape(state, "synthesis.b4.torgb.weight", net, source)[0]

    # Periods: the freqs buffer fixes them; prefer the config's exact values when they reproduce it.
    min_period = cfgs.number("time_enc.min_period_len", "model.generator.time_enc.min_period_len")
    max_period = cfgs.number("time_enc.max_period_len", "model.generator.time_enc.max_period_len")
    recorded = None
    if min_period and max_period and 0 < min_period <= max_period:
        candidate = _time_encoder_buffers(time_enc_dim, float(min_period), float(max_period))[0]
        if _close(freqs, candidate):
            recorded = (float(min_period), float(max_period))
        else:
            notes.append(f"the pickled config's periods {min_period}..{max_period} do not match the freqs buffer; "
                         f"periods taken from the weights")
    if recorded is None:
        f64 = freqs.double()
        recorded = (_snap_period(2 * math.pi / f64[0, -1].item()), _snap_period(2 * math.pi / f64[0, 0].item()))
    min_period, max_period = recorded

    file_delta = cfgs.number("motion.motion_z_distance", "model.generator.motion.motion_z_distance",
                             low=1, high=_MAX_PLAUSIBLE_FRAMES)
    file_delta = int(file_delta) if file_delta is not None and float(file_delta).is_integer() else None
    default_delta = int(min_period) if float(min_period).is_integer() else 16
    delta = _pick("motion_z_distance", motion_z_distance, file_delta, default_delta, notes)

    # G's sampling_dict is the resolved copy of the same settings, taken when the network was built.
    sampling = _module_state(root, net).get("sampling_dict")
    sampling = sampling if isinstance(sampling, Mapping) else {}
    frames = cfgs.number("sampling.max_num_frames", "dataset.max_num_frames", low=1, high=_MAX_PLAUSIBLE_FRAMES)
    frames = int(frames) if frames is not None else None
    built_with = sampling.get("max_num_frames")
    built_with = int(built_with) if _is_int(built_with) and 1 <= built_with <= _MAX_PLAUSIBLE_FRAMES else None
    if frames is not None and built_with is not None and frames != built_with:
        notes.append(f"the pickled config says max_num_frames={frames}, G was built with {built_with}")
    if frames is None:
        frames = built_with
    if frames is None and d_state is not None and "time_encoder.const_embed.weight" in d_state:
        frames = d_state["time_encoder.const_embed.weight"].shape[0]
    max_frames = _pick("max_num_frames", max_num_frames, frames, 1024, notes)

    synthesis_kwargs = _init_kwargs(root).get("synthesis_kwargs")
    synthesis_kwargs = synthesis_kwargs if isinstance(synthesis_kwargs, Mapping) else {}
    fp16 = synthesis_kwargs.get("num_fp16_res")
    fp16 = int(fp16) if _is_int(fp16) and fp16 >= 0 else None
    fp16 = _pick("num_fp16_res", num_fp16_res, fp16, 4, notes)
    clamp = _pick_clamp(conv_clamp, synthesis_kwargs, notes, "generator")

    z_dim_attr = _module_state(root, net).get("z_dim")
    if _is_int(z_dim_attr) and z_dim_attr != z_dim:
        raise SnapshotError(f"{source}: {net}.z_dim={z_dim_attr} disagrees with its mapping weights ({z_dim})")
    try:
        return GeneratorConfig(
            resolution=resolution, z_dim=z_dim, w_dim=w_dim, c_dim=c_dim, img_channels=img_channels,
            mapping_layers=mapping_layers, channel_base=channel_base, channel_max=channel_max,
            num_fp16_res=fp16, conv_clamp=clamp, motion_z_dim=conv0[1] - c_dim, motion_code_dim=conv1[0],
            motion_kernel_size=conv0[2], time_enc_dim=time_enc_dim, motion_z_distance=int(delta),
            min_period_len=min_period, max_period_len=max_period, max_num_frames=int(max_frames))
    except ValueError as e:
        raise SnapshotError(f"{source}: the recovered generator config is invalid: {e}") from None


def _init_kwargs(root: Any) -> Mapping:
    kwargs = root.state.get("_init_kwargs") if isinstance(root, PersistentObject) else None
    return kwargs if isinstance(kwargs, Mapping) else {}


def _pick_clamp(override, kwargs: Mapping, notes: list[str], what: str) -> float | None:
    if override is not None:
        return float(override)
    if "conv_clamp" in kwargs:
        value = kwargs["conv_clamp"]
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
            return None if value is None else float(value)
    notes.append(f"{what} conv_clamp is not recorded in the file; using 256")
    return 256.0


def _recover_discriminator(root: Any | None, state: dict[str, torch.Tensor] | None, g: GeneratorConfig,
                           cfgs: _ConfigSource, notes: list[str], source: str, *, num_fp16_res,
                           conv_clamp) -> DiscriminatorConfig:
    frames_cfg = cfgs.number("sampling.num_frames_per_video", low=1, high=64)
    sampling_cfg = cfgs.get("sampling.type")
    concat_cfg = cfgs.number("concat_res", "model.discriminator.concat_res", low=4, high=g.resolution)
    div_cfg = cfgs.number("num_frames_div_factor", "model.discriminator.num_frames_div_factor", low=1, high=64)
    if state is None:
        notes.append("the file has no D; its config is derived from G and the pickled config")
        fields = dict(resolution=g.resolution, c_dim=g.c_dim, img_channels=g.img_channels,
                      channel_base=g.channel_base, channel_max=g.channel_max, num_fp16_res=g.num_fp16_res,
                      conv_clamp=g.conv_clamp, max_num_frames=g.max_num_frames)
        recorded = {"num_frames": frames_cfg, "concat_res": concat_cfg, "num_frames_div_factor": div_cfg}
        recorded = {k: int(v) for k, v in recorded.items() if v is not None and float(v).is_integer()}
        if sampling_cfg in ("random", "uniform"):
            recorded["sampling_type"] = sampling_cfg
        fields["concat_res"] = max(4, min(16, g.resolution // 2))  # the original's 16 where the model allows it
        try:
            return DiscriminatorConfig(**{**fields, **recorded})
        except ValueError as e:
            notes.append(f"the pickled D settings are unusable ({e}); D uses defaults")
        return DiscriminatorConfig(**fields)

    net = "D"
    resolutions = sorted((int(m.group(1)) for k in state
                          if (m := re.fullmatch(r"b(\d+)\.conv0\.weight", k))), reverse=True)
    if not resolutions:
        raise SnapshotError(f"{source}: D has no discriminator blocks; unknown layout")
    resolution = resolutions[0]
    img_channels = _shape(state, f"b{resolution}.fromrgb.weight", net, source)[1]
    widths = {res: _shape(state, f"b{res}.conv0.weight", net, source)[0] for res in resolutions}
    widths[4] = _shape(state, "b4.conv.weight", net, source)[0]
    channel_base, channel_max = _fit_channels(widths, "discriminator", source)
    channels = {r: min(channel_base // r, channel_max) for r in resolutions + [4]}

    # Frame concatenation: the block above concat_res emits channels // div per frame, and block concat_res
    # takes F_D of those stacked; everywhere else a block's input is the previous block's output.
    concat_res, div, num_frames = None, 1, 1
    for res in resolutions[1:]:
        previous_out = _shape(state, f"b{res * 2}.conv1.weight", net, source)[0]
        c_in = _shape(state, f"b{res}.conv0.weight", net, source)[1]
        if previous_out == channels[res] and c_in == previous_out:
            continue
        if concat_res is not None or previous_out <= 0 or channels[res] % previous_out or c_in % previous_out:
            raise SnapshotError(f"{source}: D.b{res} takes {c_in} channels after a block that emits "
                                f"{previous_out}; unknown frame-concatenation layout")
        concat_res, div, num_frames = res, channels[res] // previous_out, c_in // previous_out
    if concat_res is None:
        # One frame per clip and no channel split: the concatenation point leaves no trace in the weights.
        blocks = resolutions + [4]
        concat_res = int(concat_cfg) if concat_cfg and int(concat_cfg) in blocks else min(16, resolution)
    if frames_cfg is not None and int(frames_cfg) != num_frames:
        notes.append(f"the pickled config says {int(frames_cfg)} frames per clip, D's weights say {num_frames}")

    time_embed_dim, max_frames = 256, g.max_num_frames
    if "time_encoder.const_embed.weight" in state:
        max_frames, time_embed_dim = _shape(state, "time_encoder.const_embed.weight", net, source)
    c_dim = g.c_dim
    cond_dim = _shape(state, "mapping.embed.weight", net, source)[1] if "mapping.embed.weight" in state else c_dim
    per_diff = time_embed_dim + 2 * math.ceil(math.log2(max_frames))
    diffs = (cond_dim - c_dim) // per_diff if per_diff else 0
    if num_frames > 1 and diffs == num_frames - 1:
        sampling_type = "random" if not (num_frames == 2 and sampling_cfg == "uniform") else "uniform"
    elif num_frames > 1 and diffs == 1:
        sampling_type = "uniform"
    elif num_frames <= 1:
        sampling_type = sampling_cfg if sampling_cfg in ("random", "uniform") else "random"
    else:
        raise SnapshotError(f"{source}: D's conditioning width {cond_dim} does not fit {num_frames} frames per clip; "
                            f"unknown layout")
    mapping_layers = 0
    while f"mapping.fc{mapping_layers}.weight" in state:
        mapping_layers += 1

    mbstd_channels = _shape(state, "b4.conv.weight", net, source)[1] - channels[4]
    mbstd_node = _submodule(root, "b4.mbstd", net)
    mbstd_state = _module_state(mbstd_node, "D.b4.mbstd") if mbstd_node is not None else {}
    group = mbstd_state.get("group_size")
    if not _is_int(group):
        epilogue = _init_kwargs(root).get("epilogue_kwargs")
        group = epilogue.get("mbstd_group_size") if isinstance(epilogue, Mapping) else None
    if not _is_int(group):
        group = cfgs.number("mbstd_group_size", "model.discriminator.mbstd_group_size", low=1, high=1024)
    if not _is_int(group):
        group = 4
        notes.append("D minibatch-std group size is not recorded in the file; using 4")
    if mbstd_channels <= 0:
        raise SnapshotError(f"{source}: D.b4 has no minibatch-std channel; unknown layout")

    kwargs = _init_kwargs(root)
    fp16 = kwargs.get("num_fp16_res")
    fp16 = int(fp16) if _is_int(fp16) and fp16 >= 0 else None
    fp16 = _pick("D num_fp16_res", num_fp16_res, fp16, 4, notes)
    clamp = _pick_clamp(conv_clamp, kwargs, notes, "discriminator")
    try:
        return DiscriminatorConfig(
            resolution=resolution, c_dim=c_dim, img_channels=img_channels, channel_base=channel_base,
            channel_max=channel_max, num_fp16_res=fp16, conv_clamp=clamp, num_frames=num_frames,
            concat_res=concat_res, num_frames_div_factor=div, max_num_frames=int(max_frames),
            mbstd_group_size=int(group), mbstd_num_channels=int(mbstd_channels), mapping_layers=mapping_layers,
            time_embed_dim=int(time_embed_dim), sampling_type=sampling_type)
    except ValueError as e:
        raise SnapshotError(f"{source}: the recovered discriminator config is invalid: {e}") from None


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_snapshot(path, *, motion_z_distance: int | None = None, max_num_frames: int | None = None,
                  dataset_fps: float | None = None, num_fp16_res: int | None = None,
                  conv_clamp: float | None = None) -> OriginalSnapshot:
    """Read an original StyleGAN-V `network-snapshot-*.pkl` without executing anything from it.

    Shapes fix most of the config; the rest comes from the experiment config pickled with the
    networks. Keyword arguments override what the file records, or supply what it does not:
    `motion_z_distance` (default: min_period_len, as the original config interpolates it),
    `max_num_frames` (default 1024; G only, D's is part of its weights), `dataset_fps` (default 25),
    `num_fp16_res` and `conv_clamp` (for G and D; defaults 4 and 256). Every value that was
    defaulted, overridden or found inconsistent is listed in `OriginalSnapshot.notes`.

    Raises FileNotFoundError for a missing file, `LegacyLayoutError` for snapshots of the older
    internal code base, and `SnapshotError` (a ValueError) for anything else that is not a usable
    snapshot, including every global outside the allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "StyleGAN-V snapshot not found", str(path))
    _check_positive_int("motion_z_distance", motion_z_distance)
    _check_positive_int("max_num_frames", max_num_frames)
    if num_fp16_res is not None and (not _is_int(num_fp16_res) or num_fp16_res < 0):
        raise ValueError(f"num_fp16_res must be a non-negative integer, got {num_fp16_res!r}")
    for name, value in (("dataset_fps", dataset_fps), ("conv_clamp", conv_clamp)):
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    source = path.name
    sha256 = _sha256(path)
    top = _unpickle(path, source)
    overrides = dict(motion_z_distance=motion_z_distance, max_num_frames=max_num_frames, dataset_fps=dataset_fps,
                     num_fp16_res=num_fp16_res, conv_clamp=conv_clamp)
    try:
        config, states, notes = _convert(top, path, source, **overrides)
    except SnapshotError as e:
        if str(e).startswith(f"{source}:"):
            raise
        raise type(e)(f"{source}: {e}") from None
    except (TypeError, AttributeError, KeyError, IndexError, RecursionError) as e:
        # The allow-list admits only inert objects, but they can still be assembled into odd shapes.
        raise SnapshotError(f"{source}: malformed snapshot structure ({type(e).__name__}: {e})") from None
    return OriginalSnapshot(config=config, state_dicts=states, sha256=sha256, source=source, notes=tuple(notes))


def _convert(top: Any, path: Path, source: str, *, motion_z_distance, max_num_frames, dataset_fps, num_fp16_res,
             conv_clamp) -> tuple[ModelConfig, dict[str, dict[str, torch.Tensor]], list[str]]:
    if not isinstance(top, dict):
        raise SnapshotError(f"{source}: not a StyleGAN-V snapshot: the pickle holds a {_describe(top)}, "
                            f"expected a dict with G_ema")
    if top.get("G_ema") is None:
        keys = ", ".join(repr(k) for k in list(top)[:8]) or "none"
        raise SnapshotError(f"{source}: not a StyleGAN-V snapshot: missing G_ema (top-level keys: {keys})")
    roots = {name: top[name] for name in NET_NAMES if top.get(name) is not None}
    for name, root in roots.items():
        expected_class = "Discriminator" if name == "D" else "Generator"
        if not isinstance(root, PersistentObject) or root.class_name != expected_class:
            raise SnapshotError(f"{source}: {name} is a {_describe(root)}, expected the persistent "
                                f"{expected_class} of the original code")

    raw = {"G_ema": _collect_state_dict(roots["G_ema"], "G_ema")}
    _detect_legacy_generator(roots["G_ema"], raw["G_ema"], source)
    raw.update({name: _collect_state_dict(root, name) for name, root in roots.items() if name != "G_ema"})
    # Every state-dict entry is copied to float32; views of one storage must not multiply a small file.
    needed = sum(t.numel() for sd in raw.values() for t in sd.values()) * 4
    if needed > 2 * path.stat().st_size + (1 << 20):
        raise SnapshotError(f"{source}: the networks' tensors would need {needed} bytes, far more than the file "
                            f"holds (tensors share storage); corrupt or hostile file")
    states = {name: {k: _clean_tensor(t, f"{source}: {name}.{k}") for k, t in sd.items()} for name, sd in raw.items()}
    del raw

    g_root, d_root = roots["G_ema"], roots.get("D")
    g_state = _module_state(g_root, "G_ema")
    dataset_kwargs = top.get("training_set_kwargs")
    dataset_cfg = dataset_kwargs.get("cfg") if isinstance(dataset_kwargs, Mapping) else None
    d_cfg = _module_state(d_root, "D").get("cfg") if d_root is not None else None
    init_cfg = _init_kwargs(g_root).get("cfg")
    g_cfgs = _ConfigSource(g_state.get("cfg"), init_cfg, d_cfg, dataset_cfg)
    d_cfgs = _ConfigSource(d_cfg, g_state.get("cfg"), dataset_cfg)

    notes: list[str] = []
    g = _recover_generator(g_root, states["G_ema"], g_cfgs, notes, source, motion_z_distance=motion_z_distance,
                           max_num_frames=max_num_frames,
                           num_fp16_res=num_fp16_res, conv_clamp=conv_clamp, d_state=states.get("D"))
    d = _recover_discriminator(d_root, states.get("D"), g, d_cfgs, notes, source, num_fp16_res=num_fp16_res,
                               conv_clamp=conv_clamp)

    fps = _ConfigSource(dataset_cfg).number("fps", low=1e-3, high=_MAX_PLAUSIBLE_FPS)
    if fps is None:
        fps = g_cfgs.number("dataset.fps", "sampling.fps", low=1e-3, high=_MAX_PLAUSIBLE_FPS)
    sampling = g_state.get("sampling_dict")
    if fps is None and isinstance(sampling, Mapping):
        fps = _finite_number(sampling.get("fps"))
        fps = fps if fps is not None and 1e-3 <= fps <= _MAX_PLAUSIBLE_FPS else None
    fps = _pick("dataset_fps", dataset_fps, float(fps) if fps is not None else None, 25.0, notes)
    name = _ConfigSource(dataset_cfg).get("name")
    config = ModelConfig(generator=g, discriminator=d, dataset_fps=float(fps),
                         name=name if isinstance(name, str) and name else path.stem)

    for net, state in states.items():
        expected = discriminator_state_shapes(d) if net == "D" else generator_state_shapes(g)
        _compare_layout(state, expected, net, source)
        _check_buffers(state, net, config, source)
    return config, states, notes
