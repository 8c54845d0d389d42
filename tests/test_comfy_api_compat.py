"""nodes/comfy_api_compat.py inside the real ComfyUI 0.3.75, and the two decisions it documents:
VIDEO comes from the core's own implementation, and the model stays on the classic patcher.

What a newer ComfyUI would do is simulated with stand-in modules; docs/comfyui_compatibility.md
says what was read in its source.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import types

import pytest
from host.harness import REPO_ROOT, require_host
from host.models import DEMO_CHECKPOINT, make_checkpoint

pytestmark = pytest.mark.host


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    from host.inprocess import load_comfy

    work = tmp_path_factory.mktemp("comfy_compat")
    comfy_nodes, pack = load_comfy(require_host(), work)
    make_checkpoint(work / "models" / "stylegan_v" / DEMO_CHECKPOINT)
    compat = importlib.import_module(f"{pack.__name__}.nodes.comfy_api_compat")
    return types.SimpleNamespace(nodes=comfy_nodes.NODE_CLASS_MAPPINGS, compat=compat)


def host_versions() -> set[str]:
    """The API versions the host itself lists, spelt as module names (v0_0_2, latest)."""
    from comfy_api.version_list import supported_versions

    return {"latest" if v.VERSION == "latest" else "v" + v.VERSION.replace(".", "_") for v in supported_versions}


def test_it_takes_the_newest_pinned_version_the_host_lists(comfy):
    compat = comfy.compat
    listed = host_versions()
    expected = next((v for v in compat.PINNED_VERSIONS if v in listed), compat.FALLBACK_VERSION)
    assert compat.API_VERSION == expected
    import comfyui_version

    if comfyui_version.__version__ == "0.3.75":
        assert listed == {"latest", "v0_0_2", "v0_0_1"} and expected == "v0_0_2"
    chosen = importlib.import_module(f"comfy_api.{expected}")
    for name in compat.NAMES:
        assert getattr(compat, name) is getattr(chosen, name), name


def test_every_name_the_nodes_import_from_comfy_api_is_there(comfy):
    imported = set()
    for path in (REPO_ROOT / "nodes").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (
                    (node.level == 0 and (node.module or "").startswith("comfy_api."))
                    or (node.level == 1 and node.module == "comfy_api_compat")):
                imported.update(alias.name for alias in node.names)
    assert imported, "the scan found no comfy_api import"
    assert imported <= set(comfy.compat.NAMES), sorted(imported - set(comfy.compat.NAMES))


def fake_api(*names):
    return types.SimpleNamespace(**{name: object() for name in names})


def importer(modules: dict):
    def import_module(name):
        if name not in modules:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        if isinstance(modules[name], Exception):
            raise modules[name]
        return modules[name]

    return import_module


def test_the_choice_falls_back_cleanly(comfy):
    compat = comfy.compat
    full = compat.NAMES
    latest, v2, v3 = fake_api(*full), fake_api(*full), fake_api(*full)
    assert compat.choose_api(importer({"comfy_api.latest": latest})) == ("latest", latest)
    assert compat.choose_api(importer({"comfy_api.latest": latest, "comfy_api.v0_0_2": v2})) == ("v0_0_2", v2)
    both = {"comfy_api.latest": latest, "comfy_api.v0_0_2": v2, "comfy_api.v0_0_3": v3}
    assert compat.choose_api(importer(both)) == ("v0_0_3", v3)
    # A pinned version without all the names (as v0_0_1 is) is passed over.
    partial = dict(both, **{"comfy_api.v0_0_3": fake_api("io", "Input", "InputImpl", "Types")})
    assert compat.choose_api(importer(partial)) == ("v0_0_2", v2)
    # A version that exists but cannot import what it needs is a broken host: the error surfaces.
    broken = dict(both, **{"comfy_api.v0_0_3": ModuleNotFoundError("No module named 'av'", name="av")})
    with pytest.raises(ModuleNotFoundError, match="'av'"):
        compat.choose_api(importer(broken))
    with pytest.raises(ImportError, match="comfy_api.latest has no ui, ComfyExtension"):
        compat.choose_api(importer({"comfy_api.latest": fake_api("io", "Input", "InputImpl", "Types")}))


def test_newer_schema_fields_are_dropped_only_where_the_host_lacks_them(comfy):
    compat = comfy.compat
    host_fields = {field.name for field in dataclasses.fields(compat.io.Schema)}
    aliases = {"search_aliases": ["video gan"], "essentials_category": "Video"}
    made = compat.schema(node_id="X", display_name="X", category="StyleGAN-V", **aliases)
    assert made.node_id == "X" and made.category == "StyleGAN-V"
    for name, value in aliases.items():
        assert getattr(made, name, None) == (value if name in host_fields else None), name

    @dataclasses.dataclass
    class NewerSchema:
        node_id: str
        search_aliases: list = dataclasses.field(default_factory=list)

    assert compat.schema_fields(NewerSchema, {"node_id": "X", **aliases}) == \
        {"node_id": "X", "search_aliases": ["video gan"]}
    with pytest.raises(TypeError, match="serach_aliases"):
        compat.schema(node_id="X", serach_aliases=["typo"])


def test_video_is_the_core_s_own_implementation(comfy):
    compat, nodes = comfy.compat, comfy.nodes
    model = nodes["StyleGANV_LoadModel"].execute(ckpt_name=DEMO_CHECKPOINT, dtype="auto").args[0]
    content = nodes["StyleGANV_SampleContent"].execute(model=model, seed=1, batch_size=1, truncation_psi=1.0,
                                                       class_index=-1).args[0]
    motion = nodes["StyleGANV_SampleMotion"].execute(seed=2, batch_size=1).args[0]
    timeline = nodes["StyleGANV_Timeline"].execute(model=model, fps=25.0, duration=2, unit="frames", start_time=0.0,
                                                   speed=1.0).args[0]
    images, _, video = nodes["StyleGANV_Render"].execute(model=model, content=content, motion=motion,
                                                         timeline=timeline, chunk_size=2, grid_columns=0).args
    # Exactly the core's class: a subclass of VideoInput would miss the abstract methods newer
    # releases add (trimming, bit depth), which the core's implementation provides.
    assert type(video) is compat.InputImpl.VideoFromComponents
    assert isinstance(video, compat.Input.Video)
    assert video.get_components().images is images


def test_the_model_stays_on_the_classic_patcher_when_dynamic_vram_is_on(comfy, monkeypatch):
    from comfy import model_patcher

    class DynamicPatcher(model_patcher.ModelPatcher):
        """Stands in for ModelPatcherDynamic, which newer ComfyUI installs as CoreModelPatcher."""

        def is_dynamic(self):
            return True

    monkeypatch.setattr(model_patcher, "CoreModelPatcher", DynamicPatcher, raising=False)
    patcher = comfy.nodes["StyleGANV_LoadModel"].execute(ckpt_name=DEMO_CHECKPOINT, dtype="fp32").args[0]
    assert type(patcher) is model_patcher.ModelPatcher
