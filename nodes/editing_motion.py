"""Motion edits: seamless loops, blending two motions, motion intensity, and content x motion grids."""

from __future__ import annotations

from stylegan_v.grids import content_motion_grid
from stylegan_v.motions import BlendedMotion, LoopingMotion, ScaledMotion, loop_period_codes

from .comfy_api_compat import io
from .payloads import Content, ContentType, ModelType, MotionType
from .sampling import MAX_BATCH, MAX_SEED

MAX_LOOP_SECONDS = 3600.0


def motion_batch(motion) -> int:
    """The motion's batch size, or a clear error when its parts cannot be combined."""
    try:
        return motion.batch_size
    except ValueError as e:
        raise ValueError(f"these motions cannot be combined: {e}") from None


def loop_seconds(generator, loop: LoopingMotion) -> float:
    return loop.period(generator) / float(generator.model_config.dataset_fps)


class LoopMotion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_LoopMotion",
            display_name="StyleGAN-V Loop Motion",
            category="StyleGAN-V/Motion",
            description="Seeded motion that repeats seamlessly: its motion codes repeat with the chosen period, so "
                        "the frame after the last one is the first. Render it with StyleGAN-V Loop Timeline to get "
                        "exactly one period, which loops with no jump.",
            inputs=[
                ModelType.Input("model", tooltip="The generator; its dataset fps and motion code spacing set how "
                                                 "periods in seconds are rounded."),
                io.Int.Input("seed", default=0, min=0, max=MAX_SEED, control_after_generate=True,
                             tooltip="Random seed of the motion noise."),
                io.Int.Input("batch_size", default=1, min=1, max=MAX_BATCH,
                             tooltip="Number of looping motions; 1 shares one motion among all contents."),
                io.Float.Input("period_seconds", default=2.0, min=0.01, max=MAX_LOOP_SECONDS, step=0.1,
                               tooltip="Length of one loop at real-time speed, in seconds. It is rounded to a "
                                       "whole number of motion codes (the rounded_period output says to what)."),
            ],
            outputs=[
                MotionType.Output(display_name="motion", tooltip="The looping motion, for Render and Loop Timeline."),
                # Named apart from the period_seconds widget: it is the result of rounding, not a copy of it.
                io.Float.Output(display_name="rounded_period",
                                tooltip="Optional: the loop's true length in seconds, period_seconds rounded to "
                                        "whole motion codes, for a node that needs it (Loop Timeline already "
                                        "renders whole periods)."),
            ],
        )

    @classmethod
    def execute(cls, model, seed: int, batch_size: int, period_seconds: float) -> io.NodeOutput:
        generator = model.model.generator
        codes = loop_period_codes(period_seconds, float(generator.model_config.dataset_fps),
                                  generator.synthesis.motion_encoder.distance)
        motion = LoopingMotion(seed=seed, batch_size=batch_size, period_codes=codes)
        return io.NodeOutput(motion, loop_seconds(generator, motion))


class BlendMotion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_BlendMotion",
            display_name="StyleGAN-V Blend Motion",
            category="StyleGAN-V/Motion",
            description="Mixes two motions by interpolating their motion codes: weight 0 is exactly motion a, "
                        "1 exactly motion b. Two loops can be blended if they have the same period.",
            inputs=[
                MotionType.Input("motion_a", tooltip="The motion at weight 0."),
                MotionType.Input("motion_b", tooltip="The motion at weight 1."),
                io.Float.Input("weight", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="How much of motion b: 0 gives motion a, 1 gives motion b."),
            ],
            outputs=[MotionType.Output(display_name="motion", tooltip="The blended motion, for Render.")],
        )

    @classmethod
    def execute(cls, motion_a, motion_b, weight: float) -> io.NodeOutput:
        blended = BlendedMotion(motion_a, motion_b, weight)  # refuses loops of different periods
        motion_batch(blended)
        return io.NodeOutput(blended)


class MotionIntensity(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_MotionIntensity",
            display_name="StyleGAN-V Motion Intensity",
            category="StyleGAN-V/Motion",
            description="Calms or exaggerates a motion by pulling its motion codes toward the model's average "
                        "code, like truncation psi does for content: 1 keeps the motion, 0 leaves only the "
                        "model's smallest movements, above 1 exaggerates.",
            inputs=[
                MotionType.Input("motion", tooltip="The motion to scale."),
                io.Float.Input("intensity", default=0.5, min=0.0, max=3.0, step=0.05,
                               tooltip="1: unchanged; 0: the average motion code; above 1: exaggerated."),
            ],
            outputs=[MotionType.Output(display_name="motion", tooltip="The scaled motion, for Render.")],
        )

    @classmethod
    def execute(cls, motion, intensity: float) -> io.NodeOutput:
        return io.NodeOutput(ScaledMotion(motion, intensity))


class ContentMotionGrid(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_ContentMotionGrid",
            display_name="StyleGAN-V Content x Motion Grid",
            category="StyleGAN-V/Edit",
            description="Pairs every content with every motion (B contents x R motions = B*R videos), as in the "
                        "paper's decomposition figures. Connect grid_columns to Render's grid_columns to tile "
                        "them: each row shares a motion, each column shares a content.",
            inputs=[
                ContentType.Input("content", tooltip="B contents: the columns of the grid."),
                MotionType.Input("motion", tooltip="R motions: the rows of the grid."),
            ],
            outputs=[
                ContentType.Output(display_name="content", tooltip="B*R contents, for Render."),
                MotionType.Output(display_name="motion", tooltip="B*R motions, for Render."),
                io.Int.Output(display_name="grid_columns",
                              tooltip="B, for Render's grid_columns (convert that widget to an input)."),
            ],
        )

    @classmethod
    def execute(cls, content: Content, motion) -> io.NodeOutput:
        if content.batch_size * motion_batch(motion) > MAX_BATCH:
            raise ValueError(f"a grid of {content.batch_size} contents x {motion.batch_size} motions has "
                             f"{content.batch_size * motion.batch_size} videos, more than {MAX_BATCH}; use fewer.")
        ws, grid_motion, columns = content_motion_grid(content.ws, motion)
        c = None
        if content.c is not None:
            c = content.c.expand(content.batch_size, -1)[[i % columns for i in range(grid_motion.batch_size)]]
        return io.NodeOutput(Content(ws=ws, c=c), grid_motion, columns)


NODES = [LoopMotion, BlendMotion, MotionIntensity, ContentMotionGrid]
