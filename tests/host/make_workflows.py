"""The example workflows in workflows/: their prompts and layouts, and the steps that write them.

Each example is an API prompt plus a `Layout`: columns left to right in the order data flows,
each a stack of named groups (one step of `STEPS`: Model, Content, Motion, Time, Render, Save)
and markdown notes. The real frontend converts the prompt to a UI workflow, lays it out,
fits the saved view to a 1280x800 window (below the top bar, right of the side bar) and
refuses a layout where a wire runs right to left or behind a node (tests/host/ui/export.mjs).
The thumbnails are frames of what each workflow renders with the bundled demo model (its first
seconds, projections with fewer steps). With the host built (`bash .ci/comfy_host.sh`):

    .venv/bin/python -m tests.host.make_workflows                # workflow files (and docs/chains/), thumbnails
    .venv/bin/python -m tests.host.make_workflows --thumbnails   # thumbnails only (after a new demo model)
    .venv/bin/python -m tests.host.make_workflows --screenshots  # the README's screenshots

Other example sets (editing_workflows, projection_workflows, chain_workflows) use the same
pieces: `Layout`, `Column`, `Group`, `Note`, `note_text`; `all_workflows` gathers the templates.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .harness import REPO_ROOT, ComfyServer, find_host
from .models import BUNDLED_DEMO, DEMO_CHECKPOINT, make_checkpoint

WORKFLOWS_DIR = REPO_ROOT / "workflows"
SCREENSHOTS_DIR = WORKFLOWS_DIR / "screenshots"
UI_DIR = REPO_ROOT / "tests" / "host" / "ui"
PACK = "stylegan-v"  # the Templates browser's entry: the pack's folder name
FIT_VIEWPORT = (1280, 800)  # the smallest window the saved views are fitted to
VIEWPORTS = ((1600, 1000), (1280, 800))  # the windows every workflow must open whole in

# The steps a workflow's groups are named after, in the order data flows, with their colours
# (litegraph's group palette: blue, pale blue, cyan, green, yellow, brown).
STEPS = {"Model": "#3f789e", "Content": "#a1309b", "Motion": "#3f8f8f", "Time": "#5a5aa8", "Render": "#8a8a3f",
         "Save": "#b06634"}
NOTE_TYPES = ("MarkdownNote",)  # frontend-only nodes: in the UI workflow, never in the prompt
PREVIEW_TYPES = ("LoadImage", "LoadVideo")  # nodes whose preview of the input file sets their height

# Each example's title, which is also its file name (workflows/<title>.json and .jpg): ComfyUI's
# frontend titles a custom node's template by its file name and reads no index, title or
# description file for custom nodes (1.32's workflowTemplatesStore and useTemplateWorkflows;
# the card's description is the same name with '-' and '_' as spaces). The common prefix keeps
# them together when sorted and tells them apart among the core templates under All Templates.
# The code names each example by its id, the key here.
TITLES = {
    "stylegan_v_basic_video": "StyleGAN-V basic video",
    "stylegan_v_upscale_webp": "StyleGAN-V upscaled WEBP",
    "stylegan_v_long_video_to_file": "StyleGAN-V long video to file",
    "stylegan_v_seamless_loop": "StyleGAN-V seamless loop",
    "stylegan_v_slow_motion_ramp": "StyleGAN-V slow motion ramp",
    "stylegan_v_content_morph": "StyleGAN-V content morph",
    "stylegan_v_content_motion_grid": "StyleGAN-V content x motion grid",
    "stylegan_v_animate_picture": "StyleGAN-V animate a picture",
    "stylegan_v_continue_clip": "StyleGAN-V continue a clip",
    "stylegan_v_upscale_model": "StyleGAN-V upscale with a model",
}


def workflow_file(name: str, folder: Path = WORKFLOWS_DIR) -> Path:
    """The file of the example with id `name`."""
    return folder / f"{TITLES[name]}.json"


def workflow_id(path: Path) -> str | None:
    """The id of the example in `path` (None for a file that is not one of ours)."""
    return next((name for name, title in TITLES.items() if title == Path(path).stem), None)


@dataclass(frozen=True)
class Group:
    """One step of the workflow: a titled box around nodes stacked top to bottom."""

    step: str
    nodes: tuple[str, ...]

    def __post_init__(self):
        if self.step not in STEPS:
            raise ValueError(f"group '{self.step}' is not a step; use one of {', '.join(STEPS)}")

    def to_json(self, resolution: int) -> dict:
        return {"step": self.step, "nodes": list(self.nodes), "color": STEPS[self.step]}


@dataclass(frozen=True)
class Note:
    """A workflow's markdown note (`note_text`): what it makes and what to change first."""

    heading: str
    change_first: str
    height: int = 250
    title: str = "Start here"

    def to_json(self, resolution: int) -> dict:
        return {"note": note_text(self.heading, self.change_first, resolution), "height": self.height,
                "title": self.title}


