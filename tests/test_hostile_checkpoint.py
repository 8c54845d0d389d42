"""Hostile safetensors files and paths: refused quickly, in bounded memory, with the file named."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

import pytest

import stylegan_v
from stylegan_v.checkpoint import MAX_TENSORS, read_metadata
from stylegan_v.config import preset
from stylegan_v.errors import CheckpointError
from stylegan_v.legacy import read_snapshot

sys.path.insert(0, str(Path(__file__).parent))
from fuzz_harness import baseline_maxrss_mb, run_child


@pytest.fixture
def saved(tmp_path, tiny_generator):
    path = tmp_path / "g.safetensors"
    stylegan_v.save(tiny_generator, path, model_config=preset("tiny32"))
    return path


def _many_empty_tensors(path: Path, metadata: dict, count: int) -> Path:
    header = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(count)}
    raw = json.dumps(dict(header, __metadata__=metadata)).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    return path


_LOAD = """
import json, time
import stylegan_v
from stylegan_v import checkpoint
from stylegan_v.errors import CheckpointError
{defence_off}
start = time.perf_counter()
try:
    stylegan_v.load({path!r})
    outcome = "loaded"
except CheckpointError as e:
    outcome = "refused: " + str(e)
print(json.dumps({{"outcome": outcome, "seconds": time.perf_counter() - start}}))
"""


def test_a_header_of_500k_empty_tensors_is_refused_before_it_is_parsed(saved, tmp_path):
    path = _many_empty_tensors(tmp_path / "many.safetensors", read_metadata(saved), 500_000)
    run = run_child(_LOAD.format(path=str(path), defence_off=""), timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    (result,) = run.results()
    assert result["outcome"].startswith("refused: many.safetensors"), result
    extra = run.maxrss_mb - baseline_maxrss_mb()
    assert result["seconds"] < 2 and extra < 300, (result, extra)
    print(f"500k tensors: refused in {result['seconds']:.3f} s, {extra:.0f} MB above the baseline")
    # Control: the bound on the count alone (the header is under the byte limit) refuses a smaller such file.
    small = _many_empty_tensors(tmp_path / "count.safetensors", read_metadata(saved), MAX_TENSORS + 1)
    with pytest.raises(CheckpointError, match=f"more than {MAX_TENSORS}"):
        stylegan_v.load(small)


def test_tensors_outside_the_file_are_refused(saved, tmp_path):
    data = saved.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    key = next(k for k in header if k != "__metadata__")
    header[key]["data_offsets"] = [0, 1 << 40]
    raw = json.dumps(header).encode()
    bad = tmp_path / "far.safetensors"
    bad.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + length:])
    with pytest.raises(CheckpointError, match="far.safetensors .*outside the file"):
        stylegan_v.load(bad)


def test_a_directory_fifo_or_device_is_refused_without_being_read(tmp_path):
    fifo = tmp_path / "fifo.safetensors"
    os.mkfifo(fifo)  # opening it for reading would block for ever
    for path, kind in ((tmp_path, "a directory"), (fifo, "a FIFO"), (Path("/dev/zero"), "a device")):
        with pytest.raises(CheckpointError, match=f"is {kind}, expected a regular file") as info:
            stylegan_v.load(path)
        assert str(path) in str(info.value)
        with pytest.raises(CheckpointError, match=kind):  # the .pkl importer too
            read_snapshot(path)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        stylegan_v.load(tmp_path / "missing.safetensors")


def test_a_file_whose_name_is_not_utf8_loads(saved, tmp_path):
    name = os.path.join(os.fsencode(tmp_path), b"g\xff.safetensors")
    os.rename(saved, name)
    path = os.fsdecode(name)  # a str with a surrogate escape, as os.listdir returns it
    model = stylegan_v.load(path)
    assert model.cfg == preset("tiny32").generator
