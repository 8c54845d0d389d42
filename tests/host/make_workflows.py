"""Regenerates workflows/*.json (UI format) and their .jpg thumbnails from the prompts below.

The real frontend does the conversion (API prompt -> graph -> UI workflow), so the files are
exactly what ComfyUI would save. Needs the host (`bash .ci/comfy_host.sh`):

    .venv/bin/python -m tests.host.make_workflows
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .harness import REPO_ROOT, ComfyServer, find_host
from .models import BUNDLED_DEMO, DEMO_CHECKPOINT, make_checkpoint

WORKFLOWS_DIR = REPO_ROOT / "workflows"


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


# (x, y[, width]) per node id; left to right in the order data flows.
LAYOUT_LATENTS = {"1": (40, 260, 320), "2": (420, 40, 320), "3": (420, 270, 320), "4": (420, 440, 320)}

WORKFLOWS = {
    # Render -> core CreateVideo -> core SaveVideo.
    "stylegan_v_basic_video": (
        {**latents(42, 7, 1), "4": timeline(25.0, 4.0), "5": render("StyleGANV_Render", 0),
         "6": {"class_type": "CreateVideo", "inputs": {"images": ["5", 0], "fps": ["5", 1]}},
         "7": {"class_type": "SaveVideo", "inputs": {"video": ["6", 0], "filename_prefix": "stylegan_v/basic",
                                                     "format": "mp4", "codec": "h264"}}},
        {**LAYOUT_LATENTS, "5": (800, 200, 300), "6": (1160, 200, 260), "7": (1480, 200, 360)},
    ),
    # Four videos tiled 2x2 -> core image scaling -> core animated WEBP.
    "stylegan_v_upscale_webp": (
        {**latents(1, 2, 4), "4": timeline(16.0, 2.0), "5": render("StyleGANV_Render", 2),
         "6": {"class_type": "ImageScaleBy", "inputs": {"image": ["5", 0], "upscale_method": "lanczos",
                                                        "scale_by": 2.0}},
         "7": {"class_type": "SaveAnimatedWEBP",
               "inputs": {"images": ["6", 0], "filename_prefix": "stylegan_v/upscaled", "fps": ["5", 1],
                          "lossless": False, "quality": 85, "method": "default"}}},
        {**LAYOUT_LATENTS, "5": (800, 200, 300), "6": (1160, 200, 300), "7": (1520, 200, 380)},
    ),
    # Ten minutes straight into an mp4: memory does not grow with the length.
    "stylegan_v_long_video_to_file": (
        {**latents(3, 4, 1), "4": timeline(30.0, 600.0),
         "5": render("StyleGANV_RenderToFile", 0, crf=20, filename_prefix="stylegan_v/long")},
        {**LAYOUT_LATENTS, "5": (800, 200, 380)},
    ),
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
            subprocess.run([host.node, str(REPO_ROOT / "tests/host/ui/export.mjs"), str(job)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
