"""The model config of an original snapshot: tensor shapes first, then the pickled experiment config.

Shapes fix most fields. What they do not show (the motion code spacing, the frame
count G was built with, the dataset fps, precision settings) comes from the OmegaConf
config pickled alongside the networks, read as inert records: its `${...}`
interpolations are resolved here without OmegaConf, and anything missing,
unresolvable or implausible counts as unrecorded, gets the original's default and
a note.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..config import LIMITS, DiscriminatorConfig, GeneratorConfig, ModelConfig, num_fourier_coefs
from ..errors import SnapshotError
from ..layout import holds_defined_value
from ..motion import time_encoder_buffers
from .modules import init_kwargs, module_state, submodule
from .unpickler import Inert, is_int

# Limits that keep a hostile config from making the resolver loop or expand for ever.
_MAX_CFG_DEPTH = 64
_MAX_CFG_STEPS = 10_000
_MAX_CFG_STRING = 4096
# Config values beyond these are treated as unrecorded (a hostile file must not make the renderer allocate).
_MAX_PLAUSIBLE_FRAMES = LIMITS["max_num_frames"].high
_MAX_PLAUSIBLE_FPS = LIMITS["dataset_fps"].high


# ---------------------------------------------------------------------------------------------------------------
# OmegaConf configs (pickled as inert records; interpolations resolved by hand)
# ---------------------------------------------------------------------------------------------------------------

_DICTCONFIG = "omegaconf.dictconfig.DictConfig"
_LISTCONFIG = "omegaconf.listconfig.ListConfig"
_INTERPOLATION = re.compile(r"\$\{([^${}]*)\}")


class _Unresolved(Exception):
    pass


def _cfg_kind(node: Any) -> str | None:
    return node.global_name if isinstance(node, Inert) and node.global_name.startswith("omegaconf.") else None


def _cfg_state(node: Any) -> dict:
    state = node.state if isinstance(node, Inert) else None
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
        candidate = time_encoder_buffers(time_enc_dim, float(min_period), float(max_period))[0]
        if holds_defined_value(freqs, candidate):
            recorded = (float(min_period), float(max_period))
        else:
            notes.append(f"the pickled config's periods {min_period}..{max_period} do not match the freqs buffer; "
                         f"periods taken from the weights")
    if recorded is None:
        f64 = freqs.double()
        recorded = (_snap_period(2 * math.pi / f64[0, -1].item()), _snap_period(2 * math.pi / f64[0, 0].item()))
    min_period, max_period = recorded

    file_delta = cfgs.number("motion.motion_z_distance", "model.generator.motion.motion_z_distance",
                             low=1, high=LIMITS["motion_z_distance"].high)
    file_delta = int(file_delta) if file_delta is not None and float(file_delta).is_integer() else None
    default_delta = int(min_period) if float(min_period).is_integer() else 16
    delta = _pick("motion_z_distance", motion_z_distance, file_delta, default_delta, notes)

    # G's sampling_dict is the resolved copy of the same settings, taken when the network was built.
    sampling = module_state(root, net).get("sampling_dict")
    sampling = sampling if isinstance(sampling, Mapping) else {}
    frames = cfgs.number("sampling.max_num_frames", "dataset.max_num_frames", low=1, high=_MAX_PLAUSIBLE_FRAMES)
    frames = int(frames) if frames is not None else None
    built_with = sampling.get("max_num_frames")
    built_with = int(built_with) if is_int(built_with) and 1 <= built_with <= _MAX_PLAUSIBLE_FRAMES else None
    if frames is not None and built_with is not None and frames != built_with:
        notes.append(f"the pickled config says max_num_frames={frames}, G was built with {built_with}")
    if frames is None:
        frames = built_with
    if frames is None and d_state is not None and "time_encoder.const_embed.weight" in d_state:
        frames = d_state["time_encoder.const_embed.weight"].shape[0]
    max_frames = _pick("max_num_frames", max_num_frames, frames, 1024, notes)

    synthesis_kwargs = init_kwargs(root).get("synthesis_kwargs")
    synthesis_kwargs = synthesis_kwargs if isinstance(synthesis_kwargs, Mapping) else {}
    fp16 = synthesis_kwargs.get("num_fp16_res")
    fp16 = int(fp16) if is_int(fp16) and fp16 >= 0 else None
    fp16 = _pick("num_fp16_res", num_fp16_res, fp16, 4, notes)
    clamp = _pick_clamp(conv_clamp, synthesis_kwargs, notes, "generator")

    z_dim_attr = module_state(root, net).get("z_dim")
    if is_int(z_dim_attr) and z_dim_attr != z_dim:
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
    frames_cfg = cfgs.number("sampling.num_frames_per_video", low=1, high=LIMITS["num_frames"].high)
    sampling_cfg = cfgs.get("sampling.type")
    concat_cfg = cfgs.number("concat_res", "model.discriminator.concat_res", low=4, high=g.resolution)
    div_cfg = cfgs.number("num_frames_div_factor", "model.discriminator.num_frames_div_factor", low=1,
                          high=LIMITS["num_frames_div_factor"].high)
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
        if max_frames < 1:
            raise SnapshotError(f"{source}: D.time_encoder.const_embed.weight has no rows; unknown layout")
    c_dim = g.c_dim
    cond_dim = _shape(state, "mapping.embed.weight", net, source)[1] if "mapping.embed.weight" in state else c_dim
    per_diff = time_embed_dim + 2 * num_fourier_coefs(max_frames)
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
    mbstd_node = submodule(root, "b4.mbstd", net)
    mbstd_state = module_state(mbstd_node, "D.b4.mbstd") if mbstd_node is not None else {}
    group = mbstd_state.get("group_size")
    if not is_int(group):
        epilogue = init_kwargs(root).get("epilogue_kwargs")
        group = epilogue.get("mbstd_group_size") if isinstance(epilogue, Mapping) else None
    if not is_int(group):
        group = cfgs.number("mbstd_group_size", "model.discriminator.mbstd_group_size", low=1,
                            high=LIMITS["mbstd_group_size"].high)
    if not is_int(group):
        group = 4
        notes.append("D minibatch-std group size is not recorded in the file; using 4")
    if mbstd_channels <= 0:
        raise SnapshotError(f"{source}: D.b4 has no minibatch-std channel; unknown layout")

    kwargs = init_kwargs(root)
    fp16 = kwargs.get("num_fp16_res")
    fp16 = int(fp16) if is_int(fp16) and fp16 >= 0 else None
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


def recover_config(top: Mapping, roots: Mapping[str, Any], states: Mapping[str, dict[str, torch.Tensor]],
                   source: str, default_name: str, *, motion_z_distance, max_num_frames, dataset_fps, num_fp16_res,
                   conv_clamp) -> tuple[ModelConfig, list[str]]:
    """The ModelConfig of a snapshot (`roots`: its network records, `states`: their state dicts) and the notes
    on every value that was defaulted, overridden or found inconsistent; keyword values override the file."""
    g_root, d_root = roots["G_ema"], roots.get("D")
    g_state = module_state(g_root, "G_ema")
    dataset_kwargs = top.get("training_set_kwargs")
    dataset_cfg = dataset_kwargs.get("cfg") if isinstance(dataset_kwargs, Mapping) else None
    d_cfg = module_state(d_root, "D").get("cfg") if d_root is not None else None
    init_cfg = init_kwargs(g_root).get("cfg")
    g_cfgs = _ConfigSource(g_state.get("cfg"), init_cfg, d_cfg, dataset_cfg)
    d_cfgs = _ConfigSource(d_cfg, g_state.get("cfg"), dataset_cfg)

    notes: list[str] = []
    g = _recover_generator(g_root, states["G_ema"], g_cfgs, notes, source, motion_z_distance=motion_z_distance,
                           max_num_frames=max_num_frames, num_fp16_res=num_fp16_res, conv_clamp=conv_clamp,
                           d_state=states.get("D"))
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
                         name=name if isinstance(name, str) and name else default_name)
    return config, notes
