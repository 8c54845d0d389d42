"""The restricted unpickler: the security boundary of the original-snapshot importer.

An original `network-snapshot-*.pkl` rebuilds its network classes by executing
Python source stored in the file (`torch_utils.persistence`), so `pickle.load`
would run whatever the file carries. This unpickler runs nothing from the file.
Its `find_class` hands out only the callables below, every one written here;
any other global is refused with a `SnapshotError` naming it.

Allowed globals (module.name as pickled), what each becomes, and why a snapshot needs it:

- `src.torch_utils.persistence._reconstruct_persistent_obj` and `torch_utils.persistence.
  _reconstruct_persistent_obj`: a `PersistentObject` holding the class name, the version,
  the pickled state and the embedded source as text (never executed). Every network
  (G, G_ema, D and their submodules) is pickled through it.
- `torch.storage._load_from_bytes`: a tensor storage, read by `torch.load(weights_only=True)`
  (torch's own restricted loader) once `storage_record` has checked that the record holds exactly
  the storage it declares (torch allocates the declared size first); anything else is refused.
- `torch._utils._rebuild_tensor_v2`: a tensor on such a storage, after checking that its
  shape and strides stay inside the storage and do not repeat elements; no hooks, no metadata.
  `torch._utils._rebuild_parameter` and `_rebuild_parameter_with_state`: the tensor they wrap.
- `collections.OrderedDict` (no arguments) and `collections.defaultdict` (a plain dict; its
  factory is never called): the containers of module state.
- `src.dnnlib.util.EasyDict`, `dnnlib.util.EasyDict`: a dict that takes no arguments and no
  attribute state (the training options).
- The OmegaConf config classes (`omegaconf.dictconfig.DictConfig`, `omegaconf.listconfig.
  ListConfig`, `omegaconf.base.ContainerMetadata`, `omegaconf.base.Metadata`, every
  `omegaconf.nodes.*` value node), plain torch containers and modules that the original
  pickles without persistence (`torch.nn.modules.sparse.Embedding`, `torch.nn.modules.
  container.Sequential`, `ModuleList`, `ModuleDict`, `training.layers.TemporalDifferenceEncoder`
  and `src.training.layers.TemporalDifferenceEncoder`) and `torch.optim.adam.Adam`: an inert
  record of the constructor arguments and the pickled state; no code of the class runs.
- `builtins.dict`, `list`, `tuple`, `set`, `frozenset`, `int`, `float`, `str`, `bool`, `bytes`,
  `typing.Any`, `numpy.ndarray`: a `_TypeRef`, a name that cannot be called (OmegaConf
  metadata records such types).
- `numpy.dtype`, `numpy.core.multiarray.scalar` / `_reconstruct` and `numpy.core.numeric.
  _frombuffer` (also under `numpy._core`): plain numeric arrays and scalars rebuilt from raw
  bytes; object, structured and sub-array dtypes are refused.

Before anything is unpickled, `_scan` walks the opcodes with `pickletools.genops` and a model of
the unpickler's stack (nothing runs, nothing is hashed). It fails closed: any error refuses the
file, and so does every opcode it does not model: `EXT1/2/4` (they name globals through
copyreg's registry, whose cache bypasses `find_class`), persistent ids (`PERSID`, `BINPERSID`;
torch.save files use them), `INST`/`OBJ` (protocol 0/1 only) and out-of-band buffers. It refuses
objects nested deeper than `MAX_NESTING`, since hashing such a tuple as a dict key recurses in C
off the stack. The bytes a load materialises (the file's bytes and str literals, tensor storages,
numpy arrays) are counted, and the file is refused once they exceed `MATERIALISE_FACTOR` times its
size (plus `MATERIALISE_SLACK`) or `MAX_MATERIALISED`: the memo lets a small file hand one record
to a constructor any number of times. `BUILD` (pickled state applied to an object) is taken by the
inert records and the numpy records, and refused by persistent objects, EasyDicts and type refs;
a tensor's default `__setstate__` could re-point it anywhere in (a grown) storage, so every
tensor is checked after loading to still be exactly what `_rebuild_tensor_v2` built.
Every class handed to the stream is created per load, so a stream that sets attributes on
one cannot change how a later file is read.
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SnapshotError
from .storage_record import record_nbytes

_MAX_TENSOR_DIMS = 16
# Honest snapshots nest a few dozen levels (module trees, OmegaConf nodes); CPython hashes a tuple recursively in C.
MAX_NESTING = 1000
# An honest load holds each storage's record (a bytes literal) and the storage built from it: about twice the file.
MATERIALISE_FACTOR = 3
MATERIALISE_SLACK = 1 << 20
MAX_MATERIALISED = 16 << 30  # far above the largest official snapshot (1024x1024 G, G_ema and D)
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a non-zip torch.save file

_PERSISTENT_RECONSTRUCTORS = frozenset({
    "src.torch_utils.persistence._reconstruct_persistent_obj",
    "torch_utils.persistence._reconstruct_persistent_obj",
})
_EASYDICTS = frozenset({"src.dnnlib.util.EasyDict", "dnnlib.util.EasyDict"})
INERT_MODULE_CLASSES = frozenset({
    "training.layers.TemporalDifferenceEncoder",
    "src.training.layers.TemporalDifferenceEncoder",
    "torch.nn.modules.sparse.Embedding",
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.container.ModuleList",
    "torch.nn.modules.container.ModuleDict",
})
_INERT_CLASSES = INERT_MODULE_CLASSES | {
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.base.ContainerMetadata",
    "omegaconf.base.Metadata",
    "torch.optim.adam.Adam",
}
_TYPE_REFS = frozenset({
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.set", "builtins.frozenset",
    "builtins.int", "builtins.float", "builtins.str", "builtins.bool", "builtins.bytes",
    "typing.Any", "numpy.ndarray",
})
_NUMPY_CORES = ("numpy.core", "numpy._core")


def is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


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


class Inert:
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

    __slots__ = ("array", "charge")

    def __init__(self, charge):
        self.array = None
        self.charge = charge

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise SnapshotError("malformed numpy array state in the pickle")
        _, shape, dtype, fortran, raw = state
        if not isinstance(dtype, _DtypeSpec) or not isinstance(raw, (bytes, bytearray)):
            raise SnapshotError("refusing a numpy array that is not plain numeric data")
        self.array = _array_from_bytes(raw, dtype.to_numpy(), shape, "F" if fortran else "C", self.charge)

    def __repr__(self) -> str:
        return f"<array {None if self.array is None else self.array.shape}>"


def _array_from_bytes(raw, dtype: np.dtype, shape, order: str, charge) -> np.ndarray:
    if not (isinstance(shape, tuple) and all(is_int(s) and s >= 0 for s in shape)):
        raise SnapshotError("malformed numpy array shape in the pickle")
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw):
        raise SnapshotError("numpy array data does not match its shape in the pickle")
    charge(len(raw), "a numpy array")
    return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape, order=order).copy()


def _geometry(tensor: torch.Tensor) -> tuple:
    storage = tensor.untyped_storage()
    return (storage.data_ptr(), storage.nbytes(), tensor.dtype, tensor.storage_offset(), tuple(tensor.shape),
            tensor.stride())


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose `find_class` is the allow-list above; every callable it hands out is specific to this load."""

    def __init__(self, file, source: str, budget: int):
        super().__init__(file)
        self._source = source
        self._budget = budget  # bytes this load may still materialise
        self._classes: dict[str, type] = {}
        self._tensors: list[tuple[torch.Tensor, tuple]] = []

    def _charge(self, nbytes: int, what: str) -> None:
        self._budget -= nbytes
        if self._budget < 0:
            raise SnapshotError(f"{self._source}: {what} would take the memory this load builds past "
                                f"{MATERIALISE_FACTOR}x the file size; the file references its data over and over "
                                f"(corrupt or hostile file)")

    def load(self):
        obj = super().load()
        for tensor, geometry in self._tensors:
            if _geometry(tensor) != geometry:
                raise SnapshotError(f"{self._source}: pickled state re-pointed a tensor after it was built, "
                                    f"which snapshots never do")
        return obj

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
        self._charge(len(blob), "a tensor storage")
        try:
            nbytes = record_nbytes(bytes(blob))  # before torch allocates what the record declares
        except Exception as e:  # fail closed: a record the check cannot follow is not read
            raise SnapshotError(f"{self._source}: a tensor storage record is refused: {e}") from None
        try:
            storage = torch.load(io.BytesIO(bytes(blob)), map_location="cpu", weights_only=True)
        except Exception as e:
            raise SnapshotError(f"{self._source}: a tensor storage could not be read ({type(e).__name__}: {e})") from e
        if not isinstance(storage, torch.storage.TypedStorage):
            raise SnapshotError(f"{self._source}: a tensor storage record holds a {type(storage).__name__}")
        if storage._untyped_storage.nbytes() != nbytes:
            raise SnapshotError(f"{self._source}: a tensor storage is not the size its record declares")
        return storage

    def _rebuild_tensor(self, storage=None, offset=None, size=None, stride=None, requires_grad=False,
                        backward_hooks=None, metadata=None, *extra):
        if extra or not isinstance(storage, torch.storage.TypedStorage):
            raise SnapshotError(f"{self._source}: malformed tensor record")
        if backward_hooks or metadata:
            raise SnapshotError(f"{self._source}: a tensor carries hooks or metadata, which snapshots never have")
        if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)
                and len(size) <= _MAX_TENSOR_DIMS and is_int(offset) and offset >= 0
                and all(is_int(s) and s >= 0 for s in size) and all(is_int(s) and s >= 0 for s in stride)):
            raise SnapshotError(f"{self._source}: malformed tensor shape record")
        untyped, dtype = storage._untyped_storage, storage.dtype
        tensor = torch.empty((0,), dtype=dtype)
        numel = untyped.nbytes() // tensor.element_size()
        count = math.prod(size)
        if count > 0 and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= numel:
            raise SnapshotError(f"{self._source}: a tensor reaches past the end of its storage")
        if count > numel:  # overlapping strides would let a tiny file expand to any size when copied
            raise SnapshotError(f"{self._source}: a tensor has more elements than its storage")
        tensor = tensor.set_(untyped, int(offset), [int(s) for s in size], [int(s) for s in stride])
        self._tensors.append((tensor, _geometry(tensor)))
        return tensor

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
        return _array_from_bytes(raw, dtype.to_numpy(), (), "C", self._charge)[()]

    def _numpy_reconstruct(self, subtype=None, shape=None, code=None, *extra):
        if extra or not (isinstance(subtype, _TypeRef) and subtype.name == "numpy.ndarray"):
            raise SnapshotError(f"{self._source}: unsupported numpy array record")
        return _ArrayRecord(self._charge)

    def _numpy_frombuffer(self, buf=None, dtype=None, shape=None, order="C", *extra):
        if extra or not isinstance(dtype, _DtypeSpec) or not isinstance(buf, (bytes, bytearray)) or order not in "CF":
            raise SnapshotError(f"{self._source}: refusing a numpy array that is not plain numeric data")
        record = _ArrayRecord(self._charge)
        record.array = _array_from_bytes(buf, dtype.to_numpy(), shape, order, self._charge)
        return record


