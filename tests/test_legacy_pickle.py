"""The safe importer for original StyleGAN-V snapshots: reads the official fixture, refuses hostile files.

Hostile pickles are written here with stand-in classes that pretend to live in the original modules
(`src.torch_utils.persistence`, `omegaconf.*`) through temporary `sys.modules` entries, so their byte
streams reference exactly the globals a real snapshot does.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import subprocess
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan_v.config import DiscriminatorConfig, GeneratorConfig
from stylegan_v.legacy import LegacyLayoutError, OriginalSnapshot, SnapshotError, read_snapshot
from stylegan_v.layout import layout

FIXTURE = Path(__file__).parent / "fixtures" / "official_tiny"
SNAPSHOT = FIXTURE / "network-snapshot.pkl"
OFFICIAL = json.loads((FIXTURE / "config.json").read_text())
TE = "synthesis.motion_encoder.time_encoder."


@pytest.fixture(scope="module")
def snap() -> OriginalSnapshot:
    return read_snapshot(SNAPSHOT)


# ------------------------------------------------------------------ helpers that write original-format pickles

class _Persistent:
    """Pickles as `src.torch_utils.persistence._reconstruct_persistent_obj(meta)`, like the original classes."""

    def __init__(self, class_name: str, state: dict, module_src: str = "# stand-in\n"):
        self.class_name, self.state, self.module_src = class_name, state, module_src

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src=self.module_src, class_name=self.class_name,
                    state=self.state)
        return sys.modules["src.torch_utils.persistence"]._reconstruct_persistent_obj, (meta,)


class _CfgNode:
    """Pickles as an OmegaConf node (REDUCE of the class, then BUILD with its state), like OmegaConf does."""

    def __init__(self, kind: str, state: dict):
        self.kind, self.state = kind, state

    def __reduce__(self):
        return getattr(sys.modules[self.kind.rsplit(".", 1)[0]], self.kind.rsplit(".", 1)[1]), (), self.state


@pytest.fixture
def original_modules(monkeypatch):
    """Temporarily make the original globals importable so that pickle can reference them by name."""
    def reconstruct(meta):  # pragma: no cover - never called, only referenced by name
        raise AssertionError("the stand-in reconstructor must not run")

    modules = {}
    for name in ("src", "src.torch_utils", "src.torch_utils.persistence", "omegaconf", "omegaconf.dictconfig",
                 "omegaconf.nodes"):
        modules[name] = types.ModuleType(name)
        monkeypatch.setitem(sys.modules, name, modules[name])
    reconstruct.__module__, reconstruct.__qualname__ = "src.torch_utils.persistence", "_reconstruct_persistent_obj"
    modules["src.torch_utils.persistence"]._reconstruct_persistent_obj = reconstruct
    for qualname in ("omegaconf.dictconfig.DictConfig", "omegaconf.nodes.AnyNode"):
        module, name = qualname.rsplit(".", 1)
        cls = type(name, (), {"__module__": module, "__qualname__": name})
        setattr(modules[module], name, cls)
    return modules


def _module_state() -> dict:
    return {"training": False, "_parameters": OrderedDict(), "_buffers": OrderedDict(),
            "_non_persistent_buffers_set": set(), "_modules": OrderedDict()}


_BUFFER_NAMES = {"resample_filter", "freqs", "phase_scales", "w_avg", "fourier_coefs"}


def _tree(flat: dict[str, torch.Tensor], root_class: str, module_src: str = "# stand-in\n", **attrs) -> _Persistent:
    """Nested persistent modules whose walk yields `flat` back in the same order."""
    root = _Persistent(root_class, dict(_module_state(), **attrs), module_src)
    for key, tensor in flat.items():
        *path, leaf = key.split(".")
        node = root
        for name in path:
            children = node.state["_modules"]
            if name not in children:
                children[name] = _Persistent("Module", _module_state(), module_src)
            node = children[name]
        kind = "_buffers" if leaf in _BUFFER_NAMES else "_parameters"
        node.state[kind][leaf] = tensor.clone()
    return root


def _cfg(tree: dict, parent=None, key=None) -> _CfgNode:
    """An OmegaConf-2.0-like DictConfig tree (values in AnyNodes, every node linked to its parent)."""
    node = _CfgNode("omegaconf.dictconfig.DictConfig", {"_metadata": None, "_parent": parent, "_content": {}})
    for name, value in tree.items():
        if isinstance(value, dict):
            node.state["_content"][name] = _cfg(value, node, name)
        else:
            node.state["_content"][name] = _CfgNode("omegaconf.nodes.AnyNode",
                                                    {"_val": value, "_metadata": None, "_parent": node})
    return node


def _write(path: Path, obj) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


class _Call:
    """An object whose unpickling calls `func(*args)` (what a hostile pickle does)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _expect_refusal(path: Path, *fragments: str, error=SnapshotError) -> str:
    with pytest.raises(error) as info:
        read_snapshot(path)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# ------------------------------------------------------------------ the official fixture

