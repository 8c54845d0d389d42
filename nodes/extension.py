"""The pack's V3 extension: registers the model folder and lists the nodes."""

from __future__ import annotations

from . import editing_content, editing_motion, editing_timeline, latent_files, model_files, projection
from .comfy_api_compat import ComfyExtension, io
from .loader import LoadModel
from .rendering import Render, RenderToFile
from .sampling import SampleContent, SampleMotion
from .timeline import MakeTimeline

NODES: list[type[io.ComfyNode]] = [LoadModel, SampleContent, SampleMotion, MakeTimeline, Render, RenderToFile]
NODES += [*editing_timeline.NODES, *editing_motion.NODES, *editing_content.NODES, *latent_files.NODES]
NODES += projection.NODES


class StyleGANVExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        model_files.register_model_folder()
        return NODES