def _make_inert_class(qualname: str) -> type:
    return type(qualname.rsplit(".", 1)[-1], (Inert,), {"__slots__": (), "global_name": qualname})


def _make_easydict_class(qualname: str) -> type:
    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise SnapshotError("EasyDict called with arguments, which pickles never do")

    def __setstate__(self, state):
        raise SnapshotError("EasyDict received pickled attribute state, which pickles never carry")

    return type("EasyDict", (dict,), {"__init__": __init__, "__setstate__": __setstate__, "global_name": qualname})


# Opcode pre-scan: a model of the unpickler's stack that executes nothing.
_SCALARS = frozenset({
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "NONE", "NEWTRUE", "NEWFALSE",
    "FLOAT", "BINFLOAT", "GLOBAL",
})
_LITERALS = frozenset({  # their argument is materialised as a bytes or str object
    "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
    "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
})
_EMPTY_CONTAINERS = frozenset({"EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_DICT", "EMPTY_SET"})
_BUILDERS = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "STACK_GLOBAL": 2, "REDUCE": 2, "NEWOBJ": 2, "NEWOBJ_EX": 3}
_MARK_BUILDERS = frozenset({"TUPLE", "LIST", "DICT", "FROZENSET"})
_FILLERS = {"APPEND": 1, "SETITEM": 2, "BUILD": 1}  # (container, items) -> container
_MARK_FILLERS = frozenset({"APPENDS", "SETITEMS", "ADDITEMS"})  # container, MARK, items -> container
_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
_MEMO_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_NO_STACK_EFFECT = frozenset({"PROTO", "FRAME"})
_MODELLED = (_SCALARS | _LITERALS | _EMPTY_CONTAINERS | _BUILDERS.keys() | _MARK_BUILDERS | _FILLERS.keys()
             | _MARK_FILLERS | _MEMO_PUTS | _MEMO_GETS | _NO_STACK_EFFECT | {"MARK", "POP", "POP_MARK", "DUP", "STOP"})


