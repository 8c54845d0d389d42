"""StyleGAN-V generator: StyleGAN2 skip synthesis fed with [learned const ‖ v(t)].

Module and attribute names follow the original so that state-dict keys match
1:1 (stylegan_v.layout derives the expected keys from these modules).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import GeneratorConfig
from .layers import MappingNetwork, SynthesisLayer, ToRGBLayer
from .motion import MotionEncoder
from .ops import fir_filter, memory_layout, upsample2d

PRECISIONS = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
MOTION_PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


def inference_memory_format(device: torch.device | str) -> torch.memory_format:
    """The activation layout a generator renders fastest in on `device`.

    On CPU, oneDNN's convolutions run 2-10x faster on channels-last pairs than on NCHW ones, and the
    upsampling's transposed convolution otherwise copies its output through a slow transpose:
    measured same-run on a 2-core x86 CPU, channels-last renders 256x256 frames 1.25x faster
    (shared w, one video). CUDA keeps NCHW until a GPU benchmark has measured both.
    """
    return torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format


def parse_precision(precision: str | torch.dtype) -> torch.dtype:
    if isinstance(precision, torch.dtype):
        if precision not in PRECISIONS.values():
            raise ValueError(f"unsupported precision {precision}")
        return precision
    aliases = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "half": "float16"}
    name = aliases.get(precision, precision)
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of float32, float16, bfloat16; got {precision!r}")
    return PRECISIONS[name]


class TemporalInput(nn.Module):
    """The 4x4 learned constant with v(t) broadcast spatially and concatenated after it."""

    def __init__(self, channels: int, motion_v_dim: int):
        super().__init__()
        self.const = nn.Parameter(torch.randn([1, channels, 4, 4]))
        self.motion_v_dim = motion_v_dim

    def forward(self, motion_v: torch.Tensor) -> torch.Tensor:
        n = motion_v.shape[0]
        const = self.const.expand(n, -1, -1, -1)
        v = motion_v.reshape(n, -1, 1, 1).expand(-1, -1, *const.shape[2:])
        x = torch.cat([const, v.to(const.dtype)], dim=1)
        # A network moved to channels-last (module.to(memory_format=...)) computes in it from here on.
        return x.contiguous(memory_format=memory_layout(self.const))


class GenInput(nn.Module):
    """Wrapper kept only so that the parameter is named `b4.input.input.const` as in the original."""

    def __init__(self, channels: int, motion_v_dim: int):
        super().__init__()
        self.input = TemporalInput(channels, motion_v_dim)

    def forward(self, motion_v: torch.Tensor) -> torch.Tensor:
        return self.input(motion_v)


class SynthesisBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 conv_clamp: float | None, reduced_precision: bool, motion_v_dim: int = 0):
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.reduced_precision = reduced_precision
        self.compute_dtype = torch.float32  # set by Generator.set_precision for reduced blocks
        self.register_buffer("resample_filter", fir_filter())
        if in_channels == 0:
            self.input = GenInput(out_channels, motion_v_dim)
            conv1_in = out_channels + motion_v_dim
            self.num_conv = 1
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, up=2, conv_clamp=conv_clamp)
            conv1_in = out_channels
            self.num_conv = 2
        self.conv1 = SynthesisLayer(conv1_in, out_channels, w_dim, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_torgb = 1

    def full_dtype(self) -> torch.dtype:
        """The weights' dtype: float32, or float64 for the float64 oracle that tests compare with."""
        return self.conv1.weight.dtype

    def dtype(self, force_fp32: bool = False) -> torch.dtype:
        return self.compute_dtype if self.reduced_precision and not force_fp32 else self.full_dtype()

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                motion_v: torch.Tensor | None = None, force_fp32: bool = False,
                fused_modconv: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = self.dtype(force_fp32)
        if fused_modconv is None:
            # Either form is the same function (only the rounding differs). One w (a video, however
            # many frames) makes the fused form an ordinary convolution with modulated weights; with
            # several, scaling the activations around one shared convolution beats a grouped
            # convolution (measured on CPU: 1.7x for 9 videos in channels-last). Training always
            # scales activations, as the original does.
            fused_modconv = (not self.training) and ws.shape[0] == 1
        if self.in_channels == 0:
            x = self.input(motion_v).to(dtype)
            x = self.conv1(x, ws[:, 0], fused_modconv=fused_modconv)
        else:
            x = x.to(dtype)
            x = self.conv0(x, ws[:, 0], fused_modconv=fused_modconv)
            x = self.conv1(x, ws[:, 1], fused_modconv=fused_modconv)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, ws[:, self.num_conv], fused_modconv=fused_modconv).to(self.full_dtype())
        img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.w_dim = cfg.w_dim
        self.img_resolution = cfg.resolution
        self.block_resolutions = cfg.block_resolutions
        self.motion_encoder = MotionEncoder(cfg)
        if cfg.channels(4) <= 0:
            raise ValueError("channel_base too small for a 4x4 block")
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = cfg.channels(res // 2) if res > 4 else 0
            block = SynthesisBlock(in_channels, cfg.channels(res), cfg.w_dim, res, cfg.img_channels,
                                   cfg.conv_clamp, reduced_precision=res >= cfg.fp16_resolution,
                                   motion_v_dim=cfg.motion_v_dim)
            self.num_ws += block.num_conv
            setattr(self, f"b{res}", block)
        self.num_ws += 1  # final ToRGB

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def frames(self, ws: torch.Tensor, motion_v: torch.Tensor, force_fp32: bool = False,
               fused_modconv: bool | None = None) -> torch.Tensor:
        """Synthesis: ws [S, num_ws, w_dim] and motion_v [S*F, v_dim] -> [S*F, C, H, W].

        Each w serves F consecutive frames (S = N: one w per frame; S = videos: the frames of a
        video share its w, and each layer modulates its weights once per video).
        """
        ws = ws.to(self.motion_encoder.conv[0].weight.dtype)  # float32 (float64 in the oracle)
        x = img = None
        w_idx = 0
        for block in self.blocks():
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            x, img = block(x, img, block_ws, motion_v=motion_v, force_fp32=force_fp32, fused_modconv=fused_modconv)
            w_idx += block.num_conv
        return img

    def forward(self, ws: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None,
                motion_z: torch.Tensor | None = None, motion_v: torch.Tensor | None = None,
                force_fp32: bool = False, fused_modconv: bool | None = None, max_t: float | None = None
                ) -> torch.Tensor:
        """ws [B, num_ws, w_dim], t [B, F] -> frames [B*F, C, H, W] (video-major).

        `max_t`: a host-side upper bound of t, so that no value is read back from the device.
        """
        if motion_v is None:
            motion_v, _ = self.motion_encoder(t, c, motion_z, max_t=max_t)
        return self.frames(ws, motion_v, force_fp32=force_fp32, fused_modconv=fused_modconv)


class Generator(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.img_resolution, self.img_channels = cfg.resolution, cfg.img_channels
        self.synthesis = SynthesisNetwork(cfg)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.c_dim, cfg.w_dim, num_ws=self.num_ws,
                                      num_layers=cfg.mapping_layers)
        self.precision = "float32"

    def set_precision(self, precision: str | torch.dtype) -> Generator:
        """Run the top `num_fp16_res` blocks in float16 (the original's default) or bfloat16."""
        dtype = parse_precision(precision)
        for block in self.synthesis.blocks():
            block.compute_dtype = dtype
        self.precision = {v: k for k, v in PRECISIONS.items()}[dtype]
        return self

    def set_motion_precision(self, precision: str | torch.dtype) -> Generator:
        """float64 (the default: v(t) exact at any t) or float32 (the original's rounding, faster to train)."""
        dtype = MOTION_PRECISIONS.get(precision, precision)
        if dtype not in MOTION_PRECISIONS.values():
            raise ValueError(f"motion precision must be float32 or float64, got {precision!r}")
        self.synthesis.motion_encoder.compute_dtype = dtype
        return self

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, t: torch.Tensor,
                motion_z: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, **synthesis_kwargs) -> torch.Tensor:
        if c is None:
            c = z.new_zeros([z.shape[0], self.c_dim])
        if t.ndim != 2 or t.shape[0] != z.shape[0]:
            raise ValueError(f"t must be [B, F] with B = len(z) = {z.shape[0]}, got {list(t.shape)}")
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, t=t, c=c, motion_z=motion_z, **synthesis_kwargs)
