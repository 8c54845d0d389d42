"""StyleGAN-V for ComfyUI: a continuous-time video GAN as ComfyUI nodes.

ComfyUI imports this file as the pack's entry point. Importing it does nothing heavy and
needs no ComfyUI, so pytest, linters or a plain `import` of the folder never fail here;
ComfyUI then calls `comfy_entrypoint()`, which is when the node modules (and comfy_api)
are imported.
"""

import importlib.util
import os
import sys

_PACK_DIR = os.path.dirname(os.path.abspath(__file__))


def _make_library_importable() -> None:
    # The model library is imported absolutely as `stylegan_v`. When the pack was cloned
    # into custom_nodes/ rather than pip-installed, its folder must be on sys.path, but at
    # the END: ComfyUI owns the top-level name `nodes`, which our nodes/ folder would shadow.
    if importlib.util.find_spec("stylegan_v") is None and _PACK_DIR not in sys.path:
        sys.path.append(_PACK_DIR)


_make_library_importable()


# Served at /extensions/<pack folder>/: the per-node help pages in docs/, and js/, which the frontend
# loads: colours for our socket types and the inputs' display names as labels (looks only; the nodes
# work the same without it).
WEB_DIRECTORY = "./nodes/web"


async def comfy_entrypoint():
    """ComfyUI's V3 hook: returns the extension that lists this pack's nodes."""
    from .nodes.extension import StyleGANVExtension

    return StyleGANVExtension()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