class _Depth:
    """How deep the object in one stack slot or memo entry nests; a container deepens as it is filled."""

    __slots__ = ("value",)

    def __init__(self, value: int = 0):
        self.value = value


_SCALAR = _Depth()  # shared by every scalar; never deepened


def _pop(stack: list, marks: list, count: int) -> list:
    if len(stack) - count < (marks[-1] if marks else 0):
        raise ValueError("stack underflow")
    items = stack[len(stack) - count:]
    del stack[len(stack) - count:]
    return items


def _pop_to_mark(stack: list, marks: list) -> list:
    if not marks:
        raise ValueError("no MARK to pop to")
    items = stack[marks[-1]:]
    del stack[marks.pop():]
    return items


def _nest(items: list) -> _Depth:
    return _Depth(1 + max((item.value for item in items), default=0))


def _fill(stack: list, marks: list, items: list) -> _Depth:
    if len(stack) <= (marks[-1] if marks else 0):
        raise ValueError("stack underflow")
    if stack[-1] is _SCALAR:
        stack[-1] = _Depth()
    container = stack[-1]
    container.value = max(container.value, _nest(items).value if items else 0)
    return container


def _step(name: str, arg, stack: list, marks: list, memo: dict) -> _Depth | None:
    """Apply one opcode to the model; returns the object it built or filled, if any."""
    if name in _SCALARS or name in _LITERALS:
        stack.append(_SCALAR)
    elif name in _EMPTY_CONTAINERS:
        stack.append(_Depth())
    elif name in _BUILDERS:
        stack.append(_nest(_pop(stack, marks, _BUILDERS[name])))
        return stack[-1]
    elif name in _MARK_BUILDERS:
        stack.append(_nest(_pop_to_mark(stack, marks)))
        return stack[-1]
    elif name in _FILLERS:
        return _fill(stack, marks, _pop(stack, marks, _FILLERS[name]))
    elif name in _MARK_FILLERS:
        return _fill(stack, marks, _pop_to_mark(stack, marks))
    elif name == "MARK":
        marks.append(len(stack))
    elif name == "POP":
        _pop(stack, marks, 1)
    elif name == "POP_MARK":
        _pop_to_mark(stack, marks)
    elif name == "DUP":
        stack.append(_pop(stack, marks, 1)[0])
        stack.append(stack[-1])
    elif name in _MEMO_PUTS:
        if not stack:
            raise ValueError("memo put on an empty stack")
        memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
    elif name in _MEMO_GETS:
        stack.append(memo[arg])
    elif name not in _NO_STACK_EFFECT:
        raise ValueError(f"unmodelled opcode {name}")
    return None


