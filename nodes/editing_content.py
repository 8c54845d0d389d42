"""Content edits: class selection, keyframed morphs, style mixing by layer range, latent directions with keyframed
strength."""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_management as mm
import torch

from stylegan_v import content as edits
from stylegan_v import render
from stylegan_v.batching import combined_batch
from stylegan_v.curves import Curve

from .comfy_api_compat import io
from .editing_timeline import INTERPOLATION_OPTIONS, curve_problems, keyframes
from .loader import generator_on_device
from .payloads import Content, ContentType, ModelType, Timeline, TimelineType
from .sampling import MAX_BATCH, MAX_SEED, VARIETY_LABEL, VARIETY_TOOLTIP

DirectionType = io.Custom("STYLEGAN_V_DIRECTION")
MAX_LAYER = 63


@dataclass(frozen=True)
class Direction:
    """A direction in w space: [w_dim] (every layer) or [num_ws, w_dim] (per layer)."""

    vector: torch.Tensor
    source: str


def check_pair(a: Content, b: Content, what: str) -> int:
    """The batch size of an edit combining two contents, or an error naming the mismatch."""
    if a.latent_shape != b.latent_shape:
        raise ValueError(f"{what}: the two contents come from different models (latents {list(a.latent_shape)} "
                         f"and {list(b.latent_shape)})")
    try:
        return combined_batch(a.batch_size, b.batch_size, "the first content's", "the second's")
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None


def labels_for(a: Content, b: Content, batch: int) -> torch.Tensor | None:
    """Class labels of a two-content edit: the first content's (conditional models only)."""
    source = a.c if a.c is not None else b.c
    return None if source is None else source.expand(batch, -1) if source.shape[0] == 1 else source


def tensor_content(content: Content, what: str) -> torch.Tensor:
    if not isinstance(content.ws, torch.Tensor):
        raise ValueError(f"{what} needs contents that are fixed latents (from Sample Content or Load Content), "
                         "not a morph or a direction applied over time")
    return content.ws


def frame_curve(text: str, interpolation: str, timeline: Timeline, what: str) -> torch.Tensor:
    """Per-frame values of a curve keyed in seconds of the output video."""
    curve = keyframes(text, interpolation, what)
    return edits.per_frame(curve, timeline.num_frames, timeline.fps)


class MorphContent(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_MorphContent",
            display_name="StyleGAN-V Morph Content",
            category="StyleGAN-V/Content",
            description="Morphs from one content to another over the timeline while the motion carries on. "
                        "Keyframes give the mix at moments of the video: 0 is exactly the first content, "
                        "1 exactly the second. Leave them empty to morph from the first frame to the last.",
            inputs=[
                ContentType.Input("content_from", tooltip="The content at weight 0."),
                ContentType.Input("content_to", tooltip="The content at weight 1."),
                TimelineType.Input("timeline", tooltip="The timeline the morph is rendered with (its fps places "
                                                       "the keyframes)."),
                io.String.Input("keyframes", display_name="keyframes (seconds:mix)", default="",
                                placeholder="empty: morph over the whole video",
                                tooltip="When the morph happens, as seconds:mix pairs (mix 0 is content_from, 1 is "
                                        "content_to), e.g. '1:0, 3:1' holds the first content until 1 s and has "
                                        "fully become the second at 3 s. Empty: 0 at the first frame to 1 at the "
                                        "last."),
                io.Combo.Input("interpolation", options=INTERPOLATION_OPTIONS, default="smooth",
                               tooltip="smooth: eases in and out of every keyframe; linear: constant rate."),
            ],
            outputs=[ContentType.Output(display_name="content", tooltip="The morphing content, for Render.")],
        )

    @classmethod
    def validate_inputs(cls, keyframes: str, interpolation: str) -> bool | str:
        return "; ".join(curve_problems(keyframes, interpolation, "keyframes", allow_empty=True)) or True

    @classmethod
    def execute(cls, content_from: Content, content_to: Content, timeline: Timeline, keyframes: str,
                interpolation: str) -> io.NodeOutput:
        batch = check_pair(content_from, content_to, "Morph Content")
        if keyframes.strip():
            weights = frame_curve(keyframes, interpolation, timeline, "keyframes")
        else:
            end = (timeline.num_frames - 1) / timeline.fps
            curve = Curve((0.0, end), (0.0, 1.0), interpolation) if timeline.num_frames > 1 else Curve.constant(0)
            weights = edits.per_frame(curve, timeline.num_frames, timeline.fps)
        morph = edits.Morph(content_from.ws, content_to.ws, weights)
        return io.NodeOutput(Content(ws=morph, c=labels_for(content_from, content_to, batch)))


