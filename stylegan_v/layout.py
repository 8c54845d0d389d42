"""What a network's state dict holds for a config, taken from the network itself.

The modules are the only description of the architecture. Keys, their order and
their shapes come from building the network on the meta device (no memory, no
random numbers drawn). The buffers that are pure functions of the config get
their values from the same functions the modules call to create them. Both
loaders (our safetensors files and the original-snapshot importer) check what a
file holds against this.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelConfig
from .discriminator import Discriminator, fourier_coefs
from .generator import Generator
from .motion import time_encoder_buffers
from .ops import fir_filter

NET_NAMES = ("G_ema", "G", "D")
# The running mean of W (the truncation centre) is learned state; every other buffer is fixed by the config.
LEARNED_BUFFERS = frozenset({"w_avg"})


def build_network(name: str, config: ModelConfig, device: str | torch.device | None = None) -> nn.Module:
    if name in ("G_ema", "G"):
        net = Generator(config.generator)
    elif name == "D":
        net = Discriminator(config.discriminator)
    else:
        raise ValueError(f"net must be one of {', '.join(NET_NAMES)}; got {name!r}")
    net.model_config = config
    return net if device is None else net.to(device)


@dataclass(frozen=True)
class Layout:
    shapes: dict[str, tuple[int, ...]]  # every state-dict entry, in the network's order
    defined: dict[str, torch.Tensor]  # the buffers whose value the config fixes


def layout(name: str, config: ModelConfig) -> Layout:
    """Keys, shapes and defined buffer values of network `name` ("G_ema", "G" or "D") for `config`."""
    with torch.device("meta"):
        net = build_network(name, config)
    return network_layout(net, config)


def network_layout(net: nn.Module, config: ModelConfig) -> Layout:
    """The layout of `net`, a network built for `config` (on any device; only shapes are read)."""
    shapes = {key: tuple(value.shape) for key, value in net.state_dict().items()}
    buffers = [key for key, _ in net.named_buffers() if key in shapes]  # persistent ones only
    with torch.device("cpu"):  # the reference values are real tensors whatever device the caller defaults to
        defined = {key: _defined_value(key.rsplit(".", 1)[-1], config) for key in buffers
                   if key.rsplit(".", 1)[-1] not in LEARNED_BUFFERS}
    return Layout(shapes=shapes, defined=defined)


def _defined_value(leaf: str, config: ModelConfig) -> torch.Tensor:
    # Each branch calls the function (with the arguments) the owning module uses in its constructor.
    if leaf == "resample_filter":
        return fir_filter()
    if leaf in ("freqs", "phase_scales"):
        g = config.generator
        freqs, scales = time_encoder_buffers(g.time_enc_dim, g.min_period_len, g.max_period_len)
        return freqs if leaf == "freqs" else scales
    if leaf == "fourier_coefs":
        return fourier_coefs(config.discriminator.max_num_frames)
    # A new buffer must be declared learned or given its definition here, or no file could be checked.
    raise NotImplementedError(f"stylegan_v.layout does not know how the buffer {leaf!r} is defined")


def holds_defined_value(tensor: torch.Tensor, reference: torch.Tensor) -> bool:
    """A stored buffer equals its definition up to float32 rounding (a corrupt file must not change it)."""
    return tensor.shape == reference.shape and torch.allclose(tensor, reference, rtol=1e-5, atol=1e-7)