def _refused_opcode(name: str, source: str) -> SnapshotError | None:
    if name.startswith("EXT"):
        return SnapshotError(f"{source}: the pickle uses copyreg extension codes ({name}), which snapshots never do")
    if name in ("PERSID", "BINPERSID"):
        return SnapshotError(f"{source}: the pickle uses persistent ids (as torch.save files do); "
                             f"it is not an original StyleGAN-V network-snapshot .pkl")
    if name not in _MODELLED:
        return SnapshotError(f"{source}: the pickle uses the {name} opcode, which StyleGAN-V snapshots never use")
    return None


def _scan(f, source: str) -> int:
    """Check the opcode stream without running it; returns the bytes its str and bytes literals hold.

    Raises `SnapshotError` for a refused or unmodelled opcode, nesting deeper than `MAX_NESTING`,
    and for any stream the model cannot follow (the scan fails closed).
    """
    stack: list[_Depth] = []
    marks: list[int] = []
    memo: dict[int, _Depth] = {}
    literal_bytes = 0
    try:
        for opcode, arg, pos in pickletools.genops(f):
            refusal = _refused_opcode(opcode.name, source)
            if refusal is not None:
                raise refusal
            if opcode.name == "STOP":
                if len(stack) != 1 or marks:
                    raise ValueError("STOP with a malformed stack")
                return literal_bytes
            if opcode.name in _LITERALS:
                literal_bytes += len(arg)
            built = _step(opcode.name, arg, stack, marks, memo)
            if built is not None and built.value > MAX_NESTING:
                raise SnapshotError(f"{source}: the pickle nests objects deeper than {MAX_NESTING} levels "
                                    f"(at byte {pos}); snapshots nest a few dozen (corrupt or hostile file)")
    except SnapshotError:
        raise
    except Exception as e:  # fail closed: a stream the scan cannot follow is not loaded
        text = str(e)
        if "remain" in text or "exhausted" in text or "not enough data" in text:
            raise SnapshotError(f"{source}: truncated file (the pickle ends early: {text})") from None
        raise SnapshotError(f"{source}: corrupt pickle ({type(e).__name__}: {text})") from None
    raise SnapshotError(f"{source}: truncated file (the pickle has no STOP)")


def unpickle(path: Path, source: str) -> Any:
    """The object tree of the pickle at `path`, built from the allow-listed stand-ins only.

    `source` names the file in error messages. Raises `SnapshotError` for anything that is not
    a protocol 2-5 pickle of allowed globals (zip or legacy torch.save files, truncated or corrupt
    streams, refused globals and opcodes, oversized allocations).
    """
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
        literal_bytes = _scan(f, source)
        f.seek(0)
        budget = min(MATERIALISE_FACTOR * size + MATERIALISE_SLACK, MAX_MATERIALISED) - literal_bytes
        try:
            obj = _RestrictedUnpickler(f, source, budget).load()
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
    if is_int(obj) and obj == _TORCH_LEGACY_MAGIC:
        raise SnapshotError(f"{source}: this is a legacy torch.save file, not an original StyleGAN-V "
                            f"network-snapshot .pkl")
    return obj
