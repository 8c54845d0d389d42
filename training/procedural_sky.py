"""A procedural sky timelapse: the `sky` kind of `training.procedural`.

What StyleGAN-V's SkyTimelapse benchmark looks like, made from nothing but a seed: layers of
fractal-noise clouds blown by the wind in perspective (near layers move faster than far ones,
so the parallax reads as depth), a sun that moves along its arc, the sky's colours following
its elevation from day through golden hour to night (with stars), and a dark horizon
silhouette of hills and trees. Each video is a different place and hour: horizon shape,
cloud cover, wind, tempo of the day and tint are drawn per video.

Everything is vectorised over the frames of a video, and the image is kept as one weight field
per palette colour until the end, so that each step is a pass over scalar fields: one idle CPU
core renders about 5,800 frames per second at 64x64 and 1,400 at 128x128 (64-frame videos, one
torch thread; 1,600-1,700 at 64x64 with the core shared by other jobs). Below 64 px frames are
rendered at twice the size and averaged down, so cloud edges do not shimmer from frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

NUM_CLASSES = 3  # the hour at the first frame: 0 day, 1 golden hour / twilight, 2 night
_TEXTURE = 128  # side of each layer's periodic noise texture, texels
_SUPERSAMPLE = 2
_RNG_TAG = 1  # keeps these random streams apart from the shapes kind's for the same seed

# Sky colours as a function of the sun's elevation (sin of its angle, -1..1): (elevation,
# zenith RGB, horizon RGB). Between the keys the colours are interpolated linearly.
_SKY_KEYS = np.array([-0.35, -0.12, 0.0, 0.12, 0.45])
_ZENITH = np.array([[0.02, 0.04, 0.12], [0.06, 0.08, 0.24], [0.16, 0.2, 0.45], [0.2, 0.38, 0.75], [0.16, 0.42, 0.85]])
_HORIZON = np.array([[0.07, 0.09, 0.2], [0.38, 0.24, 0.34], [0.98, 0.5, 0.22], [0.95, 0.75, 0.55], [0.68, 0.82, 0.95]])
# Light on the clouds' sunlit side, by the same keys.
_CLOUD_LIGHT = np.array([[0.1, 0.12, 0.2], [0.4, 0.28, 0.38], [1.0, 0.55, 0.35], [1.0, 0.9, 0.78], [1.0, 1.0, 1.0]])


@dataclass(frozen=True)
class SkyRecipe:
    """Every random choice behind one sky video; rendering is then deterministic in t."""

    horizon: float             # height of the horizon line, image fraction from the top
    hill_amplitudes: np.ndarray  # [H] silhouette sinusoids, image fraction
    hill_frequencies: np.ndarray  # [H] cycles per image width
    hill_phases: np.ndarray    # [H] radians
    day_phase: float           # time of day at t=0, turns (0 = sunrise, 0.25 = noon)
    day_rate: float            # turns per frame
    sun_side: float            # +1 the sun travels left to right, -1 right to left
    textures: np.ndarray       # [L, T, T] periodic fractal noise, mean 0, std 1
    layer_heights: np.ndarray  # [L] cloud deck height; a higher deck looks farther away
    covers: np.ndarray         # [L] noise level above which a cloud starts, in std units
    winds: np.ndarray          # [L, 2] drift per frame (across, towards the viewer), texture periods
    tint: np.ndarray           # [3] per-video colour grade multiplier
    stars: np.ndarray          # [S, 3] x, y (image fractions) and brightness


def _fractal_texture(rng: np.random.Generator, slope: float) -> np.ndarray:
    """Periodic noise with a 1/f^slope amplitude spectrum: tiles seamlessly, so clouds never run out."""
    freqs = np.fft.fftfreq(_TEXTURE) * _TEXTURE
    radius = np.hypot(freqs[:, None], freqs[None, :])
    spectrum = np.fft.fft2(rng.standard_normal((_TEXTURE, _TEXTURE)))
    amplitude = np.where(radius > 0, np.maximum(radius, 1.0) ** -slope, 0.0)
    texture = np.fft.ifft2(spectrum * amplitude).real
    return texture / texture.std()


def draw_sky_recipe(seed: int, video_index: int) -> SkyRecipe:
    rng = np.random.default_rng([seed, video_index, _RNG_TAG])
    num_hills = 5
    num_layers = int(rng.integers(2, 4))
    # A timelapse: a 64-frame clip sees between a twentieth and a fifth of a day go by.
    day_rate = float(rng.uniform(0.05, 0.2) / 64.0)
    # Mostly daytime, with a good share of sunrises and sunsets (where the colours change);
    # night comes in only as a sunrise's start or a sunset's end.
    day_phase = float(rng.choice([rng.uniform(-0.06, 0.12), rng.uniform(0.36, 0.52), rng.uniform(0.06, 0.44)]))
    wind_dir = rng.uniform(-np.pi, np.pi)
    wind_speed = rng.uniform(0.003, 0.012)
    return SkyRecipe(
        horizon=float(rng.uniform(0.62, 0.82)),
        hill_amplitudes=rng.uniform(0.0, 0.05, num_hills) * np.array([1.6, 1.0, 0.6, 0.3, 0.15]),
        hill_frequencies=np.array([1.0, 2.0, 4.0, 9.0, 19.0]) * rng.uniform(0.7, 1.3, num_hills),
        hill_phases=rng.uniform(0, 2 * np.pi, num_hills),
        day_phase=day_phase,
        day_rate=day_rate,
        sun_side=float(rng.choice([-1.0, 1.0])),
        textures=np.stack([_fractal_texture(rng, rng.uniform(1.6, 2.2)) for _ in range(num_layers)]),
        layer_heights=np.sort(rng.uniform(0.15, 0.6, num_layers))[::-1].copy(),
        covers=rng.uniform(-0.3, 1.0, num_layers),
        winds=np.stack([
            wind_speed * np.array([np.cos(wind_dir), np.sin(wind_dir)]) * rng.uniform(0.7, 1.3)
            for _ in range(num_layers)
        ]),
        tint=np.exp(rng.normal(0.0, 0.06, 3)),
        stars=np.column_stack([rng.uniform(0, 1, 60), rng.uniform(0, 0.8, 60), rng.uniform(0.3, 1.0, 60)]),
    )


def hour_class(recipe: SkyRecipe) -> int:
    """The class of a video for labelled datasets: the hour at its first frame."""
    elevation = _sun_elevation(recipe, np.zeros(1))[0]
    return 0 if elevation > 0.15 else 1 if elevation > -0.15 else 2


def _sun_elevation(recipe: SkyRecipe, t: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * (recipe.day_phase + recipe.day_rate * t))


def _interpolate_keys(table: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """[F, 3] colours at the given elevations, from a [K, 3] table over _SKY_KEYS."""
    return np.stack([np.interp(elevation, _SKY_KEYS, table[:, c]) for c in range(3)], axis=-1)


def _smoothstep(edge0: float, edge1, x):
    s = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0) if isinstance(x, torch.Tensor) else np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def _layer_textures(recipe: SkyRecipe) -> torch.Tensor:
    """[L, 2, 2T+1, 2T+1]: each deck's noise and how much brighter its sun-facing side is, tiled
    twice and wrapped by one texel, so that a lookup at (a mod 1) + (b mod 1), in [0, 2), lands on
    the texel (a + b) mod 1 would: the per-pixel and per-frame parts of a coordinate wrap apart."""
    noise = recipe.textures
    shifted = np.roll(noise, shift=(-2, int(2 * recipe.sun_side)), axis=(1, 2))
    both = torch.from_numpy(np.tile(np.stack([noise, noise - shifted], axis=1), (1, 1, 2, 2))).float()
    both = torch.cat([both, both[..., :1]], dim=-1)
    return torch.cat([both, both[..., :1, :]], dim=-2)


def _smoothstep_(x: torch.Tensor, edge0: float, edge1: float) -> torch.Tensor:
    """`_smoothstep` computed in place in x (the cloud layers' full-size fields)."""
    s = x.sub_(edge0).mul_(1.0 / (edge1 - edge0)).clamp_(0.0, 1.0)
    return s.mul_(s * (3.0 - 2.0 * s))


def render_sky_frames(recipe: SkyRecipe, times: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [F, R, R, 3]: the frames at the given times (frames, any reals)."""
    # Below 64 px the clouds' detail is finer than a pixel: render larger and average down.
    factor = _SUPERSAMPLE if resolution < 64 else 1
    size = resolution * factor
    t_np = np.asarray(times, dtype=np.float64).reshape(-1)
    frames = len(t_np)
    per_frame = lambda values: torch.from_numpy(np.asarray(values, dtype=np.float32)).view(-1, 1, 1)
    t = per_frame(t_np)
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    height_above = (recipe.horizon - y).clamp(min=0.0)  # [S, S] sky height over the horizon
    elevation = _sun_elevation(recipe, t_np)  # [F]
    grade = lambda table: _interpolate_keys(table, elevation) * recipe.tint  # [F, 3]

    # Every layer below mixes a few colours that change per frame only (horizon, zenith, cloud
    # light, sun glow, white), so the image is kept as one weight field per colour, [K, F, S, S],
    # and the colours are applied once at the end: each step is then a pass over scalar fields.
    palette = np.stack([grade(_HORIZON), grade(_ZENITH), grade(_CLOUD_LIGHT),
                        grade(_CLOUD_LIGHT) * np.array([1.0, 0.85, 0.6]), np.ones((frames, 3))], axis=1)
    weights = torch.empty(len(palette[0]), frames, size, size)
    horizon_w, zenith_w, light_w, glow_w, white_w = weights

    # Sky: horizon colour low, zenith colour high, a warm glow around the sun.
    ramp = (height_above / recipe.horizon) ** 0.6
    horizon_w.copy_(1.0 - ramp)
    zenith_w.copy_(ramp)
    light_w.zero_()
    arc = 2 * np.pi * (recipe.day_phase + recipe.day_rate * t_np)
    sun_dist = torch.hypot(x - per_frame(0.5 - recipe.sun_side * 0.45 * np.cos(arc)),
                           y - per_frame(recipe.horizon - 0.75 * elevation))
    daylight = per_frame(_smoothstep(-0.2, 0.1, elevation))
    torch.mul(_smoothstep_(sun_dist.clone(), 0.05, 0.03), 0.9 * daylight, out=glow_w)  # the disc
    glow_w.addcmul_(sun_dist.mul_(1.0 / 0.18).square_().neg_().exp_(), 0.5 * daylight)  # its halo

    # Stars fade in at night, behind the clouds.
    star_field = torch.zeros(size, size)
    sx = np.minimum((recipe.stars[:, 0] * size).astype(int), size - 1)
    sy = np.minimum((recipe.stars[:, 1] * size).astype(int), size - 1)
    star_field[sy, sx] = torch.from_numpy(recipe.stars[:, 2]).float()
    torch.mul(star_field, per_frame(_smoothstep(-0.05, -0.3, elevation) * 0.8), out=white_w)

    # Clouds in perspective: a deck at height h seen at height e over the horizon lies at
    # distance ~ h / e, so texture coordinates scale with it and the wind drifts them.
    # A cloud is lit (the cloud light) on its sun side, shadowed (0.55 horizon + 0.15 zenith) elsewhere.
    haze = _smoothstep(0.0, 0.12, height_above) * 0.92
    textures = _layer_textures(recipe)
    uv = torch.empty(2, frames, size, size)
    # grid_sample reads (u, v) pairs: a [F, S, S, 2] view of uv, merged to one [F*S, S] image.
    grid = uv.permute(1, 2, 3, 0).view(1, frames * size, size, 2)
    for k in range(len(textures)):
        depth = recipe.layer_heights[k] / (height_above + 0.06)
        # Each coordinate is (a per-pixel part mod 1) + (the wind's drift mod 1), in [0, 2), minus 1:
        # align_corners=True over the 2T+1 texels of the tiled texture maps -1..1 to texels 0..2T.
        drift = torch.from_numpy(np.asarray(recipe.winds[k][:, None] * t_np % 1.0, dtype=np.float32))
        torch.add(((x - 0.5) * depth * 0.6).remainder_(1.0).sub_(1.0), drift[0].view(-1, 1, 1), out=uv[0])
        torch.add((depth * 0.25).remainder_(1.0).sub_(1.0), drift[1].view(-1, 1, 1), out=uv[1])
        sample = torch.nn.functional.grid_sample(textures[k : k + 1], grid, mode="bilinear", align_corners=True)
        noise, brighter = sample.view(2, frames, size, size)
        cover = float(recipe.covers[k])
        density = _smoothstep_(noise, cover, cover + 0.9).mul_(haze)
        lit = brighter.mul_(0.35).add_(0.6).clamp_(0.0, 1.0).mul_(density)  # density x lit
        weights.mul_(1.0 - density)
        light_w.add_(lit)
        shade = density.sub_(lit)  # density x (1 - lit)
        horizon_w.add_(shade, alpha=0.55)
        zenith_w.add_(shade, alpha=0.15)

    # The land: a silhouette of rolling hills with a rough tree line, faintly lit by the sky.
    xs = coords.double().numpy()[:, None]
    ridge = recipe.horizon - np.abs((recipe.hill_amplitudes * np.sin(2 * np.pi * recipe.hill_frequencies * xs + recipe.hill_phases)).sum(-1))
    ridge = torch.from_numpy(ridge).float()
    land = _smoothstep(ridge - 0.5 / size, ridge + 0.5 / size, y)  # [S, S]
    weights.mul_(1.0 - land)
    horizon_w.add_(land, alpha=0.12)
    white_w.add_(land, alpha=0.01)

    if factor > 1:
        weights = torch.nn.functional.avg_pool2d(weights, factor)  # linear: the same as pooling the image
    colours = torch.from_numpy(palette.astype(np.float32)).transpose(1, 2)  # [F, 3, K]
    image = torch.matmul(colours, weights.flatten(2).transpose(0, 1))  # [F, 3, R*R]
    image = image.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
    return image.view(frames, 3, resolution, resolution).permute(0, 2, 3, 1).numpy()
