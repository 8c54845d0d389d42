"""Timeline edits: speed ramps from keyframes, reverse, ping-pong, freeze, offset, concatenation, loops.

Every node returns a new Timeline; the output fps travels with it (an edit never changes it).
"""

from __future__ import annotations

import torch

from stylegan_v import schedule
from stylegan_v.curves import INTERPOLATIONS, Curve
from stylegan_v.motions import loop_of

from .comfy_api_compat import io
from .editing_motion import loop_seconds
from .payloads import ModelType, MotionType, Timeline, TimelineType
from .timeline import MAX_FRAMES, UNITS, frame_count

INTERPOLATION_OPTIONS = list(reversed(INTERPOLATIONS))  # "smooth" first: the default


def keyframes(text: str, interpolation: str, what: str) -> Curve:
    try:
        return Curve.parse(text, interpolation)
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None


def curve_problems(text: str, interpolation: str, what: str, allow_empty: bool = False) -> list[str]:
    """What is wrong with a keyframe input (for validate_inputs: refused with the prompt, HTTP 400)."""
    # ComfyUI 0.3.75 does not check V3 combo values itself.
    problems = [] if interpolation in INTERPOLATION_OPTIONS else [
        f"interpolation '{interpolation}' must be one of {', '.join(INTERPOLATION_OPTIONS)}"]
    if not (allow_empty and not text.strip()):
        try:
            Curve.parse(text, "linear")
        except ValueError as e:
            problems.append(f"{what}: {e}")
    return problems


def timeline_from(t: torch.Tensor, fps: float, dataset_fps: float) -> Timeline:
    """A Timeline for edited timestamps; start_time and speed describe its first frame and average pace."""
    if t.numel() > MAX_FRAMES:
        raise ValueError(f"the timeline has {t.numel():,} frames, more than the limit of {MAX_FRAMES:,}")
    start = float(t[0]) / dataset_fps
    speed = float(t[-1] - t[0]) / dataset_fps / ((t.numel() - 1) / fps) if t.numel() > 1 else 1.0
    return Timeline(t=t, fps=fps, dataset_fps=dataset_fps, start_time=start, speed=speed)


def edited(timeline: Timeline, t: torch.Tensor) -> Timeline:
    return timeline_from(t, timeline.fps, timeline.dataset_fps)


class SpeedCurveTimeline(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_SpeedCurveTimeline",
            display_name="StyleGAN-V Speed Curve Timeline",
            category="StyleGAN-V/Timeline",
            description="A timeline whose playback speed follows keyframes, e.g. '0:1.0, 2:0.25, 4:1.0' eases "
                        "into 4x slow motion at 2 s and back to real time at 4 s. Slow motion renders more frames "
                        "per second of the training videos than they had: StyleGAN-V is continuous in time, so "
                        "the in-between instants are real frames, not interpolations.",
            inputs=[
                ModelType.Input("model", tooltip="The generator; its dataset fps defines real-time speed 1."),
                io.Float.Input("fps", default=25.0, min=1.0, max=240.0, step=1.0,
                               tooltip="Frames per second of the output video."),
                io.Float.Input("duration", default=6.0, min=0.01, max=1_000_000.0, step=0.5,
                               tooltip="Length of the output video, in the unit chosen below."),
                io.Combo.Input("unit", options=UNITS, default="seconds",
                               tooltip="Whether duration counts seconds or frames."),
                io.Float.Input("start_time", default=0.0, min=0.0, max=1_000_000.0, step=0.5,
                               tooltip="Where the video starts, in seconds of real-time playback."),
                io.String.Input("speed_keyframes", display_name="keyframes (seconds:speed)",
                                default="0:1.0, 2:0.25, 4:1.0",
                                tooltip="Playback speed at moments of the output video, as seconds:speed pairs "
                                        "separated by commas. 1 is real time, 0.25 is 4x slow motion, 0 "
                                        "freezes; the first and last speeds hold before and after."),
                io.Combo.Input("interpolation", options=INTERPOLATION_OPTIONS, default="smooth",
                               tooltip="smooth: speed eases in and out of every keyframe; linear: straight "
                                       "ramps between keyframes."),
            ],
            outputs=[TimelineType.Output(display_name="timeline", tooltip="Timestamps for the Render nodes.")],
        )

    @classmethod
    def validate_inputs(cls, unit: str, speed_keyframes: str, interpolation: str) -> bool | str:
        problems = curve_problems(speed_keyframes, interpolation, "speed_keyframes")
        if unit not in UNITS:
            problems.append(f"unit '{unit}' must be one of {', '.join(UNITS)}")
        return "; ".join(problems) or True

    @classmethod
    def execute(cls, model, fps: float, duration: float, unit: str, start_time: float, speed_keyframes: str,
                interpolation: str) -> io.NodeOutput:
        num_frames = frame_count(duration, unit, fps)
        if num_frames > MAX_FRAMES:
            raise ValueError(f"the timeline has {num_frames:,} frames, more than the limit of {MAX_FRAMES:,}; "
                             "lower duration or fps.")
        curve = keyframes(speed_keyframes, interpolation, "speed_keyframes")
        dataset_fps = float(model.model.generator.model_config.dataset_fps)
        t = schedule.speed_curve(num_frames, fps, dataset_fps, curve, start_time=start_time)
        return io.NodeOutput(timeline_from(t, fps, dataset_fps))


