"""The editing workflows inside a running ComfyUI 0.3.75 server, over its HTTP API.

Each example workflow (seamless loop, slow-motion ramp, content morph, content x motion grid)
runs as ComfyUI runs it, and the mp4 it writes is decoded and checked: frame count, fps, size,
and for the loop that the last frame flows into the first. (The browser-driven test in
test_nodes_host.py runs the same workflow files from the real frontend.)
"""

from __future__ import annotations

import copy
import json

import av
import numpy as np
import pytest

from host.editing_workflows import EXPECTED, WORKFLOWS
from host.harness import ComfyServer, HttpError, execution_error, require_host, status_messages
from host.make_workflows import NOTE_TYPES, workflow_file
from host.models import DEMO_CHECKPOINT, make_checkpoint

pytestmark = pytest.mark.host


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    host = require_host()
    work = tmp_path_factory.mktemp("comfy_editing_server")
    srv = ComfyServer(host, work, env={"STYLEGAN_V_CACHE": str(work / "svcache")})
    srv.models_dir.mkdir(parents=True)
    make_checkpoint(srv.models_dir / DEMO_CHECKPOINT)
    with srv:
        failed = [line for line in srv.log_text().splitlines() if "IMPORT FAILED" in line and "stylegan-v" in line]
        assert not failed, srv.log_tail()
        yield srv


