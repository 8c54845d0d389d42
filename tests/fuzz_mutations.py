"""Seeded mutations of checkpoint files for the loader fuzz test (`test_hostile_fuzz.py`).

Each mutation is a pure function of (data, rng): bit flips, truncations, opcode substitutions
and insertions at real opcode boundaries of a pickle, and edits of a safetensors header
(shapes, offsets, dtypes, the length prefix, config fields set to extreme values).
"""

from __future__ import annotations

import json
import pickletools
import random
import struct

_OPCODE_BYTES = [op.code.encode("latin-1") for op in pickletools.opcodes]
_EXTREMES = [0, -1, 1, 2, 3, 7, 1 << 20, 10**12, 2**63, -(2**63), 1.5, 1e308, float("nan"), "x", None, True, [], {},
             [[[[1]]]]]


def flip_bits(data: bytes, rng: random.Random, region: int | None = None) -> bytes:
    out = bytearray(data)
    end = min(len(out), region or len(out))
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(end)] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data))]


def opcode_positions(data: bytes) -> list[int]:
    import io

    return [pos for _, _, pos in pickletools.genops(io.BytesIO(data))]


def substitute_opcode(data: bytes, rng: random.Random, positions: list[int]) -> bytes:
    pos = rng.choice(positions)
    return data[:pos] + rng.choice(_OPCODE_BYTES) + data[pos + 1:]


def insert_opcode(data: bytes, rng: random.Random, positions: list[int]) -> bytes:
    pos = rng.choice(positions)
    return data[:pos] + rng.choice(_OPCODE_BYTES) + data[pos:]


def mutate_pickle(data: bytes, rng: random.Random, positions: list[int]) -> tuple[str, bytes]:
    kind = rng.choice(["flip", "flip_head", "truncate", "substitute", "insert"])
    if kind == "flip":
        return kind, flip_bits(data, rng)
    if kind == "flip_head":
        return kind, flip_bits(data, rng, region=positions[-1] // 50)
    if kind == "truncate":
        return kind, truncate(data, rng)
    if kind == "substitute":
        return kind, substitute_opcode(data, rng, positions)
    return kind, insert_opcode(data, rng, positions)


def _split_safetensors(data: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + length]), data[8 + length:]


def _join_safetensors(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header, allow_nan=True).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def edit_header(data: bytes, rng: random.Random) -> bytes:
    header, body = _split_safetensors(data)
    keys = [k for k in header if k != "__metadata__"]
    choice = rng.randrange(6)
    key = rng.choice(keys)
    if choice == 0:
        header[key]["shape"] = [rng.choice(_EXTREMES[:8]) for _ in range(rng.randint(0, 4))]
    elif choice == 1:
        header[key]["data_offsets"] = [rng.choice(_EXTREMES[:9]), rng.choice(_EXTREMES[:9])]
    elif choice == 2:
        header[key]["dtype"] = rng.choice(["F64", "I64", "BOOL", "U8", "F16", "BF16", "X"])
    elif choice == 3:
        del header[key]
    elif choice == 4:
        meta = header["__metadata__"]
        config = json.loads(meta["model_config"])
        part = rng.choice(["generator", "discriminator", None])
        target = config[part] if part else config
        field = rng.choice(sorted(target))
        target[field] = rng.choice(_EXTREMES)
        meta["model_config"] = json.dumps(config, allow_nan=True)
    else:
        meta = header["__metadata__"]
        meta[rng.choice(sorted(meta))] = rng.choice(["", "x", "{", "1e12", "[" * 1000])
    return _join_safetensors(header, body)


def edit_length(data: bytes, rng: random.Random) -> bytes:
    (length,) = struct.unpack("<Q", data[:8])
    new = rng.choice([0, 1, length - 1, length + 1, len(data), 2**63, 2**64 - 1])
    return struct.pack("<Q", new) + data[8:]


def mutate_safetensors(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    (length,) = struct.unpack("<Q", data[:8])
    kind = rng.choice(["flip", "flip_head", "truncate", "header", "header", "length"])
    if kind == "flip":
        return kind, flip_bits(data, rng)
    if kind == "flip_head":
        return kind, flip_bits(data, rng, region=8 + length)
    if kind == "truncate":
        return kind, truncate(data, rng)
    if kind == "header":
        return kind, edit_header(data, rng)
    return kind, edit_length(data, rng)
