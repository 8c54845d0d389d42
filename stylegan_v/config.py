"""Frozen model configurations and the presets of the original models.

A config fully determines the network's parameter shapes; checkpoints store it
as JSON so that loading can validate every tensor before touching the model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Bound:
    low: float
    high: float
    integer: bool = True


# The range of every config field, by name (G and D share a name's meaning). Configs come from files
# (safetensors metadata, recovered .pkl configs), so each field is checked before anything is built:
# the network's size, the buffers computed from the config and the renderer's work follow from these.
# The bounds are generous: the official models use at most 1024 px, 512 wide, 77 classes, 30 fps.
LIMITS = MappingProxyType({
    "resolution": Bound(4, 2048),
    "z_dim": Bound(1, 4096), "w_dim": Bound(1, 4096), "motion_z_dim": Bound(1, 4096),
    "motion_code_dim": Bound(1, 4096), "time_enc_dim": Bound(1, 4096), "time_embed_dim": Bound(1, 4096),
    "c_dim": Bound(0, 100_000),
    "img_channels": Bound(1, 16),
    "mapping_layers": Bound(1, 32),
    "channel_base": Bound(1, 1 << 20), "channel_max": Bound(1, 8192),
    "num_fp16_res": Bound(0, 16),
    "motion_kernel_size": Bound(1, 63),
    "motion_z_distance": Bound(1, 1 << 16),
    "max_num_frames": Bound(1, 1 << 20),
    "num_frames": Bound(1, 64), "concat_res": Bound(4, 2048), "num_frames_div_factor": Bound(1, 64),
    "mbstd_group_size": Bound(1, 1024), "mbstd_num_channels": Bound(0, 64),
    "conv_clamp": Bound(1e-3, 1e6, integer=False),  # or None (no clamping)
    "min_period_len": Bound(1e-3, 1 << 20, integer=False), "max_period_len": Bound(1e-3, 1 << 20, integer=False),
    "dataset_fps": Bound(1e-3, 1000.0, integer=False),
})
_MAX_NAME_LENGTH = 256


def check_limits(config) -> None:
    """Raise ValueError naming the first field of a config dataclass outside `LIMITS` (or of the wrong type)."""
    for f in dataclasses.fields(config):
        bound, value = LIMITS.get(f.name), getattr(config, f.name)
        if bound is None or (value is None and f.name == "conv_clamp"):
            continue
        if bound.integer:
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        else:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        if not (ok and bound.low <= value <= bound.high):
            kind = "an integer" if bound.integer else "a number"
            raise ValueError(f"{type(config).__name__}.{f.name} must be {kind} in [{bound.low:g}, {bound.high:g}], "
                             f"got {value!r}")


@dataclass(frozen=True)
class GeneratorConfig:
    resolution: int = 256
    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 0
    img_channels: int = 3
    mapping_layers: int = 2
    channel_base: int = 16384
    channel_max: int = 512
    num_fp16_res: int = 4
    conv_clamp: float | None = 256.0
    # Motion path: noise -> two kernel-11 Conv1d layers -> codes every
    # `motion_z_distance` dataset frames -> aligned Fourier time encoding.
    motion_z_dim: int = 512
    motion_code_dim: int = 512  # output width of the Conv1d motion generator
    motion_kernel_size: int = 11
    time_enc_dim: int = 256  # number of frequencies; motion vector has 2x this
    motion_z_distance: int = 16
    min_period_len: float = 16.0
    max_period_len: float = 1024.0
    max_num_frames: int = 1024

    def __post_init__(self) -> None:
        _check_resolution(self.resolution)
        check_limits(self)
        if not 0 < self.min_period_len <= self.max_period_len:
            raise ValueError("GeneratorConfig needs 0 < min_period_len <= max_period_len")

    @property
    def motion_v_dim(self) -> int:
        return 2 * self.time_enc_dim

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(2, int(math.log2(self.resolution)) + 1)]

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    @property
    def fp16_resolution(self) -> int:
        """Lowest resolution whose block runs in reduced precision (when enabled)."""
        return max(2 ** (int(math.log2(self.resolution)) + 1 - self.num_fp16_res), 8)

    @property
    def num_ws(self) -> int:
        # b4 has one conv, every later block two; plus the final ToRGB.
        return 1 + 2 * (len(self.block_resolutions) - 1) + 1


@dataclass(frozen=True)
class DiscriminatorConfig:
    resolution: int = 256
    c_dim: int = 0
    img_channels: int = 3
    channel_base: int = 16384
    channel_max: int = 512
    num_fp16_res: int = 4
    conv_clamp: float | None = 256.0
    num_frames: int = 3  # frames per clip seen by D (F_D)
    concat_res: int = 16  # resolution at which the frames' features are concatenated
    num_frames_div_factor: int = 2
    max_num_frames: int = 1024
    mbstd_group_size: int = 4
    mbstd_num_channels: int = 1
    mapping_layers: int = 2
    time_embed_dim: int = 256
    sampling_type: str = "random"  # "random" uses all consecutive gaps, "uniform" one

    def __post_init__(self) -> None:
        _check_resolution(self.resolution)
        check_limits(self)
        if self.concat_res not in self.block_resolutions:
            raise ValueError(f"DiscriminatorConfig.concat_res={self.concat_res} is not a block resolution")
        if self.sampling_type not in ("random", "uniform"):
            raise ValueError(f"DiscriminatorConfig.sampling_type must be 'random' or 'uniform', got {self.sampling_type!r}")

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(int(math.log2(self.resolution)), 2, -1)]

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    @property
    def fp16_resolution(self) -> int:
        return max(2 ** (int(math.log2(self.resolution)) + 1 - self.num_fp16_res), 8)

    @property
    def num_time_diffs(self) -> int:
        if self.num_frames <= 1:
            return 0
        return self.num_frames - 1 if self.sampling_type == "random" else 1

    @property
    def num_fourier_coefs(self) -> int:
        return num_fourier_coefs(self.max_num_frames)

    @property
    def time_cond_dim(self) -> int:
        return self.num_time_diffs * (self.time_embed_dim + 2 * self.num_fourier_coefs)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild G and D, plus how model time maps to seconds."""

    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    dataset_fps: float = 25.0
    name: str = "custom"

    def __post_init__(self) -> None:
        if not isinstance(self.generator, GeneratorConfig) or not isinstance(self.discriminator, DiscriminatorConfig):
            raise ValueError("ModelConfig needs a GeneratorConfig and a DiscriminatorConfig")
        check_limits(self)
        if not isinstance(self.name, str) or len(self.name) > _MAX_NAME_LENGTH:
            raise ValueError(f"ModelConfig.name must be a string of at most {_MAX_NAME_LENGTH} characters")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        g = _build(GeneratorConfig, data.pop("generator", {}), "generator")
        d = _build(DiscriminatorConfig, data.pop("discriminator", {}), "discriminator")
        return _build(cls, dict(data, generator=g, discriminator=d), "model")

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"model config is not valid JSON: {e}") from None
        except RecursionError:  # a config is two levels deep; a hostile one can nest until the parser gives up
            raise ValueError("model config JSON nests too deeply") from None
        if not isinstance(data, dict):
            raise ValueError("model config JSON must be an object")
        return cls.from_dict(data)