@dataclass(frozen=True)
class Column:
    """Blocks stacked from `top` down, `width` graph pixels wide. A column that starts lower
    leaves room above it for wires that pass to a later column."""

    blocks: tuple[Group | Note, ...]
    width: int = 260
    top: int = 0


@dataclass(frozen=True)
class Layout:
    columns: tuple[Column, ...]
    spacing: dict = field(default_factory=lambda: {"pad": 10, "node_gap": 8, "block_gap": 24, "column_gap": 56,
                                                   "group_font": 20})

    def to_json(self, resolution: int) -> dict:
        """What export.mjs lays out; `resolution` is the demo model's, for the notes."""
        return {"columns": [{"width": c.width, "top": c.top, "blocks": [b.to_json(resolution) for b in c.blocks]}
                            for c in self.columns],
                "spacing": dict(self.spacing), "fit": {"margin": 16, "maxScale": 1.0, "minScale": 0.62},
                "preview_types": list(PREVIEW_TYPES)}

    def node_ids(self) -> list[str]:
        return [n for c in self.columns for b in c.blocks if isinstance(b, Group) for n in b.nodes]


def demo_resolution() -> int:
    """Frame size of the bundled demo model (it may be replaced by a bigger one)."""
    from stylegan_v import checkpoint

    if not BUNDLED_DEMO.is_file():
        return 32  # make_checkpoint's tiny32 stands in for it
    return checkpoint.read_config(BUNDLED_DEMO)[0].generator.resolution


def note_text(title: str, change_first: str, size: int) -> str:
    """A workflow's note: what it does, what to change first, and that the model is a demo."""
    return (f"## {title}\n\n**Change first:** {change_first}\n\n"
            f"The bundled `{DEMO_CHECKPOINT}` is a **small {size}×{size} demo model**, so the video is tiny "
            f"and soft. Put real checkpoints (`.safetensors` or original `.pkl`) in `ComfyUI/models/stylegan_v/` "
            "and pick them in **Load StyleGAN-V Model**.")


def latents(content_seed: int, motion_seed: int, batch: int) -> dict:
    return {
        "1": {"class_type": "StyleGANV_LoadModel", "inputs": {"ckpt_name": DEMO_CHECKPOINT, "dtype": "auto"},
              "_meta": {"title": "Load StyleGAN-V Model"}},
        "2": {"class_type": "StyleGANV_SampleContent",
              "inputs": {"model": ["1", 0], "seed": content_seed, "batch_size": batch, "truncation_psi": 1.0,
                         "class_index": -1}, "_meta": {"title": "Sample Content"}},
        "3": {"class_type": "StyleGANV_SampleMotion", "inputs": {"seed": motion_seed, "batch_size": batch},
              "_meta": {"title": "Sample Motion"}},
    }


def timeline(fps: float, seconds: float) -> dict:
    return {"class_type": "StyleGANV_Timeline",
            "inputs": {"model": ["1", 0], "fps": fps, "duration": seconds, "unit": "seconds", "start_time": 0.0,
                       "speed": 1.0}, "_meta": {"title": "Timeline"}}


def render(class_type: str, grid_columns: int, **extra) -> dict:
    return {"class_type": class_type,
            "inputs": {"model": ["1", 0], "content": ["2", 0], "motion": ["3", 0], "timeline": ["4", 0],
                       "chunk_size": 16, "grid_columns": grid_columns, **extra}}


