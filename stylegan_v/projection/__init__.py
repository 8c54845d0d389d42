"""Projection: the latents that make the model draw a given picture or clip (image and video to video).

    from stylegan_v.projection import FAST, project_images, project_video
    fit = project_images(G, target, t=4.0, motion=MotionSeed(3))   # target raw [B, 3, H, W] in [-1, 1]
    clip_fit = project_video(G, clip, fps=25.0)                    # clip raw [F, 3, H, W], F >= 2 (FAST_VIDEO)
    render.render(G, clip_fit.ws, clip_fit.motion, later_times)    # continues past the clip's end

Content. ws = centre + spread * delta, where the centre is the model's w_avg (a class's mean
w for conditional models) and the spread is the per-dimension standard deviation of w, so the
learning rate and the regulariser (w_reg * mean(delta^2)) are in units of the model's own
variety. `latent="w"` fits one vector for all layers, `"w+"` one per layer (the default:
+3.4 dB on held-out procedural sky frames of the demo model, 25.8 vs 22.4 dB, at equal steps).
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
smoothly (codes just past the end mix fitted and fresh noise). Keeping fitted codes as the
result instead leaves the continuation's codes undefined, and in a like-for-like trial on a
generated 16-frame clip of the previous (shapes) demo model (100 steps, 8 frames a step, codes
fitted from a random start) it moved less: the fit's per-frame change was 0.40-0.48 of the
target's with codes against 0.70 with noise, at the same PSNR (29.0 dB). Neighbouring frames are drawn in pairs and their differences get a
loss term of their own (motion_weight), because pixel errors are dominated by what the
frames share, which is how a fit ends up with near-identical frames. And a search started
from one random noise settles on a timid average motion when its phases start wrong, so
`project_video` fits the few codes that the clip reads (two for 16 frames at Δ = 16) directly,
with the content, and only at the end fits the noise to those codes through the motion
network's convolution alone, from several seeds at once (matched to under 0.1% relative
error on the clips measured).
An earlier version gave every frame a free motion vector instead; on the sky demo model the
noise could then match those vectors only to 37-53% relative error, and the motion collapsed
when the search switched to the noise (per-frame change 0.08-0.22 of the target's). The
content starts from the best of 64 random w judged on four frames of the clip: the sky model's
w ranges from day to night (w_avg draws its generated frames at 11 dB, the worst at 5 dB), so
from w_avg a search with the motion free starts far from the clip. On six
generated 16-frame clips (150 steps) these two changes took the clips that meet both clip
targets (>= 25 dB, change within 2x) from none to four; 300 steps (`FAST_VIDEO`) gives five.
On that model w+ content can make even an unfitted motion move like the clip (the motion frozen
at its seed: 30.6 dB and change 1.02 on the test's clip), so what shows that the motion was
fitted is that it beats the motion the search started from (by 6-8 dB on three clips).

Loss: mean squared pixel error plus a perceptual distance (see `perceptual`) whose weights
are on the machine already: the FID Inception network of the metrics extra, or the
checkpoint's own discriminator. On the sky demo model, 150 steps, four targets each
(`python -m stylegan_v.projection_benchmark figures`), Inception improved both PSNR and
the Inception distance of generated frames (w+: 36.2 vs 34.5 dB, 0.034 vs 0.059) at 3-7x
the time on a CPU; `perceptual="auto"` therefore uses it when it is installed and falls back
to pixels, saying so, when it is not.

Progress and interruption: a callback receives a `Progress` after every step; raising from
it (e.g. `ProjectionInterrupted`, or ComfyUI's interrupt) stops the search between steps.
"""

from ..lazy import lazy_exports

# Imported on first use: the command line reads `config` for its choices without loading torch.
_EXPORTS = {
    "FAST": "config",
    "FAST_VIDEO": "config",
    "VIDEO_PRESETS": "config",
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
__all__ = ["FAST", "FAST_VIDEO", "PRESETS", "QUALITY", "VIDEO_PRESETS", "FittedMotion", "ImageProjection",
           "PerceptualUnavailable", "Progress", "ProjectionConfig", "ProjectionInterrupted", "VideoProjection", "baselines", "clip_noise_length",
           "dataset_fps_of", "frame_change", "inception_available", "inception_distance", "project_images",
           "project_video", "psnr", "w_statistics"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
