"""The search itself: content latents (and, for clips, motion noise) fitted by Adam to target frames."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from .. import render as R
from ..config import ModelConfig
from ..generator import Generator
from ..motions import Motion, MotionSeed
from .config import FAST, FAST_VIDEO, ProjectionConfig
from .fitted_motion import FittedMotion
from .perceptual import FeatureDistance, build_distance, resolve_perceptual
from .quality import psnr

W_STAT_SAMPLES = 1024
W_STAT_SEED = 0x5EED
RAMP_UP, RAMP_DOWN, W_NOISE_END = 0.05, 0.25, 0.75
NOISE_FIT_STEPS, NOISE_FIT_LR = 200, 0.1  # stage 2 of project_video: the motion network alone, cheap
START_FRAMES = 4  # frames of a clip that judge the content starting points


class ProjectionInterrupted(Exception):
    """Raised by a progress callback to stop a projection between two steps."""


@dataclass(frozen=True)
class Progress:
    """What a callback sees after each step. `frames`: the frames this step rendered (raw, detached)."""

    step: int
    steps: int
    loss: float
    psnr: float
    frames: torch.Tensor


Callback = Callable[[Progress], None]


@dataclass(frozen=True, eq=False)
class ImageProjection:
    ws: torch.Tensor        # [B, num_ws, w_dim] float32, CPU
    c: torch.Tensor | None  # [B, c_dim] one-hot for conditional models
    motion: Motion          # the motion the images were fitted with
    t: float                # the model time (dataset frames) they were fitted at
    frames: torch.Tensor    # [B, 3, H, W] raw: the fit rendered at t
    perceptual: str         # the perceptual distance used
    losses: list[float]


@dataclass(frozen=True, eq=False)
class VideoProjection:
    ws: torch.Tensor          # [1, num_ws, w_dim]
    c: torch.Tensor | None
    motion: FittedMotion
    t: torch.Tensor           # float64 [F]: model times of the clip's frames
    fps: float                # the clip's frame rate
    frames: torch.Tensor      # [F, 3, H, W] raw: the fit rendered at t
    perceptual: str
    losses: list[float]


def _device(G: Generator) -> torch.device:
    return next(G.parameters()).device


@torch.no_grad()
def w_statistics(G: Generator, c: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    """(centre [w_dim], spread per dimension) of the model's w, for labels c [1, c_dim] on conditional models.

    The centre is the model's w_avg; for a class of a conditional model, the mean w of that class.
    """
    device = _device(G)
    z = R.content_latents(W_STAT_SEED, W_STAT_SAMPLES, G.z_dim).to(device)
    labels = (c[:1].to(device).expand(W_STAT_SAMPLES, -1) if G.c_dim else
              torch.zeros([W_STAT_SAMPLES, 0], device=device))
    w = G.mapping(z, labels, update_w_avg=False)[:, 0].float()
    centre = w.mean(dim=0) if G.c_dim else G.mapping.w_avg.float()
    spread = float((w - centre).square().mean().sqrt())
    return centre, spread


def learning_rate(config: ProjectionConfig, step: int) -> float:
    """Ramp up over the first 5% of steps, cosine ramp down over the last 25%."""
    progress = step / config.steps
    down = min(1.0, (1.0 - progress) / RAMP_DOWN)
    return config.learning_rate * (0.5 - 0.5 * math.cos(math.pi * down)) * min(1.0, progress / RAMP_UP)


def _autocast(config: ProjectionConfig, device: torch.device):
    if config.precision == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def _check_frames(G: Generator, frames: torch.Tensor, what: str) -> torch.Tensor:
    r = G.img_resolution
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4 or tuple(frames.shape[1:]) != (G.img_channels, r, r):
        shape = list(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ValueError(f"{what} must be [N, {G.img_channels}, {r}, {r}] raw frames for this {r}x{r} model, "
                         f"got {shape}")
    if frames.shape[0] < 1 or not frames.is_floating_point() or not bool(torch.isfinite(frames).all()):
        raise ValueError(f"{what} must be at least one frame of finite floating-point values")
    return frames.detach().float()


def _labels(G: Generator, c: torch.Tensor | None, batch: int) -> torch.Tensor | None:
    if not G.c_dim:
        return None
    if c is None or c.ndim != 2 or c.shape[1] != G.c_dim or c.shape[0] not in (1, batch):
        raise ValueError(f"this model is class-conditional: pass labels c [1 or {batch}, {G.c_dim}] "
                         "(see render.class_labels)")
    return c.detach().float().cpu().expand(batch, -1).contiguous()


class _Content:
    """ws = centre + spread * delta, delta one vector ("w") or one per layer ("w+")."""

    def __init__(self, G: Generator, config: ProjectionConfig, c: torch.Tensor | None, batch: int):
        device = _device(G)
        self.centres, spreads = [], []
        for b in range(batch):
            centre, spread = w_statistics(G, None if c is None else c[b:b + 1])
            self.centres.append(centre)
            spreads.append(spread)
        self.centre = torch.stack(self.centres).unsqueeze(1)  # [B, 1, w_dim]
        self.spread = torch.tensor(spreads, device=device).reshape(-1, 1, 1)
        layers = G.num_ws if config.latent == "w+" else 1
        self.num_ws = G.num_ws
        self.delta = torch.zeros([batch, layers, G.w_dim], device=device, requires_grad=True)

    def start_at(self, w: torch.Tensor) -> None:
        """Start the search at w [B, w_dim] instead of the centre."""
        with torch.no_grad():
            self.delta.copy_(((w.unsqueeze(1) - self.centre) / self.spread).expand_as(self.delta))

    def ws(self, noise: torch.Tensor | None = None) -> torch.Tensor:
        delta = self.delta if noise is None else self.delta + noise
        return (self.centre + self.spread * delta).expand(-1, self.num_ws, -1)

    def regulariser(self) -> torch.Tensor:
        return self.delta.square().mean()


def _losses(frames: torch.Tensor, target: torch.Tensor, distance: FeatureDistance | None,
            target_features: list[torch.Tensor] | None, weight: float) -> torch.Tensor:
    loss = (frames.float() - target).square().mean()
    if distance is not None:
        loss = loss + weight * distance(frames, target_features).mean()
    return loss


def _setup(G: Generator, config: ProjectionConfig, D) -> tuple[str, FeatureDistance | None, str | None]:
    kind, message = resolve_perceptual(config.perceptual, D)
    distance = build_distance(kind, G.img_resolution, _device(G), D, config.perceptual_resolution)
    return kind, distance, message


def project_images(G: Generator, targets: torch.Tensor, *, t: float = 0.0, motion: Motion | None = None,
                   c: torch.Tensor | None = None, config: ProjectionConfig = FAST,
                   callback: Callback | None = None, D=None, log: Callable[[str], None] | None = None
                   ) -> ImageProjection:
    """Content latents that reproduce each target [B, 3, H, W] (raw, [-1, 1]) when rendered at time t.

    The motion is fixed (default: motion seed 0) and shared by every target or one per target;
    rendering `ws` with `motion` at `t` gives `frames`. Conditional models need labels c.
    """
    device = _device(G)
    targets = _check_frames(G, targets, "the target images").to(device)
    batch = targets.shape[0]
    motion = MotionSeed(0) if motion is None else motion
    if motion.batch_size not in (1, batch):
        raise ValueError(f"the motion has batch size {motion.batch_size}; {batch} images need 1 or {batch}")
    t = float(t)
    times = R.check_model_time(torch.full([batch, 1], t, dtype=torch.float64), "the projection time")
    c = _labels(G, c, batch)
    kind, distance, message = _setup(G, config, D)
    if message and log:
        log(message)
    with torch.no_grad():
        mt = times if motion.batch_size == batch else times[:1]
        motion_v = R.motion_window(G, motion, mt, None if c is None else c[:motion.batch_size].to(device))
        motion_v = motion_v.expand(batch, -1) if motion_v.shape[0] != batch else motion_v
        target_features = distance.target_features(targets) if distance is not None else None
    content = _Content(G, config, c, batch)
    optimiser = torch.optim.Adam([content.delta], lr=config.learning_rate, betas=(0.9, 0.999))
    rng = torch.Generator().manual_seed(config.seed)
    losses: list[float] = []
    for step in range(config.steps):
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(config, step)
        noise = _w_noise(config, step, content.delta.shape, rng, device)
        with _autocast(config, device):
            frames = G.synthesis.frames(content.ws(noise), motion_v, fused_modconv=False)
        loss = _losses(frames, targets, distance, target_features, config.perceptual_weight)
        loss = loss + config.w_reg * content.regulariser()
        (grad,) = torch.autograd.grad(loss, [content.delta])
        content.delta.grad = grad
        optimiser.step()
        losses.append(float(loss.detach()))
        if callback is not None:
            callback(Progress(step + 1, config.steps, losses[-1], float(psnr(frames.detach(), targets).mean()),
                              frames.detach().float()))
    with torch.no_grad():
        ws = content.ws().detach()
        frames = G.synthesis.frames(ws, motion_v).float()
    return ImageProjection(ws=ws.cpu(), c=c, motion=motion, t=t, frames=frames.cpu(), perceptual=kind,
                           losses=losses)


def _w_noise(config: ProjectionConfig, step: int, shape, rng: torch.Generator, device) -> torch.Tensor | None:
    scale = config.w_noise * max(0.0, 1.0 - step / (W_NOISE_END * config.steps)) ** 2
    if scale == 0:
        return None
    return (torch.randn(shape, generator=rng) * scale).to(device)


def dataset_fps_of(G: Generator) -> float:
    """The frame rate model time counts in: the checkpoint's, or the config default for a bare Generator."""
    config = getattr(G, "model_config", None)
    return float(config.dataset_fps if config is not None else ModelConfig().dataset_fps)