def num_fourier_coefs(max_num_frames: int) -> int:
    """Frequencies of D's time-gap encoder (`discriminator.fourier_coefs`): one per octave of the longest gap."""
    return math.ceil(math.log2(max_num_frames))


def _build(kind: type, data: dict[str, Any], what: str):
    if not isinstance(data, dict):
        raise ValueError(f"{what} config must be an object, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{what} config has unknown fields: {', '.join(unknown)}")
    try:
        return kind(**data)
    except TypeError as e:
        raise ValueError(f"{what} config is invalid: {e}") from None


def _check_resolution(res: int) -> None:
    if not isinstance(res, numbers.Integral) or isinstance(res, bool) or res < 4 or res & (res - 1):
        raise ValueError(f"resolution must be a power of two >= 4, got {res!r}")
    if res > 2048:
        raise ValueError(f"resolution {res} is larger than 2048, the largest this implementation supports")


def _paired(name: str, fps: float, resolution: int = 256, c_dim: int = 0, **motion: Any) -> ModelConfig:
    base = 16384 if resolution < 512 else 32768
    g = GeneratorConfig(resolution=resolution, c_dim=c_dim, channel_base=base, **motion)
    d = DiscriminatorConfig(resolution=resolution, c_dim=c_dim, channel_base=base)
    return ModelConfig(generator=g, discriminator=d, dataset_fps=fps, name=name)


def _small(name: str, resolution: int, width: int, motion_z_distance: int = 16) -> ModelConfig:
    """Tiny networks for tests, smoke runs and the demo model."""
    g = GeneratorConfig(
        resolution=resolution, z_dim=width, w_dim=width, channel_base=width * resolution,
        channel_max=width, motion_z_dim=width, motion_code_dim=width, time_enc_dim=width // 2,
        motion_z_distance=motion_z_distance, min_period_len=float(motion_z_distance),
    )
    d = DiscriminatorConfig(resolution=resolution, channel_base=width * resolution, channel_max=width,
                            concat_res=min(16, resolution // 2))
    return ModelConfig(generator=g, discriminator=d, dataset_fps=25.0, name=name)


PRESETS: dict[str, ModelConfig] = {
    # The original paper's models: FaceForensics, SkyTimelapse, UCF101, RainbowJelly (256), MEAD (1024).
    "ffs256": _paired("ffs256", fps=30.0),
    "sky256": _paired("sky256", fps=25.0, motion_z_distance=256, min_period_len=256.0),
    "ucf101_256": _paired("ucf101_256", fps=25.0),
    "rainbow_jelly256": _paired("rainbow_jelly256", fps=30.0),
    "mead1024": _paired("mead1024", fps=30.0, resolution=1024, c_dim=77),
    # Small presets for tests, CPU smoke runs and demo models.
    "tiny32": _small("tiny32", resolution=32, width=64),
    "small64": _small("small64", resolution=64, width=128),
    "small128": _small("small128", resolution=128, width=256),
}


def preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}") from None