def decode(path) -> tuple[np.ndarray, float, tuple[int, int]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, float(stream.average_rate), (stream.width, stream.height)


def run_workflow(server, name: str, prompt: dict | None = None):
    entry = server.run(prompt or WORKFLOWS[name][0])
    assert entry["status"]["status_str"] == "success", execution_error(entry) or server.log_tail()
    (saved,) = [item for out in entry["outputs"].values() for item in out.get("images", [])]
    return decode(server.output_file(saved))


def test_object_info_lists_the_editing_nodes(server):
    from test_nodes_editing import EDIT_IDS

    info = server.get("/object_info")
    for node_id in EDIT_IDS:
        node = info[node_id]
        assert node["category"].startswith("StyleGAN-V/") and node["python_module"] == "custom_nodes.stylegan-v"
        for name, spec in {**node["input"]["required"], **node["input"].get("optional", {})}.items():
            assert spec[1].get("tooltip"), f"{node_id}.{name}"
            if spec[0] in ("INT", "FLOAT"):
                assert "min" in spec[1] and "max" in spec[1], f"{node_id}.{name} needs a range"
        assert all(node["output_tooltips"]), node_id
    assert info["StyleGANV_ContentMotionGrid"]["output"] == ["STYLEGAN_V_CONTENT", "STYLEGAN_V_MOTION", "INT"]
    assert info["StyleGANV_LoadDirection"]["output"] == ["STYLEGAN_V_DIRECTION"]
    assert info["StyleGANV_SaveLatents"]["output_node"]


def test_workflow_files_are_the_generated_ones():
    """The files in workflows/ hold the prompts (and so the EXPECTED outputs) defined in editing_workflows."""
    for name, (prompt, _) in WORKFLOWS.items():
        workflow = json.loads(workflow_file(name).read_text())
        nodes = [n for n in workflow["nodes"] if n["type"] not in NOTE_TYPES]  # notes live only in the UI
        assert sorted(n["type"] for n in nodes) == sorted(p["class_type"] for p in prompt.values()), name
        assert workflow_file(name).with_suffix(".jpg").is_file(), name
        for node in nodes:
            inputs = prompt[str(node["id"])]["inputs"]
            values = list(node.get("widgets_values") or [])
            for widget in [i["name"] for i in node.get("inputs", []) if "widget" in i]:
                value = values.pop(0)
                if widget == "seed":
                    assert values.pop(0) == "fixed", f"{name}: seeds must stay fixed"
                if not isinstance(inputs[widget], list):  # a linked input's widget value is unused
                    assert value == inputs[widget], (name, node["type"], widget)


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_editing_workflow_writes_the_expected_video(server, name):
    frames, fps, size = run_workflow(server, name)
    expected = EXPECTED[name]
    assert (len(frames), fps, size) == (expected["frames"], expected["fps"], expected["size"]), name
    assert frames.std() > 5, "the video is blank"


def frame_steps(frames: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean absolute change between consecutive frames, and across the wrap (last -> first)."""
    x = frames.astype(np.float64)
    return np.abs(np.diff(x, axis=0)).mean(axis=(1, 2, 3)), float(np.abs(x[0] - x[-1]).mean())


def test_loop_video_flows_from_its_last_frame_into_its_first(server):
    frames, _, _ = run_workflow(server, "stylegan_v_seamless_loop")
    steps, wrap = frame_steps(frames)
    assert wrap <= steps.max() and wrap < 3 * np.median(steps), (wrap, np.median(steps), steps.max())
    # Locally too: the wrap is about as large as the steps on either side of it (the motion's pace there).
    neighbours = max(steps[-2:].max(), steps[:2].max())
    assert wrap < 1.5 * neighbours, (wrap, steps[-2:], steps[:2])
    # The same span of an ordinary motion does jump at the wrap: the check can tell.
    plain = copy.deepcopy(WORKFLOWS["stylegan_v_seamless_loop"][0])
    plain["3"] = {"class_type": "StyleGANV_SampleMotion", "inputs": {"seed": 8, "batch_size": 1}}
    plain["4"] = {"class_type": "StyleGANV_Timeline",
                  "inputs": {"model": ["1", 0], "fps": 25.0, "duration": len(frames), "unit": "frames",
                             "start_time": 0.0, "speed": 1.0}}
    plain["7"]["inputs"]["filename_prefix"] = "stylegan_v/not_a_loop"
    plain_steps, plain_wrap = frame_steps(run_workflow(server, "", plain)[0])
    assert plain_wrap > 3 * np.median(plain_steps) and plain_wrap > 2 * wrap
    assert plain_wrap > 1.5 * max(plain_steps[-2:].max(), plain_steps[:2].max())


def test_slow_motion_ramp_moves_slowly_in_the_middle(server):
    frames, _, _ = run_workflow(server, "stylegan_v_slow_motion_ramp")
    steps, _ = frame_steps(frames)  # 30 fps: 2 s is frame 60, where the speed is 0.25
    assert np.median(steps[50:70]) < 0.6 * np.median(steps[:20])
    assert np.median(steps[50:70]) < 0.6 * np.median(steps[-20:])


@pytest.mark.parametrize("node,inputs,name", [
    ("4", {"speed_keyframes": "0:1, soon:2"}, "speed_keyframes"),
    ("4", {"interpolation": "cubic"}, "interpolation"),
    ("4", {"fps": 0.0}, "fps"),
])
def test_bad_speed_inputs_are_refused_before_execution(server, node, inputs, name):
    p = copy.deepcopy(WORKFLOWS["stylegan_v_slow_motion_ramp"][0])
    p[node]["inputs"].update(inputs)
    with pytest.raises(HttpError) as refused:
        server.submit(p)
    assert refused.value.status == 400
    errors = refused.value.body["node_errors"][node]["errors"]
    assert any(name in e["details"] for e in errors), errors


@pytest.mark.parametrize("workflow,node,inputs,name", [
    ("stylegan_v_seamless_loop", "3", {"period_seconds": 0.0}, "period_seconds"),
    ("stylegan_v_seamless_loop", "4", {"periods": 0}, "periods"),
    ("stylegan_v_content_morph", "9", {"keyframes": "0:0 ; 1"}, "keyframes"),
])
def test_out_of_range_edit_inputs_are_refused(server, workflow, node, inputs, name):
    p = copy.deepcopy(WORKFLOWS[workflow][0])
    p[node]["inputs"].update(inputs)
    with pytest.raises(HttpError) as refused:
        server.submit(p)
    assert refused.value.status == 400
    errors = refused.value.body["node_errors"][node]["errors"]
    assert any(name in e["details"] for e in errors), errors


def test_loop_timeline_on_an_ordinary_motion_says_what_to_connect(server):
    p = copy.deepcopy(WORKFLOWS["stylegan_v_seamless_loop"][0])
    p["3"] = {"class_type": "StyleGANV_SampleMotion", "inputs": {"seed": 8, "batch_size": 1}}
    entry = server.run(p)
    (error,) = status_messages(entry, "execution_error")
    assert error["node_id"] == "4" and "Loop Motion" in error["exception_message"]


def test_latents_saved_in_one_prompt_load_in_another(server):
    save = {"1": WORKFLOWS["stylegan_v_seamless_loop"][0]["1"], "2": WORKFLOWS["stylegan_v_seamless_loop"][0]["2"],
            "3": WORKFLOWS["stylegan_v_seamless_loop"][0]["3"],
            "9": {"class_type": "StyleGANV_SaveLatents",
                  "inputs": {"filename_prefix": "stylegan_v_latents/shared", "content": ["2", 0], "motion": ["3", 0]}}}
    entry = server.run(save)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    (saved,) = entry["outputs"]["9"]["latents"]
    name = f"stylegan_v_latents/{saved['filename']} [output]"
    info = server.get("/object_info/StyleGANV_LoadContent")["StyleGANV_LoadContent"]
    assert name in info["input"]["required"]["latent_file"][1]["options"]

    original = run_workflow(server, "stylegan_v_seamless_loop")[0]
    loaded = copy.deepcopy(WORKFLOWS["stylegan_v_seamless_loop"][0])
    loaded["2"] = {"class_type": "StyleGANV_LoadContent", "inputs": {"latent_file": name}}
    loaded["3"] = {"class_type": "StyleGANV_LoadMotion", "inputs": {"latent_file": name}}
    loaded["7"]["inputs"]["filename_prefix"] = "stylegan_v/loop_from_file"
    assert np.array_equal(run_workflow(server, "", loaded)[0], original)
    with pytest.raises(HttpError) as refused:
        loaded["2"]["inputs"]["latent_file"] = "missing.safetensors"
        server.submit(loaded)
    assert refused.value.status == 400
