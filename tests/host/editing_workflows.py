"""The editing example workflows (loop, speed ramp, morph, grid): prompts, layouts and expected outputs.

Made like the base examples (the real frontend converts API prompts to UI workflows and
draws the thumbnails). Regenerate with the host built (`bash .ci/comfy_host.sh`):

    .venv/bin/python -m tests.host.editing_workflows
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from .harness import REPO_ROOT, ComfyServer, find_host
from .models import BUNDLED_DEMO, DEMO_CHECKPOINT, make_checkpoint

WORKFLOWS_DIR = REPO_ROOT / "workflows"
TINY = 32  # the demo checkpoint's resolution


def load_model() -> dict:
    return {"class_type": "StyleGANV_LoadModel", "inputs": {"ckpt_name": DEMO_CHECKPOINT, "dtype": "auto"},
            "_meta": {"title": "Load StyleGAN-V Model"}}


def content(seed: int, batch: int, title: str = "Sample Content") -> dict:
    return {"class_type": "StyleGANV_SampleContent",
            "inputs": {"model": ["1", 0], "seed": seed, "batch_size": batch, "truncation_psi": 1.0, "class_index": -1},
            "_meta": {"title": title}}


def motion(seed: int, batch: int) -> dict:
    return {"class_type": "StyleGANV_SampleMotion", "inputs": {"seed": seed, "batch_size": batch},
            "_meta": {"title": "Sample Motion"}}


def render(content_link: list, motion_link: list, grid_columns: int | list = 0) -> dict:
    return {"class_type": "StyleGANV_Render",
            "inputs": {"model": ["1", 0], "content": content_link, "motion": motion_link, "timeline": ["4", 0],
                       "chunk_size": 16, "grid_columns": grid_columns}}


def save_video(prefix: str) -> dict:
    # Render -> core CreateVideo -> core SaveVideo, as in the basic example.
    return {"6": {"class_type": "CreateVideo", "inputs": {"images": ["5", 0], "fps": ["5", 1]}},
            "7": {"class_type": "SaveVideo", "inputs": {"video": ["6", 0], "filename_prefix": prefix, "format": "mp4",
                                                        "codec": "h264"}}}


LOOP_SECONDS, LOOP_FPS = 2.0, 25.0
RAMP = {"fps": 30.0, "duration": 6.0, "speed_keyframes": "0:1.0, 2:0.25, 4:1.0"}
MORPH_SECONDS, GRID_SECONDS = 4.0, 3.0

WORKFLOWS = {
    # One period of a looping motion: the mp4 repeats with no jump.
    "stylegan_v_seamless_loop": (
        {"1": load_model(), "2": content(5, 1),
         "3": {"class_type": "StyleGANV_LoopMotion",
               "inputs": {"model": ["1", 0], "seed": 8, "batch_size": 1, "period_seconds": LOOP_SECONDS},
               "_meta": {"title": "Loop Motion"}},
         "4": {"class_type": "StyleGANV_LoopTimeline",
               "inputs": {"model": ["1", 0], "motion": ["3", 0], "fps": LOOP_FPS, "periods": 1},
               "_meta": {"title": "Loop Timeline"}},
         "5": render(["2", 0], ["3", 0]), **save_video("stylegan_v/loop")},
        {"1": (40, 260, 320), "2": (420, 40, 320), "3": (420, 270, 320), "4": (420, 470, 320),
         "5": (800, 200, 300), "6": (1160, 200, 260), "7": (1480, 200, 360)},
    ),
    # Real time, easing into 4x slow motion at 2 s and back: the in-between instants are real frames.
    "stylegan_v_slow_motion_ramp": (
        {"1": load_model(), "2": content(11, 1), "3": motion(12, 1),
         "4": {"class_type": "StyleGANV_SpeedCurveTimeline",
               "inputs": {"model": ["1", 0], "fps": RAMP["fps"], "duration": RAMP["duration"], "unit": "seconds",
                          "start_time": 0.0, "speed_keyframes": RAMP["speed_keyframes"], "interpolation": "smooth"},
               "_meta": {"title": "Speed Curve Timeline"}},
         "5": render(["2", 0], ["3", 0]), **save_video("stylegan_v/slow_motion")},
        {"1": (40, 260, 320), "2": (420, 40, 320), "3": (420, 270, 320), "4": (420, 440, 360),
         "5": (840, 200, 300), "6": (1200, 200, 260), "7": (1520, 200, 360)},
    ),
    # One content turns into another between 0.5 s and 3.5 s while the motion carries on unchanged.
    "stylegan_v_content_morph": (
        {"1": load_model(), "2": content(1, 1, "Content From"), "8": content(2, 1, "Content To"), "3": motion(7, 1),
         "4": {"class_type": "StyleGANV_Timeline",
               "inputs": {"model": ["1", 0], "fps": 25.0, "duration": MORPH_SECONDS, "unit": "seconds",
                          "start_time": 0.0, "speed": 1.0}, "_meta": {"title": "Timeline"}},
         "9": {"class_type": "StyleGANV_MorphContent",
               "inputs": {"content_from": ["2", 0], "content_to": ["8", 0], "timeline": ["4", 0],
                          "keyframes": "0.5:0, 3.5:1", "interpolation": "smooth"},
               "_meta": {"title": "Morph Content"}},
         "5": render(["9", 0], ["3", 0]), **save_video("stylegan_v/morph")},
        {"1": (40, 300, 320), "2": (420, 20, 320), "8": (420, 250, 320), "3": (420, 480, 320),
         "4": (420, 650, 320), "9": (800, 200, 340), "5": (1200, 60, 300), "6": (1200, 330, 300),
         "7": (1200, 470, 360)},
    ),
    # Three contents (columns) x two motions (rows), tiled into one video.
    "stylegan_v_content_motion_grid": (
        {"1": load_model(), "2": content(21, 3), "3": motion(22, 2),
         "4": {"class_type": "StyleGANV_Timeline",
               "inputs": {"model": ["1", 0], "fps": 25.0, "duration": GRID_SECONDS, "unit": "seconds",
                          "start_time": 0.0, "speed": 1.0}, "_meta": {"title": "Timeline"}},
         "8": {"class_type": "StyleGANV_ContentMotionGrid", "inputs": {"content": ["2", 0], "motion": ["3", 0]},
               "_meta": {"title": "Content x Motion Grid"}},
         "5": render(["8", 0], ["8", 1], ["8", 2]), **save_video("stylegan_v/grid")},
        {"1": (40, 260, 320), "2": (420, 40, 320), "3": (420, 270, 320), "4": (420, 440, 320),
         "8": (800, 120, 300), "5": (1160, 60, 300), "6": (1160, 330, 300), "7": (1160, 470, 360)},
    ),
}


def _loop_frames() -> int:
    # Independent of the nodes: the tiny32 demo model has dataset fps 25 and a code every 16 frames.
    codes = max(1, round(LOOP_SECONDS * 25.0 / 16))
    return round(codes * 16 / 25.0 * LOOP_FPS)


# What each workflow writes (one mp4): frames, fps and size (width, height).
EXPECTED = {
    "stylegan_v_seamless_loop": {"frames": _loop_frames(), "fps": LOOP_FPS, "size": (TINY, TINY), "files": 1},
    "stylegan_v_slow_motion_ramp": {"frames": math.ceil(RAMP["duration"] * RAMP["fps"] - 1e-6), "fps": RAMP["fps"],
                                    "size": (TINY, TINY), "files": 1},
    "stylegan_v_content_morph": {"frames": round(MORPH_SECONDS * 25), "fps": 25.0, "size": (TINY, TINY),
                                 "files": 1},
    "stylegan_v_content_motion_grid": {"frames": round(GRID_SECONDS * 25), "fps": 25.0,
                                       "size": (3 * TINY, 2 * TINY), "files": 1},
}


def main() -> int:
    host = find_host()
    if host is None or host.chromium is None:
        print("build the host first: bash .ci/comfy_host.sh", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = ComfyServer(host, tmp)
        server.models_dir.mkdir(parents=True, exist_ok=True)
        if not BUNDLED_DEMO.is_file():  # the pack lists its demo model itself when it ships
            make_checkpoint(server.models_dir / DEMO_CHECKPOINT)
        with server:
            items = [{"name": name, "prompt": prompt, "layout": {k: list(v) for k, v in layout.items()},
                      "out_json": str(WORKFLOWS_DIR / f"{name}.json"), "out_jpg": str(WORKFLOWS_DIR / f"{name}.jpg")}
                     for name, (prompt, layout) in WORKFLOWS.items()]
            job = tmp / "job.json"
            job.write_text(json.dumps({"url": server.url, "chromium": str(host.chromium), "items": items}))
            WORKFLOWS_DIR.mkdir(exist_ok=True)
            subprocess.run(["node", str(REPO_ROOT / "tests/host/ui/export.mjs"), str(job)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
