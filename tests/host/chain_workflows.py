"""Examples that chain Render's outputs into other packs' nodes, and what those nodes declare.

- upscale with a model (core nodes only): a template in workflows/, run in the host with a
  stand-in upscale model the tests write (`write_upscale_model`);
- VideoHelperSuite's Video Combine, and RIFE frame interpolation: packs that cannot be installed
  here, so these go to docs/chains/ (ComfyUI would list a file in workflows/ as a template
  that opens with missing nodes) with a screenshot each, and their links are checked against
  the node definitions in THIRD_PARTY, copied by hand from the packs' sources.
"""

from __future__ import annotations

from pathlib import Path

from .make_workflows import REPO_ROOT, Column, Group, Layout, Note, latents, render, save_video, timeline

CHAINS_DIR = REPO_ROOT / "docs" / "chains"
UPSCALE_MODEL = "stylegan_v_stand_in_2x.safetensors"  # the name the template loads until the user picks theirs
UPSCALE_SCALE = 2  # of the stand-in: what the tests expect the template to write


def create_video(images: list, fps: float | list) -> dict:
    return {"class_type": "CreateVideo", "inputs": {"images": images, "fps": fps}}


def chain_layout(note: Note, *later: Column) -> Layout:
    return Layout((Column((Group("Model", ("1",)), note), width=250),
                   Column((Group("Content", ("2",)), Group("Motion", ("3",)), Group("Time", ("4",))), top=84),
                   Column((Group("Render", ("5",)),), width=250),
                   *later))


# Node definitions of the third-party nodes the chains use, in /object_info's format (what the
# frontend registers), written from the packs' sources:
# - VHS_VideoCombine: Kosinkadink/ComfyUI-VideoHelperSuite, videohelpersuite/nodes.py, class
#   VideoCombine (images and frame_rate are `imageOrLatent` / `floatOrInt` from
#   videohelpersuite/utils.py: MultiInput("IMAGE", [IMAGE, LATENT]), MultiInput("FLOAT", [FLOAT,
#   INT]); the format list holds the formats of its video_formats/ folder, here the common ones);
# - RIFE VFI: Fannovel16/ComfyUI-Frame-Interpolation, vfi_models/rife/__init__.py, class
#   RIFE_VFI (registered under "RIFE VFI" in the pack's __init__.py).
THIRD_PARTY = {
    "VHS_VideoCombine": {
        "pack": "ComfyUI-VideoHelperSuite",
        "display_name": "Video Combine 🎥🅥🅗🅢", "category": "Video Helper Suite 🎥🅥🅗🅢",
        "input": {"required": {
            "images": ["IMAGE", {}],
            "frame_rate": ["FLOAT", {"default": 8, "min": 1, "step": 1}],
            "loop_count": ["INT", {"default": 0, "min": 0, "max": 100, "step": 1}],
            "filename_prefix": ["STRING", {"default": "AnimateDiff"}],
            "format": [["image/gif", "image/webp", "video/h264-mp4", "video/h265-mp4", "video/webm"], {}],
            "pingpong": ["BOOLEAN", {"default": False}],
            "save_output": ["BOOLEAN", {"default": True}]},
            "optional": {"audio": ["AUDIO"], "meta_batch": ["VHS_BatchManager"], "vae": ["VAE"]}},
        "accepts": {"images": ["IMAGE", "LATENT"], "frame_rate": ["FLOAT", "INT"]},
        "output": ["VHS_FILENAMES"], "output_name": ["Filenames"], "output_node": True,
    },
    "RIFE VFI": {
        "pack": "ComfyUI-Frame-Interpolation",
        "display_name": "RIFE VFI (recommend rife47 and rife49)", "category": "ComfyUI-Frame-Interpolation/VFI",
        "input": {"required": {
            "ckpt_name": [["rife40.pth", "rife41.pth", "rife42.pth", "rife43.pth", "rife44.pth", "rife45.pth",
                           "rife46.pth", "rife47.pth", "sudo_rife4_269.662_testV1_scale1.pth"],
                          {"default": "rife47.pth"}],
            "frames": ["IMAGE"],
            "clear_cache_after_n_frames": ["INT", {"default": 10, "min": 1, "max": 1000}],
            "multiplier": ["INT", {"default": 2, "min": 1}],
            "fast_mode": ["BOOLEAN", {"default": True}],
            "ensemble": ["BOOLEAN", {"default": True}],
            "scale_factor": [[0.25, 0.5, 1.0, 2.0, 4.0], {"default": 1.0}]},
            "optional": {"optional_interpolation_states": ["INTERPOLATION_STATES"]}},
        "output": ["IMAGE"], "output_name": ["IMAGE"], "output_node": False,
    },
}


