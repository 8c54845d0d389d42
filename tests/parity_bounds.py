"""Float64 oracle of a generator and the float32 error bounds that parity tests assert.

A float32 result carries its own rounding, so two float32 implementations of the same
function (the original's reference outputs and ours) can only be compared through the
exact function. The oracle is the same network, same weights, same inputs, evaluated in
float64: its own rounding (~1e-16 relative) is negligible at every t used here.

Bounds are first-order rounding-error models with stated factors; nothing here is tuned
on a machine. With u = 2^-24 (float32 unit roundoff):

Motion vectors. Component k of v(t) is sin/cos of the angle θ_k(τ) = f_k·ρ_k·τ + φ_k·s_k
(f: frequency, ρ = tanh(p) + 1 ∈ (0, 2): period modulation, φ: phase, s: phase scale), taken at
τ = t, t_left, t_right. Its float32 error is dominated by the angle's absolute error:
  - the roundings of f·ρ, (f·ρ)·τ, φ·s and the sum, and of τ's cast to float32, each at most u
    times the magnitude A_k(τ) = |f_k ρ_k τ| + |φ_k s_k| (sum of the two terms' magnitudes, so
    that cancellation cannot hide their rounding): ≤ 4u·A_k(τ);
  - p and φ are n-term dot products of a motion code with a weight row; their absolute error
    is at most 2√n·u·M, with M = Σ_i |w_i|·|u_i| the dot product's magnitude (the probabilistic
    bound √n·u of the sum, doubled for the rounding the codes carry in from the convolutions).
    Since |dρ/dp| <= 1 they move the angle by ≤ 2√n·u·(|f_k τ|·M_p,k + s_k·M_φ,k).
v(t) = e(t) - [(1-α)e(t_left) + α e(t_right)] + aligners adds the three angle errors with
weights 1, 1-α, α, the aligners' dot-product error 2√n·u·M_a interpolated the same way, and
FLOOR_ROUNDINGS·u·max|v| (FLOOR_ROUNDINGS = 8) for sin/cos and the sums.

Frames. A motion-vector error Δv moves frame pixel i by at most Σ_j |∂x_i/∂v_j|·|Δv_j| to
first order (the Jacobian is evaluated on the oracle, in float64, by forward-mode AD).
The synthesis network's own float32 rounding adds the probabilistic bound of a stack of
L layers with fan-in ≤ n: each layer adds a relative error ≤ √n·u, carried to the output
with a gain we take as 2 (the lrelu gain √2 and the skip sums): 2·L·√n·u·max|x|.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch.autograd import forward_ad

U32 = 2.0 ** -24
FLOOR_ROUNDINGS = 8

# Outside the motion path the network is O(1) everywhere: near the training clip length
# (t <= max_num_frames) these stated targets hold for any float32 evaluation of ours.
NEAR_T_MOTION = 2e-5
NEAR_T_FRAMES = 1e-4


def float64_copy(net: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(net).double().eval()


@dataclass(frozen=True)
class MotionOracle:
    """v(t) in float64 and its float32 error bound, per frame n and component j: [N, v_dim]."""

    motion_v: torch.Tensor
    bound: torch.Tensor


def _dot_magnitude(layer, x: torch.Tensor) -> torch.Tensor:
    """Σ_i |w_i|·|x_i| of a FullyConnected layer (no bias), with its weight gain."""
    return x.abs() @ (layer.weight.abs() * layer.weight_gain).t()


def motion_oracle(G64, t: torch.Tensor, motion_z: torch.Tensor, c: torch.Tensor | None = None,
                  code_offset: int = 0) -> MotionOracle:
    """`motion_z` [B, L, z_dim] is the noise of codes code_offset.. (the renderer's window)."""
    enc = G64.synthesis.motion_encoder
    te = enc.time_encoder
    b, f = t.shape
    t = t.double()
    codes = enc.codes(motion_z.double(), None if c is None else c.double())
    motion_v = enc.motion_vectors(codes, t, code_offset=code_offset)

    tau = t.reshape(-1, 1)
    left = torch.div(tau, enc.distance, rounding_mode="floor")
    alpha = (tau - left * enc.distance) / enc.distance
    video = torch.arange(b).repeat_interleave(f)
    index = left.long().squeeze(1) - code_offset
    u_left, u_right = codes[video, index], codes[video, index + 1]
    rho = te.periods_predictor(u_left).tanh() + 1
    phase = (te.phase_predictor(u_left) * te.phase_scales).abs()
    n = u_left.shape[1]
    dot = 2 * math.sqrt(n) * U32

    def angle_error(time: torch.Tensor) -> torch.Tensor:
        magnitude = (te.freqs * rho * time).abs() + phase
        upstream = (te.freqs * time).abs() * _dot_magnitude(te.periods_predictor, u_left) \
            + te.phase_scales * _dot_magnitude(te.phase_predictor, u_left)
        return 4 * U32 * magnitude + dot * upstream

    t_left = left * enc.distance
    per_angle = angle_error(tau) + (1 - alpha) * angle_error(t_left) + alpha * angle_error(t_left + enc.distance)
    aligners = dot * ((1 - alpha) * _dot_magnitude(te.aligners_predictor, u_left)
                      + alpha * _dot_magnitude(te.aligners_predictor, u_right))
    floor = FLOOR_ROUNDINGS * U32 * motion_v.abs().amax(dim=1, keepdim=True)
    return MotionOracle(motion_v, torch.cat([per_angle, per_angle], dim=1) + aligners + floor)  # [sin ‖ cos]


def layer_stack_floor(convs: list[torch.nn.Module]) -> float:
    """2·L·√n·u: the float32 rounding of a stack of L layers with fan-in <= n, relative to the output scale."""
    fan_in = max(conv.weight[0].numel() for conv in convs)
    return 2 * len(convs) * math.sqrt(fan_in) * U32


def synthesis_floor(G64, frames: torch.Tensor) -> torch.Tensor:
    """Per-frame bound of the synthesis network's own float32 rounding: [N]."""
    convs = [m for m in G64.synthesis.modules() if hasattr(m, "affine")]  # the modulated convolutions
    return layer_stack_floor(convs) * frames.flatten(1).abs().amax(dim=1)


def frames_bound(G64, ws: torch.Tensor, motion: MotionOracle, frames: torch.Tensor) -> torch.Tensor:
    """Per-pixel bound [N, C, H, W]: Jacobian-weighted motion bound plus the synthesis floor."""
    n, dim = motion.motion_v.shape
    # One forward-mode pass for all frames: row (i, j) carries tangent e_j·bound_ij of frame i.
    # Unfused modulation is the same function and batches better.
    v = motion.motion_v.repeat_interleave(dim, dim=0)
    tangents = (torch.eye(dim, dtype=torch.float64) * motion.bound[:, None, :]).reshape(n * dim, dim)
    with forward_ad.dual_level():
        out = G64.synthesis.frames(ws.repeat_interleave(dim, dim=0), forward_ad.make_dual(v, tangents),
                                   fused_modconv=False)
        jvp = forward_ad.unpack_dual(out).tangent
    weighted = jvp.reshape(n, dim, *jvp.shape[1:]).abs().sum(dim=1)  # Σ_j |∂x/∂v_j| · bound_j
    return weighted + synthesis_floor(G64, frames).reshape(-1, 1, 1, 1)


@dataclass(frozen=True)
class GeneratorOracle:
    """Everything a parity test compares against, for one (z, c, t, motion_z)."""

    ws: torch.Tensor
    motion: MotionOracle
    frames: torch.Tensor
    frames_bound: torch.Tensor


def generator_oracle(G64, z: torch.Tensor, c: torch.Tensor, t: torch.Tensor, motion_z: torch.Tensor,
                     truncation_psi: float = 1.0, code_offset: int = 0, jacobian: bool = True) -> GeneratorOracle:
    """`jacobian=False` leaves the motion term out of `frames_bound` (for a float64 motion path,
    whose v(t) error is float32 output rounding, far below the synthesis floor)."""
    with torch.no_grad():
        ws = G64.mapping(z.double(), c.double(), truncation_psi=truncation_psi)
        motion = motion_oracle(G64, t, motion_z, c, code_offset)
        frame_ws = ws.repeat_interleave(t.shape[1], dim=0)
        frames = G64.synthesis.frames(frame_ws, motion.motion_v)
        bound = (frames_bound(G64, frame_ws, motion, frames) if jacobian
                 else synthesis_floor(G64, frames).reshape(-1, 1, 1, 1).expand_as(frames))
        return GeneratorOracle(ws, motion, frames, bound)


def excess(value: torch.Tensor, oracle: torch.Tensor, bound: torch.Tensor) -> float:
    """max |value - oracle| / bound: <= 1 means within the bound everywhere."""
    assert value.shape == oracle.shape, (value.shape, oracle.shape)
    return float(((value.double() - oracle).abs() / bound).max())