def save_video(prefix: str, source: str = "5", output: int = 2) -> dict:
    # Render's video output (its third) goes straight into the core saver: the mp4 path needs no
    # Create Video. Other sources name their own output.
    return {"class_type": "SaveVideo", "inputs": {"video": [source, output], "filename_prefix": prefix,
                                                  "format": "mp4", "codec": "h264"}}


def latents_layout(note: Note, *later: Column, time: tuple[str, ...] = ("4",)) -> Layout:
    """Model and note | Content, Motion, Time | the later columns (Render first, top-aligned with
    Load Model, so the model wire passes above the second column)."""
    return Layout((Column((Group("Model", ("1",)), note), width=250),
                   Column((Group("Content", ("2",)), Group("Motion", ("3",)), Group("Time", time)), top=84),
                   *later))


WORKFLOWS = {
    # Render -> core Save Video.
    "stylegan_v_basic_video": (
        {**latents(42, 7, 1), "4": timeline(25.0, 4.0), "5": render("StyleGANV_Render", 0),
         "7": save_video("stylegan_v/basic")},
        latents_layout(Note("Basic video", "the **seed** of Sample Content (what the video shows) and of "
                            "Sample Motion (how it moves); then fps and duration in Timeline."),
                       Column((Group("Render", ("5",)),), width=250), Column((Group("Save", ("7",)),), width=300)),
    ),
    # Four videos tiled 2x2 -> core image scaling -> core animated WEBP.
    "stylegan_v_upscale_webp": (
        {**latents(1, 2, 4), "4": timeline(16.0, 2.0), "5": render("StyleGANV_Render", 2),
         "6": {"class_type": "ImageScaleBy", "inputs": {"image": ["5", 0], "upscale_method": "lanczos",
                                                        "scale_by": 2.0}},
         "7": {"class_type": "SaveAnimatedWEBP",
               "inputs": {"images": ["6", 0], "filename_prefix": "stylegan_v/upscaled", "fps": ["5", 1],
                          "lossless": False, "quality": 85, "method": "default"}}},
        latents_layout(Note("Upscaled WEBP", "**batch_size** in Sample Content and Sample Motion (4 "
                            "videos, tiled 2 wide by grid_columns in Render), and **scale_by**."),
                       Column((Group("Render", ("5",)),), width=250),
                       # Lower than the others: Render's fps wire passes above it to the saver.
                       Column((Group("Render", ("6",)),), width=250, top=200),
                       Column((Group("Save", ("7",)),), width=280)),
    ),
    # Ten minutes straight into an mp4: memory does not grow with the length.
    "stylegan_v_long_video_to_file": (
        {**latents(3, 4, 1), "4": timeline(30.0, 600.0),
         "5": render("StyleGANV_RenderToFile", 0, crf=20, filename_prefix="stylegan_v/long")},
        latents_layout(Note("Long video to file", "**duration** in Timeline (600 s is ten minutes); "
                            "Render to File streams it to disk, so memory does not grow with it."),
                       Column((Group("Save", ("5",)),), width=300)),
    ),
}


# -- writing the files ------------------------------------------------------------------------

def prepare_host(server: ComfyServer) -> None:
    """What the examples name besides the model: the picture and clip in the input folder, the
    stand-in upscale model in models/upscale_models."""
    from .chain_workflows import write_upscale_model
    from .projection_workflows import write_inputs

    write_inputs(server.base_dir / "input")
    write_upscale_model(server.base_dir / "models")


def demo_server(host, tmp: Path) -> ComfyServer:
    server = ComfyServer(host, tmp)
    server.models_dir.mkdir(parents=True, exist_ok=True)
    if not BUNDLED_DEMO.is_file():  # the pack lists its demo model itself when it ships
        make_checkpoint(server.models_dir / DEMO_CHECKPOINT)
    prepare_host(server)
    return server