def node_defs() -> dict:
    """THIRD_PARTY as the frontend's node definitions (for laying out the chains in the page)."""
    return {name: {"name": name, "display_name": d["display_name"], "category": d["category"], "input": d["input"],
                   "input_order": {k: list(v) for k, v in d["input"].items()}, "output": d["output"],
                   "output_name": d["output_name"], "output_is_list": [False] * len(d["output"]),
                   "output_node": d["output_node"], "python_module": f"custom_nodes.{d['pack']}",
                   "description": f"from {d['pack']} (not installed here)"}
            for name, d in THIRD_PARTY.items()}


RIFE_FPS, RIFE_MULTIPLIER = 12.0, 2  # rendered at 12 fps, interpolated to 24

# The template (core nodes only): Render -> Load Upscale Model + Upscale Image (using Model) ->
# Create Video with Render's fps -> Save Video.
TEMPLATES = {
    "stylegan_v_upscale_model": (
        {**latents(4, 5, 1), "4": timeline(16.0, 2.0), "5": render("StyleGANV_Render", 0),
         "20": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": UPSCALE_MODEL}},
         "21": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["20", 0], "image": ["5", 0]}},
         "22": create_video(["21", 0], ["5", 1]), "7": save_video("stylegan_v/upscaled_model", "22", 0)},
        # The upscale model's loader sits low, so its wire passes below Render; every link between
        # two nodes spans columns (a wire within a column would run right to left).
        Layout((Column((Group("Model", ("1",)),
                        Note("Upscale with a model", "**model_name** in Load Upscale Model: put an upscale "
                             "model (ESRGAN, RealESRGAN, SwinIR: what ComfyUI's core loader reads) in "
                             "`ComfyUI/models/upscale_models/`. The one named here is a 2x stand-in the tests "
                             "write.", height=290)), width=250),
                Column((Group("Content", ("2",)), Group("Motion", ("3",)), Group("Time", ("4",)),
                        Group("Model", ("20",))), top=84),
                Column((Group("Render", ("5",)),), width=250),
                Column((Group("Render", ("21",)),), width=260, top=200),
                Column((Group("Save", ("22",)),), width=220),
                Column((Group("Save", ("7",)),), width=280))),
    ),
}

# The chains that need a third-party pack (docs/chains/<id>.json, screenshots beside them).
CHAINS = {
    # Render's images and fps straight into VideoHelperSuite's saver.
    "vhs_video_combine": (
        {**latents(42, 7, 1), "4": timeline(25.0, 4.0), "5": render("StyleGANV_Render", 0),
         "30": {"class_type": "VHS_VideoCombine",
                "inputs": {"images": ["5", 0], "frame_rate": ["5", 1], "loop_count": 0,
                           "filename_prefix": "stylegan_v/vhs", "format": "video/h264-mp4", "pingpong": False,
                           "save_output": True}}},
        chain_layout(Note("Into VideoHelperSuite", "needs **ComfyUI-VideoHelperSuite** (Video Combine). "
                          "Render's **images** go to images and its **fps** to frame_rate, so the saver "
                          "always plays at the Timeline's rate."), Column((Group("Save", ("30",)),), width=320)),
    ),
    # RIFE doubles the frames; Create Video plays them at twice the Timeline's fps.
    "rife_interpolation": (
        {**latents(42, 7, 1), "4": timeline(RIFE_FPS, 4.0), "5": render("StyleGANV_Render", 0),
         "31": {"class_type": "RIFE VFI",
                "inputs": {"ckpt_name": "rife47.pth", "frames": ["5", 0], "clear_cache_after_n_frames": 10,
                           "multiplier": RIFE_MULTIPLIER, "fast_mode": True, "ensemble": True, "scale_factor": 1.0}},
         "22": create_video(["31", 0], RIFE_FPS * RIFE_MULTIPLIER),
         "7": save_video("stylegan_v/interpolated", "22", 0)},
        chain_layout(Note("Frame interpolation", "needs **ComfyUI-Frame-Interpolation** (RIFE VFI; FILM VFI "
                          "takes the same frames and multiplier). Keep **fps** in Create Video = Timeline fps x "
                          "multiplier (12 x 2 = 24). Or skip RIFE: a Timeline at 24 fps renders the in-between "
                          "frames exactly.", height=290),
                     Column((Group("Render", ("31",)),), width=280, top=120),
                     Column((Group("Save", ("22",)),), width=220),
                     Column((Group("Save", ("7",)),), width=280)),
    ),
}


def write_upscale_model(models_dir: Path) -> Path:
    """models/upscale_models/<UPSCALE_MODEL>: a RealESRGAN-compact net (spandrel's "Compact") with
    random weights and a zero last layer, so that its output is exactly its built-in nearest-
    neighbour enlargement: small, known, and loaded by the same code as a real upscaler."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=UPSCALE_SCALE)
    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    last = max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    state[f"body.{last}.weight"].zero_()
    state[f"body.{last}.bias"].zero_()
    path = models_dir / "upscale_models" / UPSCALE_MODEL
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path
