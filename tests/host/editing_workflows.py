"""The editing example workflows (loop, speed ramp, morph, grid): prompts, layouts and expected outputs.

Made like the base examples, with the layout pieces of make_workflows. Regenerate them with the
host built (`bash .ci/comfy_host.sh`): `.venv/bin/python -m tests.host.make_workflows`.
"""

from __future__ import annotations

import math

from .make_workflows import Column, Group, Layout, Note, save_video
from .models import DEMO_CHECKPOINT

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
         "5": render(["2", 0], ["3", 0]), "7": save_video("stylegan_v/loop")},
        Layout((Column((Group("Model", ("1",)), Note("Seamless loop", "**period_seconds** in Loop Motion (the "
                                                      "loop's length); Loop Timeline renders exactly one period, "
                                                      "so the mp4 repeats with no jump.")), width=250),
                # Loop Timeline sits above the model wire to Render and the wires from the second column.
                Column((Group("Motion", ("3",)), Group("Content", ("2",))), top=120),
                Column((Group("Time", ("4",)),), width=240, top=-200),
                Column((Group("Render", ("5",)),), width=250),
                Column((Group("Save", ("7",)),), width=280))),
    ),
    # Real time, easing into 4x slow motion at 2 s and back: the in-between instants are real frames.
    "stylegan_v_slow_motion_ramp": (
        {"1": load_model(), "2": content(11, 1), "3": motion(12, 1),
         "4": {"class_type": "StyleGANV_SpeedCurveTimeline",
               "inputs": {"model": ["1", 0], "fps": RAMP["fps"], "duration": RAMP["duration"], "unit": "seconds",
                          "start_time": 0.0, "speed_keyframes": RAMP["speed_keyframes"], "interpolation": "smooth"},
               "_meta": {"title": "Speed Curve Timeline"}},
         "5": render(["2", 0], ["3", 0]), "7": save_video("stylegan_v/slow_motion")},
        Layout((Column((Group("Model", ("1",)), Note("Slow-motion ramp", "**keyframes** in Speed Curve Timeline, "
                                                      "as seconds:speed pairs: '0:1.0, 2:0.25, 4:1.0' plays at "
                                                      "real time, eases into 4x slow motion at 2 s and back by "
                                                      "4 s.")), width=250),
                Column((Group("Content", ("2",)), Group("Motion", ("3",)), Group("Time", ("4",))), width=280,
                       top=84),
                Column((Group("Render", ("5",)),), width=250),
                Column((Group("Save", ("7",)),), width=280))),
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
         "5": render(["9", 0], ["3", 0]), "7": save_video("stylegan_v/morph")},
        Layout((Column((Group("Model", ("1",)), Note("Content morph", "**keyframes** in Morph Content, as "
                                                      "seconds:mix pairs: '0.5:0, 3.5:1' shows Content From until "
                                                      "0.5 s and has become Content To by 3.5 s; the motion "
                                                      "carries on.")), width=250),
                # Timeline first: its wire to Render passes above the third column.
                Column((Group("Time", ("4",)), Group("Content", ("2", "8"))), top=84),
                Column((Group("Content", ("9",)), Group("Motion", ("3",))), width=300, top=200),  # keyframes label
                Column((Group("Render", ("5",)),), width=250),
                Column((Group("Save", ("7",)),), width=280))),
    ),
    # Three contents (columns) x two motions (rows), tiled into one video.
    "stylegan_v_content_motion_grid": (
        {"1": load_model(), "2": content(21, 3), "3": motion(22, 2),
         "4": {"class_type": "StyleGANV_Timeline",
               "inputs": {"model": ["1", 0], "fps": 25.0, "duration": GRID_SECONDS, "unit": "seconds",
                          "start_time": 0.0, "speed": 1.0}, "_meta": {"title": "Timeline"}},
         "8": {"class_type": "StyleGANV_ContentMotionGrid", "inputs": {"content": ["2", 0], "motion": ["3", 0]},
               "_meta": {"title": "Content x Motion Grid"}},
         "5": render(["8", 0], ["8", 1], ["8", 2]), "7": save_video("stylegan_v/grid")},
        Layout((Column((Group("Model", ("1",)), Note("Content x motion grid", "**batch_size** in Sample Content "
                                                      "(the columns) and in Sample Motion (the rows): every "
                                                      "content is shown with every motion.")), width=250),
                Column((Group("Time", ("4",)), Group("Content", ("2",)), Group("Motion", ("3",))), top=84),
                Column((Group("Content", ("8",)),), width=260, top=200),
                Column((Group("Render", ("5",)),), width=250),
                Column((Group("Save", ("7",)),), width=280))),
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