class ReverseTimeline(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_ReverseTimeline",
            display_name="StyleGAN-V Reverse Timeline",
            category="StyleGAN-V/Timeline",
            description="Plays a timeline backwards: the same frames, last one first.",
            inputs=[TimelineType.Input("timeline", tooltip="The timeline to reverse.")],
            outputs=[TimelineType.Output(display_name="timeline", tooltip="The reversed timeline.")],
        )

    @classmethod
    def execute(cls, timeline: Timeline) -> io.NodeOutput:
        return io.NodeOutput(edited(timeline, schedule.reverse(timeline.t)))


class PingPongTimeline(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_PingPongTimeline",
            display_name="StyleGAN-V Ping-Pong Timeline",
            category="StyleGAN-V/Timeline",
            description="Plays a timeline forwards then backwards, without repeating the turning frames, so the "
                        "result loops cleanly (2F - 2 frames from F).",
            inputs=[TimelineType.Input("timeline", tooltip="The timeline to play forth and back.")],
            outputs=[TimelineType.Output(display_name="timeline", tooltip="The ping-pong timeline.")],
        )

    @classmethod
    def execute(cls, timeline: Timeline) -> io.NodeOutput:
        return io.NodeOutput(edited(timeline, schedule.ping_pong(timeline.t)))


class FreezeTimeline(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_FreezeTimeline",
            display_name="StyleGAN-V Freeze Timeline",
            category="StyleGAN-V/Timeline",
            description="Holds one moment of a timeline still for a while (a freeze frame); the motion then "
                        "resumes where it stopped.",
            inputs=[
                TimelineType.Input("timeline", tooltip="The timeline to edit."),
                io.Float.Input("at_seconds", default=1.0, min=0.0, max=1_000_000.0, step=0.1,
                               tooltip="When to freeze, in seconds of the output video (rounded to a frame)."),
                io.Float.Input("hold_seconds", default=1.0, min=0.0, max=100_000.0, step=0.1,
                               tooltip="How long the frozen frame is held, in seconds of the output video."),
            ],
            outputs=[TimelineType.Output(display_name="timeline", tooltip="The timeline with the freeze.")],
        )

    @classmethod
    def execute(cls, timeline: Timeline, at_seconds: float, hold_seconds: float) -> io.NodeOutput:
        frame = round(at_seconds * timeline.fps)
        if frame >= timeline.num_frames:
            raise ValueError(f"at_seconds {at_seconds:g} is past the end of the timeline "
                             f"({(timeline.num_frames - 1) / timeline.fps:g} s, {timeline.num_frames} frames)")
        hold = round(hold_seconds * timeline.fps)
        if timeline.num_frames + hold > MAX_FRAMES:
            raise ValueError(f"holding {hold:,} frames makes the timeline longer than {MAX_FRAMES:,} frames")
        return io.NodeOutput(edited(timeline, schedule.freeze(timeline.t, frame, hold)))