def export(server: ComfyServer, workflows: dict, tmp: Path, files: dict | None = None,
           node_defs: dict | None = None) -> None:
    """Writes each (prompt, Layout) through the real frontend: to workflows/<title>.json, or to
    files[name]. `node_defs` registers nodes of packs the host lacks, for the layout only."""
    size = demo_resolution()
    items = [{"name": name, "prompt": prompt, "layout": layout.to_json(size),
              "out_json": str((files or {}).get(name) or workflow_file(name))}
             for name, (prompt, layout) in workflows.items()]
    job = tmp / "export.json"
    job.write_text(json.dumps({"url": server.url, "chromium": str(server.host.chromium),
                               "viewport": list(FIT_VIEWPORT), "items": items, "node_defs": node_defs or {}}))
    for item in items:
        Path(item["out_json"]).parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([server.host.node, str(UI_DIR / "export.mjs"), str(job)], check=True)


def export_chains(server: ComfyServer, tmp: Path) -> None:
    """docs/chains/<id>.json: the chains that need a pack the host lacks."""
    from .chain_workflows import CHAINS, CHAINS_DIR, node_defs

    export(server, CHAINS, tmp, files={name: CHAINS_DIR / f"{name}.json" for name in CHAINS}, node_defs=node_defs())


THUMBNAIL_SECONDS = 4.0  # a thumbnail needs a few seconds of a workflow, not its ten minutes
# ... nor the full search of a projection: enough steps of the pixel loss to show the fit (a
# clip's step costs ~0.6 s on a CPU core, and loading the perceptual network tens of seconds),
# so that the test that renders each thumbnail again stays short.
THUMBNAIL_STEPS = 10
PROJECTION_TYPES = ("StyleGANV_ProjectImage", "StyleGANV_ProjectVideo")
THUMBNAIL_SIZE = 512


def thumbnail_prompt(prompt: dict) -> dict:
    short = json.loads(json.dumps(prompt))
    for node in short.values():
        inputs = node["inputs"]
        if inputs.get("unit") == "seconds" and inputs.get("duration", 0) > THUMBNAIL_SECONDS:
            inputs["duration"] = THUMBNAIL_SECONDS
        if node["class_type"] in PROJECTION_TYPES:
            inputs.update(steps=min(inputs["steps"], THUMBNAIL_STEPS), perceptual="none")
    return short


def output_frames(path: Path) -> list:
    """The frames of a rendered mp4 or animated WEBP, as PIL images."""
    from PIL import Image, ImageSequence

    if path.suffix == ".mp4":
        import av

        with av.open(str(path)) as container:
            return [f.to_image() for f in container.decode(container.streams.video[0])]
    with Image.open(path) as im:
        return [frame.convert("RGB") for frame in ImageSequence.Iterator(im)]


