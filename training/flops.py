"""Model FLOPs of a StyleGAN-V training iteration, from layer shapes (for MFU figures).

Convention: FLOPs = 2 x multiply-accumulates of convolutions, transposed
convolutions (counted per input pixel) and linear layers, forward only. FIR
filters, modulation arithmetic and element-wise ops are not counted (~1%).
Per iteration: G runs 2 forwards + 1 backward (4 forward-units), D 3 forwards +
3 backwards (8 units) plus the lazy R1 step (6.22 units / interval, a measured
ratio of the double backward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stylegan_v.config import DiscriminatorConfig, GeneratorConfig, ModelConfig

R1_UNITS = 6.22  # fwd + input grad with create_graph + double backward, in D forwards

# Dense bf16/fp16 tensor-core peaks (TFLOP/s), matched by substring of the device name.
PEAK_TFLOPS = (
    ("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("GH200", 989.0), ("B200", 2250.0),
    ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0), ("A10G", 70.0), ("A10", 125.0),
    ("L4", 121.0), ("4090", 165.0), ("3090", 71.0), ("V100", 125.0), ("T4", 65.0),
)


def _linear(n_in: int, n_out: int) -> float:
    return 2.0 * n_in * n_out


def _conv(res_out: int, k: int, c_in: int, c_out: int) -> float:
    return 2.0 * res_out * res_out * k * k * c_in * c_out


def generator_flops_per_frame(g: GeneratorConfig, num_frames: int) -> float:
    """One forward of G per output frame; per-video parts (mapping, motion convs) shared by `num_frames`."""
    per_video = _linear(g.z_dim, g.w_dim) + _linear(g.w_dim, g.w_dim) * (g.mapping_layers - 1)
    if g.c_dim:
        per_video += _linear(g.c_dim, g.w_dim) + _linear(g.w_dim, g.w_dim)
    codes = math.ceil((g.max_num_frames - 1) / g.motion_z_distance) + 2
    l1 = codes + (g.motion_kernel_size - 1)
    per_video += 2.0 * g.motion_kernel_size * ((g.motion_z_dim + g.c_dim) * g.motion_code_dim * l1
                                               + g.motion_code_dim * g.motion_code_dim * codes)
    # Aligned time encoder: periods + phases from u_left, aligners from u_left and u_right.
    per_frame = _linear(g.motion_code_dim, g.time_enc_dim) * 2 + _linear(g.motion_code_dim, 2 * g.time_enc_dim) * 2
    for res in g.block_resolutions:
        c_out = g.channels(res)
        if res == 4:
            c_in = c_out + g.motion_v_dim
            per_frame += _conv(4, 3, c_in, c_out) + _linear(g.w_dim, c_in)
        else:
            c_in = g.channels(res // 2)
            per_frame += _conv(res // 2, 3, c_in, c_out) + _linear(g.w_dim, c_in)  # transposed, per input pixel
            per_frame += _conv(res, 3, c_out, c_out) + _linear(g.w_dim, c_out)
        per_frame += _conv(res, 1, c_out, g.img_channels) + _linear(g.w_dim, c_out)
    return per_frame + per_video / num_frames


def discriminator_flops_per_frame(d: DiscriminatorConfig) -> float:
    frame_part = video_part = 0.0
    for res in d.block_resolutions:
        tmp = d.channels(res)
        c_in = d.channels(res) if res < d.resolution else tmp
        c_out = d.channels(res // 2)
        if res // 2 == d.concat_res:
            c_out //= d.num_frames_div_factor
        if res == d.concat_res:
            c_in = (d.channels(res) // d.num_frames_div_factor) * d.num_frames
        flops = _conv(res, 3, c_in, tmp) + _conv(res // 2, 3, tmp, c_out) + _conv(res // 2, 1, c_in, c_out)
        if res == d.resolution:
            flops += _conv(res, 1, d.img_channels, tmp)
        if res > d.concat_res:
            frame_part += flops
        else:
            video_part += flops
    c4 = d.channels(4)
    video_part += _conv(4, 3, c4 + d.mbstd_num_channels, c4) + _linear(c4 * 16, c4) + _linear(c4, c4)
    cond = d.c_dim + d.time_cond_dim
    if cond:
        video_part += _linear(cond, c4) + _linear(c4, c4) * d.mapping_layers
    return frame_part + video_part / d.num_frames


@dataclass(frozen=True)
class IterationCost:
    g_frame: float
    d_frame: float
    frames_per_iter: int
    d_reg_interval: int

    @property
    def per_frame(self) -> float:
        return 4 * self.g_frame + (8 + R1_UNITS / self.d_reg_interval) * self.d_frame

    @property
    def per_iteration(self) -> float:
        return self.per_frame * self.frames_per_iter


def iteration_cost(model: ModelConfig, batch: int, d_reg_interval: int = 16) -> IterationCost:
    f = model.discriminator.num_frames
    return IterationCost(g_frame=generator_flops_per_frame(model.generator, f),
                         d_frame=discriminator_flops_per_frame(model.discriminator),
                         frames_per_iter=batch * f, d_reg_interval=d_reg_interval)


def peak_flops(device_name: str | None) -> float | None:
    """Dense bf16 peak in FLOP/s for a known accelerator name, else None."""
    if not device_name:
        return None
    for key, tflops in PEAK_TFLOPS:
        if key in device_name:
            return tflops * 1e12
    return None
