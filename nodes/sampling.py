"""Sample Content and Sample Motion: the two latents of a StyleGAN-V video."""

from __future__ import annotations

import comfy.model_management as mm

from stylegan_v import render

from .comfy_api_compat import io
from .loader import generator_on_device
from .payloads import Content, ContentType, ModelType, MotionType

MAX_SEED = 0xFFFF_FFFF_FFFF_FFFF
MAX_BATCH = 64
# truncation_psi as the node shows it: the input id keeps the paper's name, the label says what it does.
VARIETY_LABEL = "variety (truncation psi)"
VARIETY_TOOLTIP = ("How varied the content is (the truncation trick): 1 samples the model's full variety, lower "
                   "values pull toward the average content (more typical and cleaner), 0 is the average itself.")


class SampleContent(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_SampleContent",
            display_name="StyleGAN-V Sample Content",
            category="StyleGAN-V",
            description="Draws what the videos show (appearance, scene, identity): one w latent per video, "
                        "through the model's mapping network. The same seed gives the same content on any device.",
            inputs=[
                ModelType.Input("model", tooltip="The generator from Load StyleGAN-V Model."),
                io.Int.Input("seed", default=0, min=0, max=MAX_SEED, control_after_generate=True,
                             tooltip="Random seed of the content latents."),
                io.Int.Input("batch_size", default=1, min=1, max=MAX_BATCH,
                             tooltip="Number of videos (different contents drawn from the seed)."),
                io.Float.Input("truncation_psi", display_name=VARIETY_LABEL, default=1.0, min=0.0, max=2.0,
                               step=0.05, tooltip=VARIETY_TOOLTIP),
                io.Int.Input("class_index", display_name="class (-1 = from seed)", default=-1, min=-1, max=100_000,
                             tooltip="Only for class-conditional models (e.g. UCF-101 actions): the class to "
                                     "generate; -1 picks one per video from the seed. Unconditional models, such as "
                                     "the bundled demo, ignore it."),
            ],
            outputs=[ContentType.Output(display_name="content", tooltip="Content latents for the Render nodes.")],
        )

    @classmethod
    def execute(cls, model, seed: int, batch_size: int, truncation_psi: float, class_index: int) -> io.NodeOutput:
        generator = generator_on_device(model)
        c_dim = generator.c_dim
        if c_dim and class_index >= c_dim:
            raise ValueError(f"class_index {class_index} is out of range: this model has {c_dim} classes "
                             f"(0 to {c_dim - 1}, or -1 for a seeded random class per video).")
        chosen = class_index if c_dim and class_index >= 0 else None
        ws = render.sample_content(generator, seed, batch_size, truncation_psi=truncation_psi,
                                   class_index=chosen, device=mm.intermediate_device())
        # The same labels sample_content used: the motion path of conditional models needs them too.
        c = render.class_labels(generator, seed, batch_size, chosen) if c_dim else None
        return io.NodeOutput(Content(ws=ws, c=c))


class SampleMotion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="StyleGANV_SampleMotion",
            display_name="StyleGAN-V Sample Motion",
            category="StyleGAN-V",
            description="Chooses how the videos move: seeded motion noise, defined for any length of time. "
                        "A longer timeline never changes the beginning of the motion.",
            inputs=[
                io.Int.Input("seed", default=0, min=0, max=MAX_SEED, control_after_generate=True,
                             tooltip="Random seed of the motion noise."),
                io.Int.Input("batch_size", default=1, min=1, max=MAX_BATCH,
                             tooltip="Number of motions; 1 shares one motion among all contents."),
            ],
            outputs=[MotionType.Output(display_name="motion", tooltip="Motion latents for the Render nodes.")],
        )

    @classmethod
    def execute(cls, seed: int, batch_size: int) -> io.NodeOutput:
        return io.NodeOutput(render.MotionSeed(seed=seed, batch_size=batch_size))