def thumbnail(frames: list):
    """Four moments of the video (1/8, 3/8, 5/8 and 7/8 of the way), 2x2, enlarged smoothly."""
    from PIL import Image

    picks = [frames[min(len(frames) - 1, math.floor(len(frames) * (2 * i + 1) / 8))] for i in range(4)]
    w, h = picks[0].size
    gap = max(1, w // 32)
    sheet = Image.new("RGB", (2 * w + gap, 2 * h + gap), (24, 24, 24))
    for i, frame in enumerate(picks):
        sheet.paste(frame, ((i % 2) * (w + gap), (i // 2) * (h + gap)))
    scale = THUMBNAIL_SIZE / max(sheet.size)
    return sheet.resize((round(sheet.width * scale), round(sheet.height * scale)), Image.Resampling.BICUBIC)


def write_thumbnails(server: ComfyServer, workflows: dict) -> None:
    """workflows/<title>.jpg: frames of what each workflow renders (its first seconds)."""
    for name, (prompt, _) in workflows.items():
        entry = server.run(thumbnail_prompt(prompt), timeout=900)
        if entry["status"]["status_str"] != "success":
            raise RuntimeError(f"{name} failed to render its thumbnail:\n{server.log_tail()}")
        files = [item for out in entry["outputs"].values() for item in out.get("images", [])
                 if item.get("type") == "output"]
        target = workflow_file(name).with_suffix(".jpg")
        thumbnail(output_frames(server.output_file(files[0]))).save(target, quality=90)
        print("wrote", target)


SOCKET_TYPES = ("STYLEGAN_V_MODEL", "STYLEGAN_V_CONTENT", "STYLEGAN_V_MOTION", "STYLEGAN_V_TIMELINE")


def run_views(server: ComfyServer, tmp: Path, files: list[Path], *, viewports=VIEWPORTS, templates: bool = True,
              run: list[str] = (), old_workflow: Path | None = None, without_script: bool = False) -> dict:
    """What tests/host/ui/views.mjs reports on opening `files` in the real frontend."""
    shots = tmp / "shots"
    shots.mkdir(exist_ok=True)
    job = {"url": server.url, "chromium": str(server.host.chromium), "pack": PACK, "shots": str(shots),
           "workflows": [str(f) for f in files], "viewports": [list(v) for v in viewports], "templates": templates,
           "run": list(run), "colour_types": list(SOCKET_TYPES), "old_workflow": old_workflow and str(old_workflow),
           "without_script": without_script}
    (tmp / "views.json").write_text(json.dumps(job))
    done = subprocess.run([server.host.node, str(UI_DIR / "views.mjs"), str(tmp / "views.json")], check=False,
                          capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"views.mjs failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_screenshots(server: ComfyServer, tmp: Path) -> None:
    """The README's screenshots at 1600x1000: the basic workflow as it opens and after Run, the
    upscale-model template, and each chain of docs/chains/ (its missing nodes as the frontend
    shows them, the missing-nodes dialog closed)."""
    from .chain_workflows import CHAINS, CHAINS_DIR

    basic, upscale = workflow_file("stylegan_v_basic_video"), workflow_file("stylegan_v_upscale_model")
    chains = [CHAINS_DIR / f"{name}.json" for name in CHAINS]
    report = run_views(server, tmp, [basic, upscale, *chains], viewports=(VIEWPORTS[0],), templates=False,
                       run=[basic.stem])
    shots = {w["name"]: w["shots"] for w in report["workflows"]}
    SCREENSHOTS_DIR.mkdir(exist_ok=True)
    targets = [(shots[basic.stem]["opened"], SCREENSHOTS_DIR / "basic_video.png"),
               (shots[basic.stem]["output"], SCREENSHOTS_DIR / "basic_video_output.png"),
               (shots[upscale.stem]["opened"], SCREENSHOTS_DIR / "upscale_model.png"),
               *[(shots[chain.stem]["opened"], chain.with_suffix(".png")) for chain in chains]]
    for source, target in targets:
        shutil.copyfile(source, target)
        print("wrote", target)


def all_workflows() -> dict:
    """Every template in workflows/, by id."""
    from .chain_workflows import TEMPLATES as CHAIN_TEMPLATES
    from .editing_workflows import WORKFLOWS as EDITING
    from .projection_workflows import WORKFLOWS as PROJECTION

    return {**WORKFLOWS, **EDITING, **PROJECTION, **CHAIN_TEMPLATES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thumbnails", action="store_true", help="only render the thumbnails")
    parser.add_argument("--screenshots", action="store_true", help="only take the README's screenshots")
    parser.add_argument("--no-thumbnails", action="store_true", help="only write the workflow files")
    parser.add_argument("names", nargs="*", help="only these workflows (default: all)")
    args = parser.parse_args(argv)
    host = find_host()
    if host is None or host.chromium is None:
        print("build the host first: bash .ci/comfy_host.sh", file=sys.stderr)
        return 1
    workflows = all_workflows()
    unknown = sorted(set(args.names) - set(workflows))
    if unknown:
        print(f"no such workflow: {', '.join(unknown)}", file=sys.stderr)
        return 2
    workflows = {k: v for k, v in workflows.items() if not args.names or k in args.names}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with demo_server(host, tmp) as server:
            if args.screenshots:
                write_screenshots(server, tmp)
                return 0
            if not args.thumbnails:
                export(server, workflows, tmp)
                if not args.names:
                    export_chains(server, tmp)
            if not args.no_thumbnails:
                write_thumbnails(server, workflows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