class StyleMix(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_StyleMix",
            display_name="StyleGAN-V Style Mix",
            category="StyleGAN-V/Content",
            description="Takes a range of synthesis layers from another content: the first layers hold coarse "
                        "structure (layout, shape, pose), the last ones fine detail and colour.",
            inputs=[
                ContentType.Input("content", tooltip="The content to change."),
                ContentType.Input("style_source", tooltip="The content whose layers are taken."),
                io.Int.Input("first_layer", default=0, min=0, max=MAX_LAYER,
                             tooltip="First layer taken from style_source (0 is the coarsest)."),
                io.Int.Input("last_layer", default=3, min=0, max=MAX_LAYER,
                             tooltip="Last layer taken from style_source, inclusive; must be below the model's "
                                     "number of layers (num_ws)."),
            ],
            outputs=[ContentType.Output(display_name="content", tooltip="The mixed content, for Render.")],
        )

    @classmethod
    def validate_inputs(cls, first_layer: int, last_layer: int) -> bool | str:
        return True if first_layer <= last_layer else \
            f"first_layer ({first_layer}) must not be above last_layer ({last_layer})"

    @classmethod
    def execute(cls, content: Content, style_source: Content, first_layer: int, last_layer: int) -> io.NodeOutput:
        batch = check_pair(content, style_source, "Style Mix")
        mixed = edits.style_mix(tensor_content(content, "Style Mix"), tensor_content(style_source, "Style Mix"),
                                first_layer, last_layer)
        return io.NodeOutput(Content(ws=mixed, c=labels_for(content, style_source, batch)))


class DirectionFromContents(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_DirectionFromContents",
            display_name="StyleGAN-V Direction From Contents",
            category="StyleGAN-V/Content",
            description="The latent direction leading from one content to another (averaged over the batch, so "
                        "several examples of the same change give a cleaner direction). Apply it to any content "
                        "with StyleGAN-V Apply Direction, or save it.",
            inputs=[
                ContentType.Input("content_from", tooltip="Where the direction starts (e.g. neutral faces)."),
                ContentType.Input("content_to", tooltip="Where it leads (e.g. the same faces smiling)."),
            ],
            outputs=[DirectionType.Output(display_name="direction", tooltip="The direction [num_ws, w_dim].")],
        )

    @classmethod
    def execute(cls, content_from: Content, content_to: Content) -> io.NodeOutput:
        check_pair(content_from, content_to, "Direction From Contents")
        vector = edits.direction_between(tensor_content(content_from, "Direction From Contents"),
                                         tensor_content(content_to, "Direction From Contents"))
        return io.NodeOutput(Direction(vector=vector, source="difference of two contents"))