def clip_noise_length(G: Generator, t: torch.Tensor) -> int:
    """Noise vectors that the motion codes of model times t (float64 [F]) read: codes 0 .. floor(max t / Δ) + 1."""
    enc = G.synthesis.motion_encoder
    last = int(torch.div(t.max(), enc.distance, rounding_mode="floor")) + 1
    return last + enc.receptive_field


def _pick_pairs(total: int, count: int, rng: torch.Generator) -> torch.Tensor:
    """Frame indices [2n] as neighbouring pairs (k, k+1): count // 2 distinct k, or every frame's pair."""
    pairs = max(1, count // 2)
    starts = torch.randperm(total - 1, generator=rng)[:pairs] if pairs < total - 1 else torch.arange(total - 1)
    return torch.stack([starts, starts + 1], dim=1).reshape(-1)


def project_video(G: Generator, clip: torch.Tensor, fps: float, *, c: torch.Tensor | None = None,
                  config: ProjectionConfig = FAST_VIDEO, callback: Callback | None = None, D=None,
                  log: Callable[[str], None] | None = None) -> VideoProjection:
    """Content and motion that reproduce a clip [F, 3, H, W] (raw, F >= 2) shown at `fps`.

    Frame k is matched at model time k * dataset_fps / fps. The motion noise that these
    times' codes read is fitted; later noise comes from the seed `config.seed`, so the
    result renders past the clip's end like any other motion.

    The content starts from the best of `content_starts` random w, judged on a few frames of
    the clip. Then up to three stages. (1) For the first `motion_warmup` of the steps (all of them
    by default) the motion codes that the clip reads are free, fitted with the content: a handful
    of vectors, which the motion network's time encoder turns into v(t), so the search moves every
    frame's motion at once and keeps it on the model's own kind of path. (2) The motion noise is
    fitted to those codes through the convolution alone (cheap, no synthesis), from
    `motion_restarts` seeds at once, keeping the best. (3) The remaining steps, if any, fit
    content and noise together.
    """
    device = _device(G)
    clip = _check_frames(G, clip, "the clip").to(device)
    frames_total = clip.shape[0]
    if frames_total < 2:
        raise ValueError(f"a clip needs at least 2 frames to show motion, got {frames_total}")
    t = R.timestamps(frames_total, float(fps), dataset_fps_of(G))
    c = _labels(G, c, 1)
    labels = None if c is None else c.to(device)
    enc = G.synthesis.motion_encoder
    kind, distance, message = _setup(G, config, D)
    if message and log:
        log(message)
    with torch.no_grad():
        target_features = distance.target_features(clip) if distance is not None else None
    content = _Content(G, config, c, 1)
    length = clip_noise_length(G, t)
    t_device = t.to(device)
    noise = MotionSeed(config.seed).noise(0, length, enc.z_dim).to(device)
    with torch.no_grad():
        codes = enc.codes(noise, labels).float()  # [1, codes the clip reads, code_dim]: free in stage 1
        if config.content_starts:
            look = torch.linspace(0, frames_total - 1, min(frames_total, START_FRAMES)).round().long().to(device)
            v = enc.motion_vectors(codes, t_device[look].unsqueeze(0), check_range=False)
            content.start_at(_best_w(G, clip[look], v, labels, config))
    code_spread = float(codes.std()) or 1.0
    codes.requires_grad_(True)
    noise.requires_grad_(True)
    warm = round(config.motion_warmup * config.steps)
    rng = torch.Generator().manual_seed(config.seed)
    per_step = 2 * (frames_total - 1) if not config.frames_per_step else config.frames_per_step
    losses: list[float] = []
    optimiser = torch.optim.Adam([{"params": [content.delta], "scale": 1.0},
                                  {"params": [codes], "scale": code_spread}], lr=config.learning_rate)
    for step in range(config.steps):
        if step == warm:
            if warm:
                noise = _noise_for(G, codes.detach(), labels, length, config).requires_grad_(True)
            state = optimiser.state[content.delta]
            optimiser = torch.optim.Adam([{"params": [content.delta], "scale": 1.0},
                                          {"params": [noise], "scale": config.motion_lr_scale}],
                                         lr=config.learning_rate)
            if state:
                optimiser.state[content.delta] = state  # the content's moments carry over
        motion_param = codes if step < warm else noise
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(config, step) * group["scale"]
        pick = _pick_pairs(frames_total, per_step, rng).to(device)
        w_noise = _w_noise(config, step, content.delta.shape, rng, device)
        if step < warm:
            motion_v = enc.motion_vectors(codes, t_device[pick].unsqueeze(0), check_range=False)
        else:
            motion_v = enc.motion_vectors(enc.codes(noise, labels), t_device[pick].unsqueeze(0), check_range=False)
        ws = content.ws(w_noise).expand(pick.numel(), -1, -1)
        with _autocast(config, device):
            frames = G.synthesis.frames(ws, motion_v, fused_modconv=False)
        features = None if target_features is None else [f[pick] for f in target_features]
        target = clip[pick]
        loss = _losses(frames, target, distance, features, config.perceptual_weight)
        if config.motion_weight:
            # Pixel errors are dominated by what the frames share; the differences between neighbouring
            # frames are the motion alone, so they get a term of their own.
            loss = loss + config.motion_weight * ((frames[1::2].float() - frames[0::2].float())
                                                  - (target[1::2] - target[0::2])).square().mean()
        loss = loss + config.w_reg * content.regulariser()
        if step >= warm:
            loss = loss + config.noise_reg * _noise_prior(noise)
        grads = torch.autograd.grad(loss, [content.delta, motion_param])
        content.delta.grad, motion_param.grad = grads
        optimiser.step()
        losses.append(float(loss.detach()))
        if callback is not None:
            callback(Progress(step + 1, config.steps, losses[-1], float(psnr(frames.detach(), target).mean()),
                              frames.detach().float()))
    if warm == config.steps:  # every step was a warm-up step: the noise still has to be fitted
        noise = _noise_for(G, codes.detach(), labels, length, config)
    motion = FittedMotion(noise.detach(), tail_seed=config.seed)
    ws = content.ws().detach()
    fitted = R.render(G, ws, motion, t, c=labels)[0]
    return VideoProjection(ws=ws.cpu(), c=c, motion=motion, t=t, fps=float(fps), frames=fitted, perceptual=kind,
                           losses=losses)


def _best_w(G: Generator, targets: torch.Tensor, motion_v: torch.Tensor, labels: torch.Tensor | None,
            config: ProjectionConfig) -> torch.Tensor:
    """The best (mean PSNR over `targets` [n, 3, H, W] drawn with motion_v [n, v_dim]) of content_starts random w.

    A clip's content and motion are searched together from the start, and from w_avg the search
    often settles in a poor minimum (a sky of the wrong hour); a start already close in colour
    and layout avoids that for the cost of a few steps' rendering.
    """
    device = targets.device
    z = R.content_latents(config.seed, config.content_starts, G.z_dim).to(device)
    c = labels.expand(z.shape[0], -1) if labels is not None else torch.zeros([z.shape[0], 0], device=device)
    w = G.mapping(z, c)[:, 0].float()
    scores = []
    for k in range(w.shape[0]):
        ws = w[k].reshape(1, 1, -1).expand(targets.shape[0], G.num_ws, -1)
        scores.append(psnr(G.synthesis.frames(ws, motion_v).float(), targets).mean())
    best = int(torch.stack(scores).argmax())
    return w[best:best + 1]


def _noise_prior(noise: torch.Tensor) -> torch.Tensor:
    """How far each noise vector's mean square is from 1, where a standard normal's lies."""
    return (noise.square().mean(dim=-1) - 1).square().mean()


def _noise_for(G: Generator, codes: torch.Tensor, labels: torch.Tensor | None, length: int,
               config: ProjectionConfig) -> torch.Tensor:
    """Motion noise [1, length, z_dim] whose codes come closest to `codes` [1, n, code_dim], best of several starts."""
    enc = G.synthesis.motion_encoder
    starts = config.motion_restarts
    noise = torch.cat([MotionSeed(config.seed + k).noise(0, length, enc.z_dim) for k in range(starts)])
    noise = noise.to(codes.device).requires_grad_(True)
    batch_labels = None if labels is None else labels.expand(starts, -1)
    # Errors in units of how much the codes differ from each other: that difference is the motion.
    scale = (codes - codes.mean(dim=1, keepdim=True)).square().mean().clamp_min(1e-12)
    optimiser = torch.optim.Adam([noise], lr=NOISE_FIT_LR)
    for step in range(NOISE_FIT_STEPS):
        for group in optimiser.param_groups:
            group["lr"] = NOISE_FIT_LR * (1 - step / NOISE_FIT_STEPS)
        errors = (enc.codes(noise, batch_labels).float() - codes).square().mean(dim=(1, 2)) / scale
        priors = (noise.square().mean(dim=-1) - 1).square().mean(dim=1)
        (grad,) = torch.autograd.grad((errors + config.noise_reg * priors).sum(), [noise])
        noise.grad = grad
        optimiser.step()
    best = int(errors.detach().argmin())
    return noise.detach()[best:best + 1]
