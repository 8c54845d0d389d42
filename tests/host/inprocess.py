"""ComfyUI imported into the test process, with this pack loaded as a custom node.

ComfyUI's modules are imported from the host's folder, which goes at the END of sys.path;
only its `nodes.py` is bound explicitly, because the checkout (on sys.path for the library
tests) has a `nodes/` package of its own: inside ComfyUI that name is ComfyUI's.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

from .harness import PACK_FOLDER_NAME, REPO_ROOT, Host


def load_comfy(host: Host, work_dir: Path):
    """(ComfyUI's `nodes` module, this pack's module) with folders under `work_dir`."""
    comfy_dir = str(host.comfy_dir)
    if comfy_dir not in sys.path:
        sys.path.append(comfy_dir)
    existing = sys.modules.get("nodes")
    if existing is not None and not getattr(existing, "__file__", "").startswith(comfy_dir):
        raise RuntimeError(f"`nodes` is already imported from {existing.__file__}; ComfyUI needs that name")

    # Without a GPU ComfyUI must be told to use the CPU before model_management is imported.
    from comfy.cli_args import args

    args.cpu = True
    args.disable_api_nodes = True

    import folder_paths

    for sub in ("output", "input", "temp", "models/stylegan_v"):
        (work_dir / sub).mkdir(parents=True, exist_ok=True)
    folder_paths.set_output_directory(str(work_dir / "output"))
    folder_paths.set_input_directory(str(work_dir / "input"))
    folder_paths.set_temp_directory(str(work_dir / "temp"))
    folder_paths.folder_names_and_paths["stylegan_v"] = ([str(work_dir / "models" / "stylegan_v")],
                                                         {".safetensors", ".pkl"})

    if existing is None:
        spec = importlib.util.spec_from_file_location("nodes", str(host.comfy_dir / "nodes.py"))
        comfy_nodes = importlib.util.module_from_spec(spec)
        sys.modules["nodes"] = comfy_nodes
        spec.loader.exec_module(comfy_nodes)
    comfy_nodes = sys.modules["nodes"]

    packs = work_dir / "packs"
    packs.mkdir(exist_ok=True)
    link = packs / PACK_FOLDER_NAME
    if not link.exists():
        link.symlink_to(REPO_ROOT, target_is_directory=True)
    ok = asyncio.run(comfy_nodes.load_custom_node(str(link)))
    if not ok:
        raise RuntimeError("ComfyUI could not load the pack (see the log above)")
    pack = sys.modules[str(link).replace(".", "_x_")]
    return comfy_nodes, pack