def test_g_ema_keys_and_shapes_follow_the_official_order(snap):
    got = [(k, list(v.shape)) for k, v in snap.state_dicts["G_ema"].items()]
    assert got == list(OFFICIAL["g_ema_state_dict"].items())
    assert [(k, list(v.shape)) for k, v in snap.state_dicts["G"].items()] == got


def test_discriminator_is_read_completely(snap):
    d = snap.state_dicts["D"]
    assert len(d) == OFFICIAL["d_keys"]
    assert list(d)[:2] == ["time_encoder.const_embed.weight", "time_encoder.time_encoder.fourier_coefs"]
    # Frame concatenation at 16x16: b32 emits 64 // 2 channels per frame, b16 takes 3 frames of them.
    assert d["b32.conv1.weight"].shape[0] == 32 and d["b16.conv0.weight"].shape[1] == 96
    # Time conditioning: 2 differences x (256 embedding + 2 x 10 Fourier features).
    assert d["mapping.embed.weight"].shape[1] == 2 * (256 + 20)


def test_recovered_config_matches_the_fixture_hyper_parameters(snap):
    g, d = snap.config.generator, snap.config.discriminator
    assert g.resolution == d.resolution == OFFICIAL["resolution"]
    for res in g.block_resolutions:
        assert g.channels(res) == min(OFFICIAL["channel_base"] // res, OFFICIAL["channel_max"])
    for res in d.block_resolutions + [4]:
        assert d.channels(res) == min(OFFICIAL["channel_base"] // res, OFFICIAL["channel_max"])
    assert (g.channel_base, g.channel_max) == (2048, 64)
    assert (g.z_dim, g.w_dim, g.c_dim) == (OFFICIAL["z_dim"], OFFICIAL["w_dim"], OFFICIAL["c_dim"])
    assert g.motion_z_dim == OFFICIAL["motion_z_dim"]
    assert g.motion_v_dim == OFFICIAL["motion_v_dim"] and g.time_enc_dim == OFFICIAL["time_enc_dim"]
    assert g.motion_code_dim == 64 and g.motion_kernel_size == 11
    assert g.motion_z_distance == OFFICIAL["motion_z_distance"] == 16
    assert (g.min_period_len, g.max_period_len) == (OFFICIAL["min_period_len"], OFFICIAL["max_period_len"])
    assert g.num_fp16_res == d.num_fp16_res == OFFICIAL["num_fp16_res"]
    assert g.conv_clamp == d.conv_clamp == OFFICIAL["conv_clamp"]
    assert g.mapping_layers == OFFICIAL["mapping_layers"] and d.mapping_layers == 2
    assert g.max_num_frames == d.max_num_frames == OFFICIAL["max_num_frames"]
    assert (d.num_frames, d.concat_res, d.num_frames_div_factor) == (3, 16, 2)
    assert (d.mbstd_group_size, d.mbstd_num_channels, d.time_embed_dim, d.sampling_type) == (4, 1, 256, "random")
    assert snap.config.dataset_fps == 30.0  # FaceForensics
    assert snap.notes == ()  # everything was recorded in the file


def test_snapshot_metadata_and_tensor_form(snap):
    assert snap.source == SNAPSHOT.name
    assert snap.sha256 == hashlib.sha256(SNAPSHOT.read_bytes()).hexdigest()
    assert set(snap.state_dicts) == {"G_ema", "G", "D"}
    for state in snap.state_dicts.values():
        for tensor in state.values():
            assert tensor.dtype == torch.float32 and tensor.is_contiguous() and tensor.device.type == "cpu"
            assert not tensor.requires_grad


def test_deterministic_buffers_hold_the_original_values(snap):
    g = snap.state_dicts["G_ema"]
    ones = torch.tensor([1.0, 3.0, 3.0, 1.0])
    assert torch.equal(g["synthesis.b8.conv0.resample_filter"], torch.outer(ones, ones) / 64)
    # Periods geometric from Pmin=16 to Pmax=1024, slowest first; phase scales Pmax / P.
    assert math.isclose(g[TE + "freqs"][0, 0].item(), 2 * math.pi / 1024, rel_tol=1e-6)
    assert math.isclose(g[TE + "freqs"][0, -1].item(), 0.3926991, rel_tol=1e-6)
    assert math.isclose(g[TE + "phase_scales"][0, -1].item(), 64.0, rel_tol=1e-6)
    coefs = snap.state_dicts["D"]["time_encoder.time_encoder.fourier_coefs"]
    assert torch.allclose(coefs, torch.tensor([[math.pi * 2**k / 1024 for k in range(10)]]))


def test_network_layout_is_the_original_layout(snap):
    # Our networks define the layout both loaders check against; the fixture's list was written by the original code.
    assert [(k, list(s)) for k, s in layout("G_ema", snap.config).shapes.items()] == \
        list(OFFICIAL["g_ema_state_dict"].items())
    d = layout("D", snap.config).shapes
    assert len(d) == OFFICIAL["d_keys"]
    assert [(k, tuple(v.shape)) for k, v in snap.state_dicts["D"].items()] == list(d.items())


def test_keyword_overrides_win_and_are_noted():
    snap = read_snapshot(SNAPSHOT, motion_z_distance=32, max_num_frames=2048, dataset_fps=25, num_fp16_res=0,
                         conv_clamp=128)
    g = snap.config.generator
    assert (g.motion_z_distance, g.max_num_frames, g.num_fp16_res, g.conv_clamp) == (32, 2048, 0, 128.0)
    assert snap.config.dataset_fps == 25.0
    assert snap.config.discriminator.max_num_frames == 1024  # D's embedding table is part of its weights
    notes = " | ".join(snap.notes)
    for fragment in ("motion_z_distance=32", "max_num_frames=2048", "dataset_fps=25"):
        assert fragment in notes, notes


def test_bad_keyword_values_are_rejected():
    with pytest.raises(ValueError, match="motion_z_distance"):
        read_snapshot(SNAPSHOT, motion_z_distance=0)
    with pytest.raises(ValueError, match="dataset_fps"):
        read_snapshot(SNAPSHOT, dataset_fps=float("nan"))


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "network-snapshot.pkl"
    with pytest.raises(FileNotFoundError) as info:
        read_snapshot(missing)
    assert str(missing) in str(info.value)


# ------------------------------------------------------------------ hostile and broken files

def test_reduce_calling_os_system_is_refused(tmp_path):
    sentinel = tmp_path / "pwned"
    path = _write(tmp_path / "evil.pkl", {"G_ema": _Call(os.system, f"touch {sentinel}")})
    _expect_refusal(path, "posix.system" if os.name == "posix" else "system")
    assert not sentinel.exists()
    # Control: the same bytes do run the command under a plain pickle.load, so the test above can fail.
    control = tmp_path / "ctrld"  # same length as "pwned", so the byte stream stays valid
    pickle.loads(path.read_bytes().replace(str(sentinel).encode(), str(control).encode()))
    assert control.exists()


@pytest.mark.parametrize("func", [eval, exec])
def test_builtins_eval_and_exec_are_refused(tmp_path, func):
    sentinel = tmp_path / "pwned"
    path = _write(tmp_path / "evil.pkl", {"G_ema": _Call(func, f"open({str(sentinel)!r}, 'w').close()")})
    _expect_refusal(path, f"builtins.{func.__name__}")
    assert not sentinel.exists()


@pytest.mark.parametrize("make, name", [
    (lambda s: _Call(subprocess.Popen, ["touch", str(s)]), "subprocess.Popen"),
    (lambda s: _Call(getattr, "text", "upper"), "builtins.getattr"),
    (lambda s: _Call(os.system, f"touch {s}"), "system"),
])
def test_unknown_globals_anywhere_in_the_tree_are_refused(tmp_path, original_modules, make, name):
    sentinel = tmp_path / "pwned"
    state = dict(_module_state(), cfg=make(sentinel))  # hidden deep inside a network's state
    path = _write(tmp_path / "evil.pkl", {"G_ema": _Persistent("Generator", state)})
    _expect_refusal(path, name)
    assert not sentinel.exists()


def test_embedded_module_source_is_never_executed(tmp_path, original_modules, snap):
    sentinel = tmp_path / "pwned"
    payload = f"open({str(sentinel)!r}, 'w').close()\nclass Generator: pass\n"
    g_ema = _tree(snap.state_dicts["G_ema"], "Generator", module_src=payload,
                  _init_kwargs={"synthesis_kwargs": {"num_fp16_res": 4, "conv_clamp": 256}})
    path = _write(tmp_path / "network-snapshot.pkl", {"G_ema": g_ema})
    loaded = read_snapshot(path)
    assert not sentinel.exists()
    assert list(loaded.state_dicts) == ["G_ema"]
    for key, tensor in snap.state_dicts["G_ema"].items():
        assert torch.equal(loaded.state_dicts["G_ema"][key], tensor)
    # Without the experiment config the file does not say these; the defaults are the original's and noted.
    assert loaded.config.generator.motion_z_distance == 16 and loaded.config.dataset_fps == 25.0
    notes = " | ".join(loaded.notes)
    assert "motion_z_distance" in notes and "dataset_fps" in notes and "no D" in notes


@pytest.mark.parametrize("cut", [1, 2, 1000, "half", -1])
def test_truncated_file(tmp_path, cut):
    data = SNAPSHOT.read_bytes()
    end = len(data) // 2 if cut == "half" else cut if cut > 0 else len(data) + cut
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[:end])
    _expect_refusal(path, "truncated")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pkl"
    path.write_bytes(b"")
    _expect_refusal(path, "empty file")


def test_dict_without_g_ema(tmp_path):
    path = _write(tmp_path / "plain.pkl", {"G": 1, "stats": {"cur_nimg": 0}})
    _expect_refusal(path, "not a StyleGAN-V snapshot: missing G_ema")


def test_other_top_level_objects(tmp_path):
    _expect_refusal(_write(tmp_path / "list.pkl", [1, 2]), "not a StyleGAN-V snapshot")
    _expect_refusal(_write(tmp_path / "str.pkl", {"G_ema": "x"}), "G_ema is a str")


def test_torch_save_files(tmp_path):
    torch.save({"G_ema": torch.zeros(2)}, tmp_path / "zip.pt")
    _expect_refusal(tmp_path / "zip.pt", "zip archive")
    torch.save({"G_ema": torch.zeros(2)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    _expect_refusal(tmp_path / "legacy.pt", "torch.save")


def test_non_pickle_file(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    _expect_refusal(path, "not a pickle")


def test_legacy_internal_layout_is_named(tmp_path, original_modules, snap):
    flat = {}
    for key, tensor in snap.state_dicts["G_ema"].items():
        if key == TE + "phase_scales":
            continue  # the older encoder has no phase_scales buffer
        flat[key.replace("aligners_predictor", "amplitudes_predictor")] = tensor
    path = _write(tmp_path / "old.pkl", {"G_ema": _tree(flat, "Generator")})
    _expect_refusal(path, "older internal layout", "amplitudes_predictor", "no aligners_predictor",
                    error=LegacyLayoutError)


def test_unknown_layout_names_the_difference(tmp_path, original_modules, snap):
    flat = {k: v for k, v in snap.state_dicts["G_ema"].items() if k != "synthesis.b16.conv1.affine.bias"}
    path = _write(tmp_path / "odd.pkl", {"G_ema": _tree(flat, "Generator")})
    _expect_refusal(path, "layout", "synthesis.b16.conv1.affine.bias")


def test_corrupt_deterministic_buffer(tmp_path, original_modules, snap):
    flat = dict(snap.state_dicts["G_ema"])
    flat["synthesis.b8.conv0.resample_filter"] = flat["synthesis.b8.conv0.resample_filter"] * 1.5
    path = _write(tmp_path / "bad.pkl", {"G_ema": _tree(flat, "Generator")})
    _expect_refusal(path, "synthesis.b8.conv0.resample_filter")


def test_module_tree_cycle(tmp_path, original_modules):
    loop = torch.nn.Sequential()
    loop._modules["again"] = loop  # pickled by reference to itself
    g_ema = _Persistent("Generator", dict(_module_state(), _modules=OrderedDict(synthesis=loop)))
    path = _write(tmp_path / "loop.pkl", {"G_ema": g_ema})
    _expect_refusal(path, "cycle")


def _g_ema_with_config(snap, generator_cfg: dict, root_extra: dict) -> _Persistent:
    root = _cfg({"model": {"generator": generator_cfg}, **root_extra})
    gen = root.state["_content"]["model"].state["_content"]["generator"]
    return _tree(snap.state_dicts["G_ema"], "Generator", cfg=gen)


@pytest.mark.parametrize("motion, time_enc, extra, expected", [
    # The public code's HEAD: Delta follows min_period_len.
    ({"motion_z_distance": "${model.generator.time_enc.min_period_len}"}, {"min_period_len": 16}, {}, 16),
    # The public code before its commit bfaad07: min_period_len follows motion_z_distance.
    ({"motion_z_distance": 16}, {"min_period_len": "${model.generator.motion.motion_z_distance}"}, {}, 16),
    # Chains, OmegaConf >= 2.1 relative references, and a Delta that differs from min_period_len.
    ({"motion_z_distance": "${sampling.delta}"}, {"min_period_len": 16}, {"sampling": {"delta": "${.x}", "x": 48}},
     48),
    ({"motion_z_distance": "${..time_enc.min_period_len}"}, {"min_period_len": 16}, {}, 16),
])
def test_config_interpolations_are_resolved(tmp_path, original_modules, snap, motion, time_enc, extra, expected):
    generator_cfg = {"motion": motion, "time_enc": dict(time_enc, max_period_len=1024),
                     "sampling": "${sampling}"}
    extra = {"sampling": {"max_num_frames": "${dataset.max_num_frames}", **extra.get("sampling", {})},
             "dataset": {"max_num_frames": 512, "fps": 24}}
    path = _write(tmp_path / "cfg.pkl", {"G_ema": _g_ema_with_config(snap, generator_cfg, extra)})
    loaded = read_snapshot(path)
    g = loaded.config.generator
    assert (g.motion_z_distance, g.min_period_len, g.max_num_frames) == (expected, 16.0, 512)
    assert loaded.config.dataset_fps == 24.0
    assert not any("motion_z_distance" in n or "max_num_frames" in n for n in loaded.notes), loaded.notes


def test_unresolvable_config_values_fall_back_to_noted_defaults(tmp_path, original_modules, snap):
    generator_cfg = {"motion": {"motion_z_distance": "${oc.env:DELTA}"}, "sampling": "${missing.group}",
                     "time_enc": {"min_period_len": "${a}", "max_period_len": 1024}}
    path = _write(tmp_path / "cfg.pkl", {"G_ema": _g_ema_with_config(snap, generator_cfg, {"a": "${b}", "b": "${a}"})})
    loaded = read_snapshot(path)
    g = loaded.config.generator
    assert (g.motion_z_distance, g.min_period_len, g.max_num_frames) == (16, 16.0, 1024)
    notes = " | ".join(loaded.notes)
    assert "motion_z_distance" in notes and "max_num_frames" in notes


def test_interpolations_that_fan_out_do_not_hang(tmp_path, original_modules, snap):
    # a0 -> "${a1}${a1}" -> ... would expand 2**40 times; the importer gives up and uses the default.
    chain = {f"a{i}": f"${{a{i + 1}}}${{a{i + 1}}}" for i in range(40)}
    chain["a40"] = "1"
    generator_cfg = {"motion": {"motion_z_distance": "${a0}"}}
    path = _write(tmp_path / "cfg.pkl", {"G_ema": _g_ema_with_config(snap, generator_cfg, chain)})
    loaded = read_snapshot(path)
    assert loaded.config.generator.motion_z_distance == 16
    assert any("motion_z_distance" in n for n in loaded.notes)


def test_numpy_object_arrays_are_refused(tmp_path):
    path = _write(tmp_path / "np.pkl", {"G_ema": None, "vis": np.array([{"a": 1}], dtype=object)})
    _expect_refusal(path, "numpy")


def test_shared_storage_cannot_multiply_a_small_file(tmp_path, original_modules):
    big = torch.zeros(1 << 16)  # 256 KiB, referenced from many modules
    modules = OrderedDict((f"m{i}", _Persistent("Module", dict(_module_state(), _parameters=OrderedDict(w=big))))
                          for i in range(200))
    g_ema = _Persistent("Generator", dict(_module_state(), _modules=modules))
    path = _write(tmp_path / "views.pkl", {"G_ema": g_ema})
    _expect_refusal(path, "far more than the file holds")


def test_tensor_views_larger_than_their_storage_are_refused(tmp_path):
    stretched = torch.zeros(1).as_strided((1 << 20,), (0,))  # 4 MiB when copied, 4 bytes stored
    path = _write(tmp_path / "stride.pkl", {"G_ema": stretched})
    _expect_refusal(path, "more elements than its storage")


_VARIANTS = {
    # Conditional, 2 frames per clip, no channel split at the concatenation, widths that vary with resolution.
    "conditional": (dict(c_dim=7, channel_base=512, channel_max=64, z_dim=32, w_dim=48, motion_z_dim=24,
                         motion_code_dim=40, time_enc_dim=8, min_period_len=32.0, max_period_len=512.0,
                         mapping_layers=3),
                    dict(c_dim=7, channel_base=512, channel_max=64, num_frames=2, concat_res=8,
                         num_frames_div_factor=1, max_num_frames=512, time_embed_dim=16, mapping_layers=1)),
    # Four frames, one time difference ("uniform" sampling), concatenation at 16 with a 4x split.
    "uniform": (dict(resolution=32, channel_base=1024, channel_max=32, z_dim=16, w_dim=16, motion_z_dim=16,
                     motion_code_dim=16, time_enc_dim=4, mapping_layers=1),
                dict(resolution=32, channel_base=1024, channel_max=32, num_frames=4, concat_res=16,
                     num_frames_div_factor=4, max_num_frames=100, time_embed_dim=8, sampling_type="uniform")),
}


@pytest.mark.parametrize("variant", sorted(_VARIANTS))
def test_config_recovery_round_trips_other_variants(tmp_path, original_modules, variant):
    from stylegan_v.discriminator import Discriminator
    from stylegan_v.generator import Generator

    g_fields, d_fields = _VARIANTS[variant]
    g_cfg = GeneratorConfig(**{"resolution": 16, **g_fields})
    d_cfg = DiscriminatorConfig(**{"resolution": g_cfg.resolution, **d_fields})
    torch.manual_seed(0)
    g_state = Generator(g_cfg).state_dict()
    d_state = Discriminator(d_cfg).state_dict()
    g_kwargs = {"synthesis_kwargs": {"num_fp16_res": g_cfg.num_fp16_res, "conv_clamp": g_cfg.conv_clamp}}
    d_kwargs = {"num_fp16_res": d_cfg.num_fp16_res, "conv_clamp": d_cfg.conv_clamp,
                "epilogue_kwargs": {"mbstd_group_size": d_cfg.mbstd_group_size}}
    top = {"G_ema": _tree(g_state, "Generator", _init_kwargs=g_kwargs),
           "D": _tree(d_state, "Discriminator", _init_kwargs=d_kwargs)}
    loaded = read_snapshot(_write(tmp_path / "variant.pkl", top), motion_z_distance=g_cfg.motion_z_distance,
                           max_num_frames=g_cfg.max_num_frames, dataset_fps=25)
    assert loaded.config.generator == g_cfg
    assert loaded.config.discriminator == d_cfg


def test_copyreg_extension_codes_cannot_bypass_the_allow_list(tmp_path, monkeypatch):
    import copyreg

    # Some library in the process registered an extension code and another unpickler already resolved it.
    monkeypatch.setitem(copyreg._inverted_registry, 240, ("posix", "system"))
    monkeypatch.setitem(copyreg._extension_cache, 240, os.system)
    sentinel = tmp_path / "pwned"
    path = tmp_path / "ext.pkl"
    path.write_bytes(b"\x80\x02\x82\xf0" + pickle.dumps((f"touch {sentinel}",), protocol=2)[2:-1] + b"R.")
    _expect_refusal(path, "extension")
    assert not sentinel.exists()


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")  # snapshots pickle typed storages
def test_pickled_state_cannot_re_point_a_tensor(tmp_path):
    # BUILD on a tensor runs Tensor.__setstate__, whose set_ grows the storage: a 4-float file would yield a
    # 4 MiB tensor of uninitialised memory.
    storage = torch.arange(4, dtype=torch.float32).storage()

    class Stretched:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, (storage, 0, (4,), (1,), False, OrderedDict()),
                    (storage, 0, (1 << 20,), (1,)))

    path = _write(tmp_path / "build.pkl", {"G_ema": Stretched()})
    # Control: a plain unpickler does grow the tensor, so the refusal below is what stops it.
    assert pickle.loads(path.read_bytes())["G_ema"].shape == (1 << 20,)
    _expect_refusal(path, "re-pointed a tensor")
