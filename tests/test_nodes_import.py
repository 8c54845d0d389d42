"""The pack's entry point imports cleanly without ComfyUI and keeps ComfyUI's names intact."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_root_init_imports_without_comfyui_and_exports_the_entrypoint():
    code = f"""
import importlib.util, inspect, sys
root = {str(ROOT)!r}
sys.path[:] = [p for p in sys.path if p not in ('', root)]  # like a host that never heard of the pack
spec = importlib.util.spec_from_file_location("some_pack", root + "/__init__.py",
                                              submodule_search_locations=[root])
pack = importlib.util.module_from_spec(spec)
sys.modules["some_pack"] = pack
spec.loader.exec_module(pack)
assert inspect.iscoroutinefunction(pack.comfy_entrypoint)
assert not hasattr(pack, "NODE_CLASS_MAPPINGS")  # it would make ComfyUI ignore comfy_entrypoint
assert not any(m == "comfy" or m.startswith(("comfy.", "comfy_api")) for m in sys.modules), "imported ComfyUI"
assert "torch" not in sys.modules, "importing the pack must stay cheap"
assert root in sys.path and sys.path[0] != root, "the pack folder may only be appended to sys.path"
import stylegan_v
assert stylegan_v.__file__.startswith(root)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert run.returncode == 0, run.stderr


def test_nodes_reach_each_other_relatively_and_the_library_absolutely():
    for path in sorted((ROOT / "nodes").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] != "nodes", f"{path.name}: 'nodes' is ComfyUI's name"
                assert not node.module.startswith("training"), f"{path.name} imports the trainer"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in ("nodes", "training"), f"{path.name}: {alias.name}"


def test_library_never_imports_comfyui():
    for path in sorted((ROOT / "stylegan_v").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                assert not name.startswith(("comfy", "folder_paths", "nodes")), f"{path}: {name}"
