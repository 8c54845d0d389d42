"""Our safetensors format: exact round trip, and clear errors for every kind of bad file."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

import stylegan_v
from stylegan_v import CheckpointError, Discriminator, preset
from stylegan_v.checkpoint import cache_dir, read_metadata, resolve_checkpoint
from stylegan_v.generator import inference_memory_format


@pytest.fixture
def saved(tmp_path, tiny_generator):
    path = tmp_path / "g.safetensors"
    cfg = preset("tiny32")
    stylegan_v.save(tiny_generator, path, model_config=cfg, provenance={"run": "test"})
    return path, tiny_generator


def _rewrite(src, dst, tensors=None, metadata=None):
    t = load_file(str(src)) if tensors is None else tensors
    m = read_metadata(src) if metadata is None else metadata
    save_file(t, str(dst), metadata=m)
    return dst


def test_round_trip_is_exact(saved):
    path, G = saved
    loaded = stylegan_v.load(path)
    for (k, a), (k2, b) in zip(G.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert loaded.model_config == preset("tiny32")
    assert loaded.model_config.dataset_fps == 25.0
    assert json.loads(loaded.checkpoint_metadata["provenance"]) == {"run": "test"}
    z, t = torch.randn(1, G.z_dim), torch.tensor([[0.0, 3.5]])
    mz = torch.randn(1, 200, G.cfg.motion_z_dim)
    # Loading picks the device's layout (channels-last on CPU); in the same layout the same
    # weights run the same computation.
    G.to(memory_format=inference_memory_format("cpu"))
    try:
        assert torch.equal(G(z, None, t, motion_z=mz), loaded(z, None, t, motion_z=mz))
    finally:
        G.to(memory_format=torch.contiguous_format)


def test_multiple_networks_in_one_file(tmp_path, tiny_generator):
    cfg = preset("tiny32")
    D = Discriminator(cfg.discriminator)
    path = stylegan_v.save_networks({"G_ema": tiny_generator, "D": D}, tmp_path / "both.safetensors",
                                    model_config=cfg)
    assert isinstance(stylegan_v.load(path, "D"), Discriminator)
    with pytest.raises(CheckpointError, match="has no 'G' network; it contains: G_ema, D"):
        stylegan_v.load(path, "G")


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        stylegan_v.load("/nonexistent/nope.safetensors")


def test_truncated_and_garbage_files(saved, tmp_path):
    path, _ = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors is not a valid safetensors file"):
        stylegan_v.load(cut)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"hello world, definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        stylegan_v.load(junk)


def test_missing_key(saved, tmp_path):
    path, _ = saved
    tensors = load_file(str(path))
    del tensors["G_ema.mapping.fc1.bias"]
    bad = _rewrite(path, tmp_path / "missing.safetensors", tensors=tensors)
    with pytest.raises(CheckpointError, match="missing 1 tensor.*mapping.fc1.bias"):
        stylegan_v.load(bad)


def test_unexpected_key(saved, tmp_path):
    path, _ = saved
    tensors = load_file(str(path))
    tensors["G_ema.mapping.fc9.weight"] = torch.zeros(2, 2)
    bad = _rewrite(path, tmp_path / "extra.safetensors", tensors=tensors)
    with pytest.raises(CheckpointError, match="unexpected.*fc9"):
        stylegan_v.load(bad)


def test_wrong_shape(saved, tmp_path):
    path, _ = saved
    tensors = load_file(str(path))
    tensors["G_ema.synthesis.b8.conv0.weight"] = torch.zeros(64, 64, 5, 5)
    bad = _rewrite(path, tmp_path / "shape.safetensors", tensors=tensors)
    with pytest.raises(CheckpointError, match=r"b8.conv0.weight has shape \[64, 64, 5, 5\].*\[64, 64, 3, 3\]"):
        stylegan_v.load(bad)


def test_wrong_dtype_and_nan(saved, tmp_path):
    path, _ = saved
    tensors = load_file(str(path))
    tensors["G_ema.mapping.fc0.bias"] = torch.zeros(64, dtype=torch.int64)
    with pytest.raises(CheckpointError, match="dtype"):
        stylegan_v.load(_rewrite(path, tmp_path / "int.safetensors", tensors=tensors))
    tensors = load_file(str(path))
    tensors["G_ema.mapping.fc0.bias"][3] = float("nan")
    with pytest.raises(CheckpointError, match="NaN"):
        stylegan_v.load(_rewrite(path, tmp_path / "nan.safetensors", tensors=tensors))


def test_tampered_deterministic_buffer(saved, tmp_path):
    path, _ = saved
    tensors = load_file(str(path))
    tensors["G_ema.synthesis.motion_encoder.time_encoder.freqs"] *= 2
    with pytest.raises(CheckpointError, match="freqs does not hold its defined value"):
        stylegan_v.load(_rewrite(path, tmp_path / "freqs.safetensors", tensors=tensors))


@pytest.mark.parametrize("change,message", [
    ({"format": "something-else"}, "not a StyleGAN-V checkpoint"),
    ({"format_version": "99"}, "format version '99'"),
    ({"model_config": "{not json"}, "bad model config metadata: model config is not valid JSON"),
    ({"model_config": json.dumps({"generator": {"resolution": 33}})}, "resolution must be a power of two"),
    ({"model_config": json.dumps({"generator": {"resolution": 1 << 20}})}, "larger than 2048"),
    ({"model_config": json.dumps({"generator": {"bogus": 1}})}, "unknown fields: bogus"),
    ({"model_config": json.dumps({"dataset_fps": -3})}, r"dataset_fps must be a number in \[0.001, 1000\]"),
    ({"model_config": json.dumps({"discriminator": {"mbstd_group_size": 0}})},
     r"DiscriminatorConfig.mbstd_group_size must be an integer in \[1, 1024\]"),
    # Values that once cost minutes, overflowed or raised a raw TypeError/RecursionError.
    ({"model_config": json.dumps({"generator": {"mapping_layers": 10**5}})}, "GeneratorConfig.mapping_layers"),
    ({"model_config": json.dumps({"generator": {"z_dim": 10**12}})}, "GeneratorConfig.z_dim"),
    ({"model_config": json.dumps({"generator": {"channel_base": 16384.0}})}, "channel_base must be an integer"),
    ({"model_config": json.dumps({"generator": {"motion_kernel_size": True}})}, "motion_kernel_size must be an int"),
    ({"model_config": json.dumps({"dataset_fps": 1e12})}, "ModelConfig.dataset_fps"),
    ({"model_config": json.dumps({"dataset_fps": "25"})}, "ModelConfig.dataset_fps"),
    ({"model_config": json.dumps({"generator": {"max_period_len": float("inf")}})}, "max_period_len"),
    ({"model_config": "[" * 100_000 + "]" * 100_000}, "nests too deeply"),
])
def test_bad_metadata(saved, tmp_path, change, message):
    path, _ = saved
    meta = dict(read_metadata(path), **change)
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=message) as info:
        stylegan_v.load(_rewrite(path, tmp_path / "meta.safetensors", metadata=meta))
    assert str(info.value).startswith("meta.safetensors"), info.value
    assert time.perf_counter() - start < 5


def test_config_that_does_not_match_the_weights(saved, tmp_path):
    path, _ = saved
    meta = read_metadata(path)
    cfg = json.loads(meta["model_config"])
    cfg["generator"]["w_dim"] = 32
    meta["model_config"] = json.dumps(cfg)
    with pytest.raises(CheckpointError, match="has shape"):
        stylegan_v.load(_rewrite(path, tmp_path / "cfg.safetensors", metadata=meta))


def test_foreign_safetensors_without_metadata(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match="not a StyleGAN-V checkpoint"):
        stylegan_v.load(path)


def test_save_is_atomic(tmp_path, tiny_generator, monkeypatch):
    """A failed write leaves the previous file intact and no temp files behind."""
    path = tmp_path / "g.safetensors"
    stylegan_v.save(tiny_generator, path)
    before = path.read_bytes()
    import safetensors.torch as st

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(st, "save_file", boom)
    with pytest.raises(OSError, match="No space"):
        stylegan_v.save(tiny_generator, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["g.safetensors"]


def test_snapshot_errors_are_checkpoint_errors(tmp_path):
    bad = tmp_path / "not_a_snapshot.pkl"
    import pickle

    bad.write_bytes(pickle.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="not_a_snapshot.pkl"):
        stylegan_v.load(bad)


class _CountingSha256:
    """hashlib.sha256 that records how many bytes pass through it."""

    hashed: list[int] = []

    def __init__(self, data: bytes = b""):
        self._digest = _REAL_SHA256(data)
        self.hashed.append(len(data))

    def update(self, data: bytes) -> None:
        self.hashed.append(len(data))
        self._digest.update(data)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


_REAL_SHA256 = hashlib.sha256


@pytest.mark.parametrize("cache_writable", [True, False])
def test_converting_a_pickle_hashes_it_once(official_pkl, monkeypatch, tmp_path, cache_writable):
    digest = _REAL_SHA256(official_pkl.read_bytes()).hexdigest()
    monkeypatch.setenv("STYLEGAN_V_CACHE", str(tmp_path / "cache"))
    if not cache_writable:  # the fallback converts to a temp file and must not hash again either
        (tmp_path / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setattr(_CountingSha256, "hashed", [])
    monkeypatch.setattr(hashlib, "sha256", _CountingSha256)
    converted = resolve_checkpoint(official_pkl)
    assert sum(_CountingSha256.hashed) == official_pkl.stat().st_size
    assert json.loads(read_metadata(converted)["provenance"])["sha256"] == digest
    assert (converted.parent == cache_dir()) == cache_writable
    if cache_writable:
        assert converted.name == f"{digest}-default.safetensors"


def test_a_callers_digest_is_used_and_checked(official_pkl, monkeypatch, tmp_path):
    digest = _REAL_SHA256(official_pkl.read_bytes()).hexdigest()
    monkeypatch.setenv("STYLEGAN_V_CACHE", str(tmp_path / "cache"))  # convert, do not find it cached
    monkeypatch.setattr(_CountingSha256, "hashed", [])
    monkeypatch.setattr(hashlib, "sha256", _CountingSha256)
    G = stylegan_v.load(official_pkl, sha256=digest)
    assert _CountingSha256.hashed == []
    assert json.loads(G.checkpoint_metadata["provenance"])["sha256"] == digest
    for bad in ("../../evil", digest.upper(), digest[:-1], 42):
        with pytest.raises(ValueError, match="sha256 must be 64 lowercase hex digits"):
            resolve_checkpoint(official_pkl, sha256=bad)


def test_mp4_keeps_arbitrary_metadata(tmp_path):
    import av
    import numpy as np

    from stylegan_v.video import write_mp4

    path = tmp_path / "m.mp4"
    write_mp4(path, [np.zeros((2, 8, 8, 3), np.uint8)], fps=10, metadata={"workflow": '{"nodes": []}'})
    with av.open(str(path)) as container:
        assert container.metadata.get("workflow") == '{"nodes": []}'