class ApplyDirection(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_ApplyDirection",
            display_name="StyleGAN-V Apply Direction",
            category="StyleGAN-V/Content",
            description="Moves content along a latent direction (e.g. older, smiling, brighter sky) by strength "
                        "times a keyframed curve, so the edit can fade in and out over the video.",
            inputs=[
                ContentType.Input("content", tooltip="The content to edit."),
                DirectionType.Input("direction", tooltip="From Direction From Contents or Load Direction."),
                TimelineType.Input("timeline", tooltip="The timeline the edit is rendered with (its fps places "
                                                       "the keyframes)."),
                io.Float.Input("strength", default=1.0, min=-100.0, max=100.0, step=0.1,
                               tooltip="How far to move along the direction; negative goes the other way."),
                io.String.Input("strength_keyframes", display_name="keyframes (seconds:factor)", default="0:1",
                                tooltip="seconds:factor pairs multiplying strength over the video, e.g. "
                                        "'0:0, 2:1, 4:0' fades the edit in and out. '0:1' is constant."),
                io.Combo.Input("interpolation", options=INTERPOLATION_OPTIONS, default="smooth",
                               tooltip="smooth: eases in and out of every keyframe; linear: constant rate."),
            ],
            outputs=[ContentType.Output(display_name="content", tooltip="The edited content, for Render.")],
        )

    @classmethod
    def validate_inputs(cls, strength_keyframes: str, interpolation: str) -> bool | str:
        return "; ".join(curve_problems(strength_keyframes, interpolation, "strength_keyframes")) or True

    @classmethod
    def execute(cls, content: Content, direction: Direction, timeline: Timeline, strength: float,
                strength_keyframes: str, interpolation: str) -> io.NodeOutput:
        try:
            edits.check_direction(direction.vector, content.latent_shape)
        except ValueError as e:
            raise ValueError(f"{direction.source}: {e}") from None
        strengths = strength * frame_curve(strength_keyframes, interpolation, timeline, "strength_keyframes")
        edited = edits.Direction(content.ws, direction.vector, strengths)
        return io.NodeOutput(Content(ws=edited, c=content.c))


def parse_classes(text: str) -> list[int]:
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise ValueError("classes is empty; list one class index per video, e.g. '0, 5, 12'")
    if not all(p.isdigit() for p in parts):
        raise ValueError(f"classes must be whole numbers >= 0 separated by commas, e.g. '0, 5, 12'; got {text!r}")
    if len(parts) > MAX_BATCH:
        raise ValueError(f"classes lists {len(parts)} videos, more than {MAX_BATCH}")
    return [int(p) for p in parts]


class SampleContentByClass(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_SampleContentByClass",
            display_name="StyleGAN-V Sample Content by Class",
            category="StyleGAN-V/Content",
            description="For class-conditional models (e.g. UCF-101 actions): one video per listed class, so a "
                        "batch can show chosen classes side by side. Video b uses the same content noise as "
                        "Sample Content's video b, so listing one class for all equals Sample Content with that "
                        "class_index.",
            inputs=[
                ModelType.Input("model", tooltip="A class-conditional generator."),
                io.Int.Input("seed", default=0, min=0, max=MAX_SEED, control_after_generate=True,
                             tooltip="Random seed of the content latents."),
                io.String.Input("classes", default="0, 1",
                                tooltip="Class index of each video, separated by commas (e.g. '0, 5, 12' makes "
                                        "three videos); the count is the batch size."),
                io.Float.Input("truncation_psi", display_name=VARIETY_LABEL, default=1.0, min=0.0, max=2.0,
                               step=0.05, tooltip=VARIETY_TOOLTIP),
            ],
            outputs=[ContentType.Output(display_name="content", tooltip="Content latents and their class labels.")],
        )

    @classmethod
    def validate_inputs(cls, classes: str) -> bool | str:
        try:
            parse_classes(classes)
        except ValueError as e:
            return str(e)
        return True

    @classmethod
    def execute(cls, model, seed: int, classes: str, truncation_psi: float) -> io.NodeOutput:
        chosen = parse_classes(classes)
        generator = generator_on_device(model)
        if not generator.c_dim:
            raise ValueError("this model is not class-conditional: use StyleGAN-V Sample Content")
        if max(chosen) >= generator.c_dim:
            raise ValueError(f"class {max(chosen)} is out of range: this model has {generator.c_dim} classes "
                             f"(0 to {generator.c_dim - 1})")
        ws = render.sample_content(generator, seed, len(chosen), truncation_psi=truncation_psi, class_index=chosen,
                                   device=mm.intermediate_device())
        return io.NodeOutput(Content(ws=ws, c=render.class_labels(generator, seed, len(chosen), chosen)))


NODES = [SampleContentByClass, MorphContent, StyleMix, DirectionFromContents, ApplyDirection]
