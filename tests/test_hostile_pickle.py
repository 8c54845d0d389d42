"""Hostile .pkl files are refused with a named error, quickly and in bounded memory, never by a crash.

Each file is loaded in a child interpreter (`fuzz_harness`), so a crash signal or a memory blow-up
fails the test instead of the test run. Every refusal has a control that shows the attack works
against the unpickler without the defence, so the test can fail.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import pickletools
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from fuzz_harness import baseline_maxrss_mb, run_child

MAX_SECONDS = 2.0
MAX_EXTRA_MB = 300.0
STORAGE_BYTES = 4 << 20


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _bytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def _get(index: int) -> bytes:
    return b"h" + bytes([index])


def deep_tuple_key(depth: int) -> bytes:
    """{((((...),),),): None}, `depth` levels: hashing the key recurses once per level in C."""
    return b"\x80\x04}" + b")" + b"\x85" * depth + b"Ns."


def storage_referenced(times: int) -> bytes:
    """One 4 MiB storage record handed to torch.storage._load_from_bytes `times` times through the memo."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # snapshots pickle typed storages
        warnings.simplefilter("ignore")
        storage = torch.zeros(STORAGE_BYTES // 4).storage()
    torch.save(storage, buffer, _use_new_zipfile_serialization=False)
    head = _global("torch.storage", "_load_from_bytes") + b"q\x000" + _bytes(buffer.getvalue()) + b"q\x010"
    return b"\x80\x02" + head + b"](" + (_get(0) + _get(1) + b"\x85R") * times + b"e."


def array_referenced(times: int) -> bytes:
    """One 4 MiB buffer handed to numpy's _frombuffer `times` times through the memo."""
    dtype = _global("numpy", "dtype") + b"X\x02\x00\x00\x00f4\x89\x88\x87R"
    head = (_global("numpy.core.numeric", "_frombuffer") + b"q\x000" + dtype + b"q\x010"
            + _bytes(bytes(STORAGE_BYTES)) + b"q\x020")
    shape = b"J" + struct.pack("<i", STORAGE_BYTES // 4) + b"\x85"
    call = _get(0) + b"(" + _get(2) + _get(1) + shape + b"X\x01\x00\x00\x00CtR"
    return b"\x80\x02" + head + b"](" + call * times + b"e."


def _load_code(path: Path, *, defence_off: str = "") -> str:
    """Child code: optionally switch one defence off (for the controls), read the file, print the outcome."""
    return f"""
import json, time
from stylegan_v.legacy import read_snapshot, unpickler
from stylegan_v.errors import CheckpointError
{defence_off}
start = time.perf_counter()
try:
    read_snapshot({str(path)!r}, sha256="0" * 64)
    outcome = "loaded"
except CheckpointError as e:
    outcome = "refused: " + str(e)
print(json.dumps({{"outcome": outcome, "seconds": time.perf_counter() - start}}))
"""


NO_SCAN = "unpickler._scan = lambda f, source: 0"
NO_BUDGET = "unpickler.MATERIALISE_FACTOR = unpickler.MAX_MATERIALISED = 1 << 50"


def _refused_in_bounds(path: Path, *fragments: str) -> dict:
    run = run_child(_load_code(path), timeout=120)
    assert run.returncode == 0 and not run.timed_out, run.stderr[-2000:]
    (result,) = run.results()
    assert result["outcome"].startswith(f"refused: {path.name}:"), result
    for fragment in fragments:
        assert fragment in result["outcome"], result
    extra_mb = run.maxrss_mb - baseline_maxrss_mb()
    # Kept in the test: the load itself (not the interpreter start) is timed inside the child.
    assert result["seconds"] < MAX_SECONDS, result
    assert extra_mb < MAX_EXTRA_MB, f"{extra_mb:.0f} MB above the baseline"
    print(f"{path.name}: refused in {result['seconds']:.3f} s, {extra_mb:.0f} MB above the baseline")
    return result


def test_a_deeply_nested_dict_key_is_refused_before_it_is_hashed(tmp_path):
    path = tmp_path / "deep.pkl"
    path.write_bytes(deep_tuple_key(1_000_000))
    _refused_in_bounds(path, "nests objects deeper than")
    # Control: without the pre-scan the same file kills the interpreter (hashing runs off the C stack).
    control = run_child(_load_code(path, defence_off=NO_SCAN), timeout=120)
    assert control.returncode < 0, (control.returncode, control.stdout, control.stderr[-500:])


def test_honest_nesting_is_far_below_the_limit(tmp_path):
    from stylegan_v.legacy.unpickler import MAX_NESTING, _scan

    path = tmp_path / "shallow.pkl"
    path.write_bytes(deep_tuple_key(MAX_NESTING - 1))  # the dict holding the key is one level more
    with open(path, "rb") as f:
        _scan(f, path.name)  # exactly at the limit: accepted
    path.write_bytes(deep_tuple_key(MAX_NESTING))
    with open(path, "rb") as f, pytest.raises(ValueError, match="deeper than"):
        _scan(f, path.name)


@pytest.mark.parametrize("make", [storage_referenced, array_referenced], ids=["storage", "numpy"])
def test_a_record_referenced_many_times_is_refused_in_bounded_memory(tmp_path, make):
    path = tmp_path / f"{make.__name__}.pkl"
    path.write_bytes(make(1000))
    assert path.stat().st_size < 2 * STORAGE_BYTES
    _refused_in_bounds(path, "the file size")
    # Control: without the budget, 200 references already cost more than the bound (1000: over 4 GB).
    control_path = tmp_path / "control.pkl"
    control_path.write_bytes(make(200))
    control = run_child(_load_code(control_path, defence_off=NO_BUDGET), timeout=120)
    assert control.returncode == 0, control.stderr[-2000:]
    assert "the file size" not in control.results()[0]["outcome"]
    assert control.maxrss_mb - baseline_maxrss_mb() > MAX_EXTRA_MB


def _marker_via_extension_cache(path: str) -> None:
    open(path, "w").close()


def test_a_malformed_opcode_cannot_hide_an_extension_code(tmp_path):
    from stylegan_v.legacy import SnapshotError, read_snapshot

    marker = tmp_path / "pwned"
    code = 0xF0
    # INT "0x10": the unpickler reads it (strtol, base 0), pickletools.genops does not.
    data = (b"\x80\x02I0x10\n0" + b"\x82" + bytes([code]) + b"X" + struct.pack("<I", len(str(marker)))
            + str(marker).encode() + b"\x85R.")
    path = tmp_path / "ext.pkl"
    path.write_bytes(data)
    copyreg.add_extension("tests_hostile_pickle", "marker", code)
    copyreg._extension_cache[code] = _marker_via_extension_cache  # another unpickler already resolved it
    try:
        with pytest.raises(SnapshotError) as info:
            read_snapshot(path, sha256="0" * 64)
        assert not marker.exists()
        assert str(info.value).startswith("ext.pkl: corrupt pickle"), info.value
        # Controls: the scan stops at the malformed opcode, before the EXT1 (a scan that ignored its errors
        # saw no EXT), and a plain unpickler reads past it and runs the cached function.
        with pytest.raises(ValueError):
            names = [op.name for op, _, _ in pickletools.genops(io.BytesIO(data))]
            assert "EXT1" not in names
        pickle.loads(data)
        assert marker.exists()
    finally:
        copyreg._extension_cache.pop(code, None)
        copyreg.remove_extension("tests_hostile_pickle", "marker", code)


@pytest.mark.parametrize("opcode, name", [(b"\x82\x01", "EXT1"), (b"\x83\x01\x00", "EXT2"),
                                          (b"\x84\x01\x00\x00\x00", "EXT4"), (b"P0\n", "PERSID"),
                                          (b"(i__main__\nX\n", "INST"), (b"\x97", "NEXT_BUFFER")])
def test_opcodes_the_scan_does_not_model_are_refused_outright(tmp_path, opcode, name):
    from stylegan_v.legacy import SnapshotError, read_snapshot

    assert not copyreg._extension_cache  # refused even though no extension is registered
    path = tmp_path / "op.pkl"
    path.write_bytes(b"\x80\x05" + opcode + b".")
    with pytest.raises(SnapshotError, match="extension codes" if name.startswith("EXT") else
                       "persistent ids" if name == "PERSID" else name):
        read_snapshot(path, sha256="0" * 64)


def test_the_official_fixture_passes_the_scan_and_the_budget():
    from stylegan_v.legacy import unpickler

    fixture = Path(__file__).parent / "fixtures" / "official_tiny" / "network-snapshot.pkl"
    top = unpickler.unpickle(fixture, fixture.name)
    assert isinstance(top, dict) and "G_ema" in top
    assert np is not None


def _legacy_storage_record(sys_info: bytes | None = None, declared: int | None = None) -> bytes:
    """torch.save of a 5-element float storage in the legacy layout, optionally with its system-info
    pickle replaced or its declared element count (in the description and the data header) changed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, (blob,) = torch.arange(5, dtype=torch.float32).storage().__reduce__()
    f = io.BytesIO(blob)
    bounds = [0]
    for _ in range(5):
        for _ in pickletools.genops(f):
            pass
        bounds.append(f.tell())
    parts = [blob[a:b] for a, b in zip(bounds, bounds[1:])] + [blob[bounds[-1]:]]
    if sys_info is not None:
        parts[2] = sys_info
    if declared is not None:
        assert b"K\x05Nt" in parts[3]  # BININT1 5, NONE, TUPLE: the numel closing the description
        parts[3] = parts[3].replace(b"K\x05Nt", b"J" + struct.pack("<i", declared) + b"Nt")
        parts[5] = struct.pack("<q", declared) + parts[5][8:]
    return b"".join(parts)


def _snapshot_of_one_storage(record: bytes) -> bytes:
    return b"\x80\x02" + _global("torch.storage", "_load_from_bytes") + _bytes(record) + b"\x85R."


NO_RECORD_CHECK = "unpickler.record_nbytes = len"  # hands every record to torch.load unchecked


def test_a_storage_record_cannot_hide_deep_nesting_from_the_scan(tmp_path):
    # The record is a pickle inside a bytes literal: the outer scan sees bytes, torch's loader the tuples.
    path = tmp_path / "deep_record.pkl"
    path.write_bytes(_snapshot_of_one_storage(_legacy_storage_record(sys_info=deep_tuple_key(1_000_000))))
    _refused_in_bounds(path, "storage record is refused", "TUPLE")
    # Control: handed to torch.load unchecked, the record kills the interpreter while hashing the key.
    control = run_child(_load_code(path, defence_off=NO_RECORD_CHECK), timeout=120)
    assert control.returncode < 0, (control.returncode, control.stdout, control.stderr[-500:])


def test_a_storage_record_declaring_more_than_it_holds_is_refused_before_allocation(tmp_path):
    path = tmp_path / "big_record.pkl"
    path.write_bytes(_snapshot_of_one_storage(_legacy_storage_record(declared=1 << 30)))  # 4 GiB declared
    _refused_in_bounds(path, "declares 1073741824 x 4 bytes of data and holds 20")


def test_honest_storage_records_of_every_type_pass_with_their_size():
    from stylegan_v.legacy.storage_record import _STORAGE_DTYPES, record_nbytes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dtype in _STORAGE_DTYPES.values():
            for n in (0, 1, 7):
                storage = torch.zeros(n, dtype=dtype).storage()
                _, (blob,) = storage.__reduce__()
                assert record_nbytes(blob) == storage.nbytes() == n * storage.element_size()
    assert record_nbytes(_legacy_storage_record()) == 20
    for bad in (_legacy_storage_record()[:-1], _legacy_storage_record()[:100], _legacy_storage_record() + b"\0"):
        with pytest.raises(ValueError):
            record_nbytes(bad)
