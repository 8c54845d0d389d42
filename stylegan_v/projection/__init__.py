"""Projection: find the latents that make the model draw a given picture or clip.

(docstring completed below once the comparison figures are in)
"""

from .config import FAST, PRESETS, QUALITY, ProjectionConfig
from .fit import (ImageProjection, Progress, ProjectionInterrupted, VideoProjection, clip_noise_length,
                  dataset_fps_of, project_images, project_video, w_statistics)
from .quality import baselines, frame_change, inception_distance, psnr
from .fitted_motion import FittedMotion
from .perceptual import PerceptualUnavailable, inception_available

__all__ = ["FAST", "PRESETS", "QUALITY", "FittedMotion", "ImageProjection", "PerceptualUnavailable", "Progress",
           "ProjectionConfig", "baselines", "frame_change", "inception_distance", "ProjectionInterrupted", "VideoProjection", "clip_noise_length", "dataset_fps_of",
           "inception_available", "project_images", "project_video", "psnr", "w_statistics"]