class OffsetTimeline(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_OffsetTimeline",
            display_name="StyleGAN-V Offset Timeline",
            category="StyleGAN-V/Timeline",
            description="Shifts a timeline later (or earlier) in the motion, keeping its frame count, speed and "
                        "fps: a later stretch of the same motion.",
            inputs=[
                TimelineType.Input("timeline", tooltip="The timeline to shift."),
                io.Float.Input("seconds", default=1.0, min=-1_000_000.0, max=1_000_000.0, step=0.1,
                               tooltip="Shift in seconds of real-time playback (the model's dataset fps); "
                                       "negative moves earlier, but not before the motion's start."),
            ],
            outputs=[TimelineType.Output(display_name="timeline", tooltip="The shifted timeline.")],
        )

    @classmethod
    def execute(cls, timeline: Timeline, seconds: float) -> io.NodeOutput:
        earliest = float(timeline.t.min()) / timeline.dataset_fps
        if earliest + seconds < 0:
            raise ValueError(f"an offset of {seconds:g} s moves the timeline before the motion's start (its earliest "
                             f"instant is {earliest:g} s); use at least {-earliest:g}")
        t = schedule.offset(timeline.t, seconds * timeline.dataset_fps)  # refuses NaN and the model-time limit
        return io.NodeOutput(edited(timeline, t))


class ConcatTimelines(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_ConcatTimelines",
            display_name="StyleGAN-V Concatenate Timelines",
            category="StyleGAN-V/Timeline",
            description="Plays one timeline after another (e.g. a normal stretch, then a slow-motion replay). "
                        "Both must have the same fps and come from the same model.",
            inputs=[
                TimelineType.Input("first", tooltip="The timeline played first."),
                TimelineType.Input("second", tooltip="The timeline played after it."),
            ],
            outputs=[TimelineType.Output(display_name="timeline", tooltip="Both timelines, one after the other.")],
        )

    @classmethod
    def execute(cls, first: Timeline, second: Timeline) -> io.NodeOutput:
        if first.fps != second.fps:
            raise ValueError(f"cannot concatenate timelines of different fps ({first.fps:g} and {second.fps:g}); "
                             "make them equal")
        if first.dataset_fps != second.dataset_fps:
            raise ValueError("cannot concatenate timelines made for models of different dataset fps "
                             f"({first.dataset_fps:g} and {second.dataset_fps:g})")
        return io.NodeOutput(edited(first, schedule.concat(first.t, second.t)))


class LoopTimeline(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_LoopTimeline",
            display_name="StyleGAN-V Loop Timeline",
            category="StyleGAN-V/Timeline",
            description="Exactly one period (or several) of a looping motion from StyleGAN-V Loop Motion, ending "
                        "one frame before it wraps, so the video repeats with no jump. The frame count is the "
                        "period times fps, rounded; time is stretched slightly to fit it exactly.",
            inputs=[
                ModelType.Input("model", tooltip="The generator the motion is rendered with."),
                MotionType.Input("motion", tooltip="A looping motion (Loop Motion, possibly blended or scaled)."),
                io.Float.Input("fps", default=25.0, min=1.0, max=240.0, step=1.0,
                               tooltip="Frames per second of the output video."),
                io.Int.Input("periods", default=1, min=1, max=1000,
                             tooltip="How many times the loop plays in the video."),
            ],
            outputs=[TimelineType.Output(display_name="timeline", tooltip="The loop's timestamps, for Render.")],
        )

    @classmethod
    def execute(cls, model, motion, fps: float, periods: int) -> io.NodeOutput:
        loop = loop_of(motion)
        if loop is None:
            raise ValueError("Loop Timeline needs a looping motion: connect StyleGAN-V Loop Motion (blends and "
                             "intensity of loops work too)")
        generator = model.model.generator
        dataset_fps = float(generator.model_config.dataset_fps)
        num_frames = max(1, round(loop_seconds(generator, loop) * fps)) * periods
        if num_frames > MAX_FRAMES:
            raise ValueError(f"the loop has {num_frames:,} frames, more than the limit of {MAX_FRAMES:,}")
        t = schedule.loop(num_frames, loop.period(generator) * periods)
        return io.NodeOutput(timeline_from(t, fps, dataset_fps))


NODES = [SpeedCurveTimeline, ReverseTimeline, PingPongTimeline, FreezeTimeline, OffsetTimeline, ConcatTimelines,
         LoopTimeline]
