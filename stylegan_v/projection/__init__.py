"""Projection: the latents that make the model draw a given picture or clip (image and video to video).

    from stylegan_v.projection import FAST, project_images, project_video
    fit = project_images(G, target, t=4.0, motion=MotionSeed(3))   # target raw [B, 3, H, W] in [-1, 1]
    clip_fit = project_video(G, clip, fps=25.0)                    # clip raw [F, 3, H, W], F >= 2
    render.render(G, clip_fit.ws, clip_fit.motion, later_times)    # continues past the clip's end

Content. ws = centre + spread * delta, where the centre is the model's w_avg (a class's mean
w for conditional models) and the spread is the per-dimension standard deviation of w, so the
learning rate and the regulariser (w_reg * mean(delta^2)) are in units of the model's own
variety. `latent="w"` fits one vector for all layers, `"w+"` one per layer (the default:
+6.6 dB on held-out procedural frames of the demo model, 29.5 vs 22.9 dB, at equal steps).
Adam with a short warm-up and a cosine ramp-down; noise on delta early on helps it out of
poor minima (all random choices come from `config.seed`, drawn on the CPU, so a seed gives
the same search on any device).

Motion: the noise is fitted, not the codes. A motion is a noise sequence; code j is a
convolution of noise j .. j+20, and v(t) reads the codes either side of t. Fitting the
noise vectors that the clip's codes read (`clip_noise_length`) keeps the motion the model's
own kind of object: the noise is held near the standard normal shell (noise_reg), every
code stays a code the motion network can produce, and past the fitted prefix the sequence
simply continues with seeded noise (`FittedMotion`), which is how the model itself extends
a motion, so the continuation is as plausible as any sampled motion and joins the clip
smoothly (codes just past the end mix fitted and fresh noise). Fitting the codes instead
leaves the continuation's codes undefined, and in a like-for-like trial on a generated
16-frame clip of the demo model (100 steps, 8 frames a step) it moved less: the fit's
per-frame change was 0.40-0.48 of the target's with codes against 0.70 with noise, at the
same PSNR (29.0 dB). Neighbouring frames are drawn in pairs and their differences get a
loss term of their own (motion_weight), because pixel errors are dominated by what the
frames share, which is how a fit ends up with near-identical frames. And a search started
from one random noise settles on a timid average motion when its phases start wrong, so
`project_video` first gives every frame a free motion vector (no phases to get wrong), then
fits the noise to those vectors through the motion network alone from several seeds at once,
and only then fits content and noise together. On two generated clips (150 steps, weight 3)
the fit's per-frame change went from 0.43 and 0.79 of the target's without that first stage
to 0.95 and 0.80 with it, at 25.2-30.4 dB either way.

Loss: mean squared pixel error plus a perceptual distance (see `perceptual`) whose weights
are on the machine already: the FID Inception network of the metrics extra, or the
checkpoint's own discriminator. On the demo model, 150 steps, four targets each
(`python -m stylegan_v.projection_benchmark figures`), Inception improved both PSNR and
the Inception distance of generated frames (w: 37.8 vs 36.1 dB, 0.012 vs 0.028) at 5-10x
the time on a CPU; `perceptual="auto"` therefore uses it when it is installed and falls back
to pixels, saying so, when it is not.

Progress and interruption: a callback receives a `Progress` after every step; raising from
it (e.g. `ProjectionInterrupted`, or ComfyUI's interrupt) stops the search between steps.
"""

from ..lazy import lazy_exports

# Imported on first use: the command line reads `config` for its choices without loading torch.
_EXPORTS = {
    "FAST": "config",
    "PRESETS": "config",
    "QUALITY": "config",
    "ProjectionConfig": "config",
    "ImageProjection": "fit",
    "Progress": "fit",
    "ProjectionInterrupted": "fit",
    "VideoProjection": "fit",
    "clip_noise_length": "fit",
    "dataset_fps_of": "fit",
    "project_images": "fit",
    "project_video": "fit",
    "w_statistics": "fit",
    "FittedMotion": "fitted_motion",
    "PerceptualUnavailable": "perceptual",
    "inception_available": "perceptual",
    "baselines": "quality",
    "frame_change": "quality",
    "inception_distance": "quality",
    "psnr": "quality",
}
__all__ = ["FAST", "PRESETS", "QUALITY", "FittedMotion", "ImageProjection", "PerceptualUnavailable", "Progress",
           "ProjectionConfig", "ProjectionInterrupted", "VideoProjection", "baselines", "clip_noise_length",
           "dataset_fps_of", "frame_change", "inception_available", "inception_distance", "project_images",
           "project_video", "psnr", "w_statistics"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
