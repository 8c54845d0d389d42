"""The projection examples (animate a picture, continue a clip) and the input files they name.

Both start from a file the user supplies in ComfyUI's input folder. The hosts that run them
(tests, make_workflows) put a real one there first: a frame and a short clip that the bundled
demo model rendered (`write_inputs`). A core Upscale Image node brings any picture or clip to the
model's size (centre crop), since projection needs exactly that size.
"""

from __future__ import annotations

from pathlib import Path

from .editing_workflows import load_model, render
from .make_workflows import Column, Group, Layout, Note, demo_resolution, save_video, timeline
from .models import BUNDLED_DEMO

PICTURE = "stylegan_v_example_picture.png"  # what Load Image names until the user picks theirs
CLIP = "stylegan_v_example_clip.mp4"  # what Load Video names
CLIP_FRAMES, CLIP_FPS = 8, 25.0  # the example clip: short, since fitting a clip costs per frame
PICTURE_TIME = 1.0  # seconds into the motion at which the video passes through the picture
SEARCH = {"latent": "w+", "perceptual": "auto", "seed": 0, "class_index": -1}
SECONDS, FPS = 4.0, 25.0  # both render 4 s at 25 fps: the clip's 0.32 s and what follows


def to_model_size(source: list) -> dict:
    size = demo_resolution()
    return {"class_type": "ImageScale", "inputs": {"image": source, "upscale_method": "lanczos", "width": size,
                                                   "height": size, "crop": "center"},
            "_meta": {"title": "Resize to the model's size"}}


WORKFLOWS = {
    # Load Image -> Project Image (in the motion of Sample Motion) -> Render -> Save Video.
    "stylegan_v_animate_picture": (
        {"1": load_model(),
         "10": {"class_type": "LoadImage", "inputs": {"image": PICTURE}},
         "11": to_model_size(["10", 0]),
         "3": {"class_type": "StyleGANV_SampleMotion", "inputs": {"seed": 7, "batch_size": 1},
               "_meta": {"title": "Sample Motion"}},
         "12": {"class_type": "StyleGANV_ProjectImage",
                "inputs": {"model": ["1", 0], "image": ["11", 0], "motion": ["3", 0], "time": PICTURE_TIME,
                           "steps": 150, **SEARCH, "preview_every": 10}, "_meta": {"title": "Project Image"}},
         "4": timeline(FPS, SECONDS),
         "5": render(["12", 0], ["3", 0]), "7": save_video("stylegan_v/animated_picture")},
        # Project Image sits above the model wire to Render, and the columns between start below
        # it, so that no wire passes behind a node.
        Layout((Column((Group("Model", ("1",)), Group("Content", ("10",))), width=250),
                Column((Group("Time", ("4",)), Group("Content", ("11",)), Group("Motion", ("3",))), width=240,
                       top=84),
                Column((Group("Content", ("12",)),), width=260, top=-330),
                Column((Group("Render", ("5",)),
                        Note("Animate a picture", "the picture in **Load Image** (any size: it is cropped to "
                             "the model's); then **seed** in Sample Motion (how it moves) and **time** in Project "
                             f"Image: the video passes through your picture {PICTURE_TIME:g} s in.", height=300)),
                       width=250),
                Column((Group("Save", ("7",)),), width=260))),
    ),
    # Load Video -> its frames and fps -> Project Video -> a Timeline past the clip's end -> Render.
    "stylegan_v_continue_clip": (
        {"1": load_model(),
         "10": {"class_type": "LoadVideo", "inputs": {"file": CLIP}},
         "11": {"class_type": "GetVideoComponents", "inputs": {"video": ["10", 0]}},
         "12": to_model_size(["11", 0]),
         "13": {"class_type": "StyleGANV_ProjectVideo",
                "inputs": {"model": ["1", 0], "images": ["12", 0], "fps": ["11", 2], "steps": 300, **SEARCH,
                           "preview_every": 10}, "_meta": {"title": "Project Video"}},
         "4": timeline(FPS, SECONDS),
         "5": render(["13", 0], ["13", 1]), "7": save_video("stylegan_v/continued_clip")},
        Layout((Column((Group("Model", ("1",)), Group("Content", ("10",))), width=250),
                Column((Group("Content", ("11",)), Group("Time", ("4",))), width=240, top=84),
                Column((Group("Content", ("12",)),), width=230, top=400),
                Column((Group("Motion", ("13",)),), width=260, top=-330),
                Column((Group("Render", ("5",)),
                        Note("Continue a clip", "the clip in **Load Video** (a few seconds; frames are cropped "
                             "to the model's size); then **duration** in Timeline: longer than the clip, the "
                             "fitted motion carries on past its end.", height=280)), width=250),
                Column((Group("Save", ("7",)),), width=260))),
    ),
}


# What each workflow writes (one mp4 at the model's size, 32 for the demo and the tests' models).
EXPECTED = {name: {"frames": round(SECONDS * FPS), "fps": FPS, "size": (32, 32), "files": 1} for name in WORKFLOWS}


def write_inputs(input_dir: Path) -> None:
    """The picture and clip the workflows name: what the bundled demo model renders (seeds 31/32)."""
    from PIL import Image

    import stylegan_v
    from stylegan_v import render as R
    from stylegan_v.video import write_mp4

    input_dir.mkdir(parents=True, exist_ok=True)
    G = stylegan_v.load(BUNDLED_DEMO)
    ws = R.sample_content(G, seed=31, batch_size=1)
    t = R.timestamps(num_frames=CLIP_FRAMES, fps=CLIP_FPS, dataset_fps=G.model_config.dataset_fps)
    frames = R.to_uint8(R.render(G, ws, R.MotionSeed(seed=32, batch_size=1), t))[0]
    Image.fromarray(frames[CLIP_FRAMES // 2].numpy()).save(input_dir / PICTURE)
    write_mp4(input_dir / CLIP, [frames], fps=CLIP_FPS, crf=10)
