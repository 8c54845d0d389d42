"""The one tensor-storage record an original snapshot pickles, checked before torch reads it.

A snapshot pickles each storage as `torch.storage._load_from_bytes(blob)`, where `blob` is
`torch.save(storage)` in torch's legacy (non-zip) layout:

    pickle: magic number      pickle: protocol version      pickle: sys_info dict
    pickle: ('storage', torch.<Type>Storage, key, location, numel, None), as a persistent id
    pickle: [key]             int64 little-endian: numel    numel * item size bytes: the data

`torch.load` allocates `numel` elements as declared in the persistent id before it reads the
data, so a small record could ask for any size. `record_nbytes` walks the five pickles as opcodes
(nothing is built, nothing is hashed), takes the declared numel and type, and accepts the record
only if the bytes that follow hold exactly that storage: what torch then allocates is bounded by
the record. Tuples are refused outside the persistent id, so a record cannot nest deeply either.
"""

from __future__ import annotations

import io
import pickletools
import struct

import torch

# The storage classes a snapshot pickles (module torch, protocol 2 GLOBAL), with their element types.
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
_INTS = frozenset({"BININT", "BININT1", "BININT2", "LONG1", "INT", "LONG"})
_STRINGS = frozenset({"BINUNICODE", "SHORT_BINUNICODE", "UNICODE"})
_MEMO = frozenset({"BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"})
# The header pickles hold ints, strings, booleans and dicts of them (magic, protocol, sys_info, keys).
_HEADER_OPS = _INTS | _STRINGS | _MEMO | {"PROTO", "FRAME", "STOP", "MARK", "EMPTY_DICT", "EMPTY_LIST",
                                          "SETITEM", "SETITEMS", "APPEND", "APPENDS", "NEWTRUE", "NEWFALSE"}
_PERSISTENT_ID_OPS = _INTS | _STRINGS | _MEMO | {"PROTO", "FRAME", "STOP", "MARK", "GLOBAL", "NONE", "TUPLE",
                                                 "BINPERSID"}


def _ops(f: io.BytesIO, allowed: frozenset[str], part: str) -> list[tuple[str, object]]:
    ops = []
    for opcode, arg, _ in pickletools.genops(f):
        if opcode.name not in allowed:
            raise ValueError(f"its {part} holds the opcode {opcode.name}, which a storage record never has")
        ops.append((opcode.name, arg))
        if opcode.name == "STOP":
            return ops
    raise ValueError(f"its {part} has no end")


def record_nbytes(blob: bytes) -> int:
    """The byte size of the storage `blob` holds; `ValueError` names what is wrong with a record."""
    f = io.BytesIO(blob)
    try:
        for part in ("magic number", "protocol version", "system info"):
            _ops(f, _HEADER_OPS, part)
        persistent_id = _ops(f, _PERSISTENT_ID_OPS, "storage description")
        _ops(f, _HEADER_OPS, "storage key list")
    except ValueError as e:
        if "opcode" in str(e) or "no end" in str(e):
            raise
        raise ValueError(f"it is not a complete torch.save record ({e})") from None
    names = [arg for op, arg in persistent_id if op == "GLOBAL"]
    ints = [arg for op, arg in persistent_id if op in _INTS]
    if [op for op, _ in persistent_id].count("TUPLE") != 1 or len(names) != 1 or len(ints) != 1:
        raise ValueError("its storage description is not one (storage, type, key, location, numel) tuple")
    module, _, name = names[0].partition(" ")
    if module != "torch" or name not in _STORAGE_DTYPES:
        raise ValueError(f"it describes a storage of type {names[0]!r}, not a torch tensor storage")
    numel = ints[0]
    item_size = torch.empty((), dtype=_STORAGE_DTYPES[name]).element_size()
    header = f.read(8)
    if len(header) != 8 or struct.unpack("<q", header)[0] != numel or numel < 0:
        raise ValueError(f"its data does not start with the declared {numel} elements")
    data = len(blob) - f.tell()
    if data != numel * item_size:
        raise ValueError(f"it declares {numel} x {item_size} bytes of data and holds {data}")
    return data
