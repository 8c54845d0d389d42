"""Timeline: which instants to render, from output fps, duration, start and speed."""

from __future__ import annotations

import math

from stylegan_v import render

from .comfy_api_compat import io
from .payloads import ModelType, Timeline, TimelineType

MAX_FRAMES = 10_000_000  # t is kept as a float64 vector: 80 MB at this length
UNITS = ["seconds", "frames"]


def frame_count(duration: float, unit: str, fps: float) -> int:
    """Frames covering `duration`; a partial last frame counts (so there is always one)."""
    exact = duration if unit == "frames" else duration * fps
    return max(1, math.ceil(exact - 1e-6))


class MakeTimeline(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_Timeline",
            display_name="StyleGAN-V Timeline",
            category="StyleGAN-V",
            description="Sets the frame rate, length, start and speed of the videos. StyleGAN-V is continuous "
                        "in time, so any frame rate works; speed 1 plays at the speed of the training videos "
                        "(the model's dataset fps).",
            inputs=[
                ModelType.Input("model", tooltip="The generator; its dataset fps defines real-time speed."),
                io.Float.Input("fps", default=25.0, min=1.0, max=240.0, step=1.0,
                               tooltip="Frames per second of the output video."),
                io.Float.Input("duration", default=4.0, min=0.01, max=1_000_000.0, step=0.5,
                               tooltip="Length of the video, in the unit chosen below."),
                io.Combo.Input("unit", options=UNITS, default="seconds",
                               tooltip="Whether duration counts seconds or frames."),
                io.Float.Input("start_time", default=0.0, min=0.0, max=1_000_000.0, step=0.5,
                               tooltip="Where the video starts, in seconds of real-time playback."),
                io.Float.Input("speed", default=1.0, min=0.01, max=100.0, step=0.05,
                               tooltip="Playback speed: 2 moves twice as fast, 0.5 is slow motion."),
            ],
            outputs=[TimelineType.Output(display_name="timeline", tooltip="Timestamps for the Render nodes.")],
        )

    @classmethod
    def validate_inputs(cls, unit: str) -> bool | str:
        # ComfyUI 0.3.75 does not check V3 combo values itself.
        return True if unit in UNITS else f"unit '{unit}' must be one of {', '.join(UNITS)}"

    @classmethod
    def execute(cls, model, fps: float, duration: float, unit: str, start_time: float, speed: float) -> io.NodeOutput:
        num_frames = frame_count(duration, unit, fps)
        if num_frames > MAX_FRAMES:
            raise ValueError(f"the timeline has {num_frames:,} frames, more than the limit of {MAX_FRAMES:,}; "
                             "lower duration or fps.")
        dataset_fps = float(model.model.generator.model_config.dataset_fps)
        t = render.timestamps(num_frames, fps, dataset_fps, start_time=start_time, speed=speed)
        return io.NodeOutput(Timeline(t=t, fps=fps, dataset_fps=dataset_fps, start_time=start_time, speed=speed))
