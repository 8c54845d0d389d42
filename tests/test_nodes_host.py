"""The pack inside a running ComfyUI 0.3.75 server: HTTP API and the real web frontend.

One server (started once for this module) with the pack loaded from a custom_nodes folder
named by --extra-model-paths-config, and small random-weight checkpoints in models/stylegan_v.
The UI test loads every workflow in workflows/ in Debian's Chromium, presses Run, and checks
the files the workflow wrote: frame count, frame rate and size. The input folder holds the
picture and clip the projection examples name, models/upscale_models the stand-in upscaler.
"""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
import subprocess
import time
from urllib.parse import quote

import av
import pytest
from host.chain_workflows import UPSCALE_SCALE
from host.editing_workflows import EXPECTED as EDITING_EXPECTED  # the editing examples' outputs
from host.harness import REPO_ROOT, ComfyServer, HttpError, count, execution_error, require_host, status_messages
from host.make_workflows import NOTE_TYPES, TITLES, WORKFLOWS, prepare_host, workflow_id
from host.models import DEMO_CHECKPOINT, make_checkpoint
from host.projection_workflows import EXPECTED as PROJECTION_EXPECTED
from PIL import Image

pytestmark = pytest.mark.host

NODE_IDS = ["StyleGANV_LoadModel", "StyleGANV_SampleContent", "StyleGANV_SampleMotion", "StyleGANV_Timeline",
            "StyleGANV_Render", "StyleGANV_RenderToFile"]
WORKFLOW_FILES = sorted((REPO_ROOT / "workflows").glob("*.json"))
LOADED = "Requested to load StyleGANVModel"  # ComfyUI's log line when it (re)loads our model


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    host = require_host()
    work = tmp_path_factory.mktemp("comfy_server")
    srv = ComfyServer(host, work, env={"STYLEGAN_V_CACHE": str(work / "svcache")})
    srv.models_dir.mkdir(parents=True)
    make_checkpoint(srv.models_dir / DEMO_CHECKPOINT)
    (srv.models_dir / "corrupt.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    (srv.models_dir / "not_stylegan.pkl").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    prepare_host(srv)
    with srv:
        failed = [line for line in srv.log_text().splitlines() if "IMPORT FAILED" in line and "stylegan-v" in line]
        assert not failed, srv.log_tail()
        yield srv


def prompt(name: str, **timeline_inputs) -> dict:
    """An example workflow's API prompt, with timeline inputs changed (e.g. shorter for CI)."""
    p = copy.deepcopy(WORKFLOWS[name][0])
    p["4"]["inputs"].update(timeline_inputs)
    return p


def decode_mp4(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, float(stream.average_rate), (stream.width, stream.height), stream.codec_context.name, \
            dict(container.metadata)


def test_object_info_lists_every_node_with_its_schema(server):
    info = server.get("/object_info")
    for node_id in NODE_IDS:
        node = info[node_id]
        assert node["category"] == "StyleGAN-V" and node["python_module"] == "custom_nodes.stylegan-v"
        assert node["description"] and node["display_name"]
        for name, spec in {**node["input"]["required"], **node["input"].get("optional", {})}.items():
            assert spec[1].get("tooltip"), f"{node_id}.{name}"
        assert all(node["output_tooltips"]), node_id
    ckpt = info["StyleGANV_LoadModel"]["input"]["required"]["ckpt_name"]
    assert ckpt[0] == "COMBO"
    assert sorted(ckpt[1]["options"]) == sorted([DEMO_CHECKPOINT, "corrupt.safetensors", "not_stylegan.pkl"])
    assert info["StyleGANV_LoadModel"]["output"] == ["STYLEGAN_V_MODEL"]
    assert info["StyleGANV_SampleContent"]["output"] == ["STYLEGAN_V_CONTENT"]
    assert info["StyleGANV_SampleMotion"]["output"] == ["STYLEGAN_V_MOTION"]
    assert info["StyleGANV_Timeline"]["output"] == ["STYLEGAN_V_TIMELINE"]
    render = info["StyleGANV_Render"]
    assert render["output"] == ["IMAGE", "FLOAT", "VIDEO"] and not render["output_node"]
    assert render["input_order"]["required"] == ["model", "content", "motion", "timeline", "chunk_size",
                                                 "grid_columns"]
    to_file = info["StyleGANV_RenderToFile"]
    assert to_file["output_node"] and to_file["input_order"]["required"][-2:] == ["crf", "filename_prefix"]
    assert server.get("/object_info/StyleGANV_Render")["StyleGANV_Render"] == render


def test_every_node_has_a_help_page(server):
    for node_id in NODE_IDS:
        page = server.get(f"/extensions/stylegan-v/docs/{node_id}.md")
        assert isinstance(page, str) and page.startswith("# "), node_id


def test_model_folder_is_registered(server):
    assert "stylegan_v" in server.get("/models")
    assert DEMO_CHECKPOINT in server.get("/models/stylegan_v")


def test_workflows_are_served_as_templates(server):
    names = sorted(p.stem for p in WORKFLOW_FILES)
    assert len(names) >= 3
    assert sorted(server.get("/api/workflow_templates")["stylegan-v"]) == names
    for path in WORKFLOW_FILES:
        # Titles have spaces: quoted in the URL, as the frontend's fetch does.
        assert server.get(f"/api/workflow_templates/stylegan-v/{quote(path.name)}") == json.loads(path.read_text())
        assert server.request("GET", f"/api/workflow_templates/stylegan-v/{quote(path.stem)}.jpg") is not None
        assert path.with_suffix(".jpg").is_file(), f"{path.stem} has no thumbnail"


def test_render_prompt_writes_video_and_resubmission_is_cached(server):
    p = prompt("stylegan_v_basic_video", duration=1.0)
    entry = server.run(p)
    assert entry["status"]["status_str"] == "success", execution_error(entry) or server.log_tail()
    (saved,) = entry["outputs"]["7"]["images"]
    frames, fps, size, codec, metadata = decode_mp4(server.output_file(saved))
    assert (frames, fps, size, codec) == (25, 25.0, (32, 32), "h264")
    assert json.loads(metadata["prompt"])["5"]["class_type"] == "StyleGANV_Render"

    started = time.monotonic()
    again = server.run(p)
    assert again["status"]["status_str"] == "success"
    (cached,) = status_messages(again, "execution_cached")
    assert sorted(cached["nodes"]) == sorted(p), "an identical prompt must be served from the cache"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("node,inputs,name", [
    ("5", {"chunk_size": 0}, "chunk_size"),
    ("4", {"fps": 1000.0}, "fps"),
    ("2", {"truncation_psi": 5.0}, "truncation_psi"),
    ("2", {"batch_size": 0}, "batch_size"),
    ("1", {"ckpt_name": "nope.safetensors"}, "ckpt_name"),
    ("4", {"unit": "minutes"}, "unit"),
])
def test_invalid_inputs_are_refused_before_execution(server, node, inputs, name):
    p = prompt("stylegan_v_basic_video")
    p[node]["inputs"].update(inputs)
    with pytest.raises(HttpError) as refused:
        server.submit(p)
    assert refused.value.status == 400
    errors = refused.value.body["node_errors"][node]["errors"]
    assert any(e["extra_info"].get("input_name") == name and name in e["details"] for e in errors), errors


@pytest.mark.parametrize("ckpt,message", [
    ("corrupt.safetensors", "'corrupt.safetensors' is not a usable StyleGAN-V checkpoint"),
    ("not_stylegan.pkl", "'not_stylegan.pkl' is not a usable StyleGAN-V checkpoint"),
])
def test_bad_checkpoint_gives_a_node_error_and_the_server_keeps_serving(server, ckpt, message):
    p = prompt("stylegan_v_basic_video", duration=0.2)
    p["1"]["inputs"]["ckpt_name"] = ckpt
    entry = server.run(p)
    assert entry["status"]["status_str"] == "error"
    (error,) = status_messages(entry, "execution_error")
    assert error["node_id"] == "1" and message in error["exception_message"]
    assert server.run(prompt("stylegan_v_basic_video", duration=0.2, start_time=1.0))["status"]["status_str"] \
        == "success"


def test_too_long_for_memory_says_to_render_to_file(server):
    p = prompt("stylegan_v_basic_video", duration=1_000_000.0, unit="frames")  # x 64 videos: far too big
    p["2"]["inputs"]["batch_size"] = p["3"]["inputs"]["batch_size"] = 64
    entry = server.run(p)
    (error,) = status_messages(entry, "execution_error")
    assert error["node_id"] == "5" and "Render to File" in error["exception_message"]


def test_interrupt_stops_a_long_render_promptly(server):
    p = prompt("stylegan_v_long_video_to_file", duration=3600.0)
    p["5"]["inputs"].update(filename_prefix="interrupted/long", chunk_size=2)
    prompt_id = server.submit(p)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the render node itself runs
        running = server.get("/queue")["queue_running"]
        if running and running[0][1] == prompt_id and server.log_text().count(LOADED):
            break
        time.sleep(0.1)
    time.sleep(1.0)
    server.post("/interrupt", {})
    interrupted_at = time.monotonic()
    entry = server.wait(prompt_id, timeout=60)
    assert time.monotonic() - interrupted_at < 10, "the render must stop between chunks"
    assert entry["status"]["status_str"] == "error"
    assert status_messages(entry, "execution_interrupted")
    folder = server.output_dir / "interrupted"
    assert not folder.exists() or os.listdir(folder) == [], "no partial file may be left"


def test_free_unloads_the_model(server):
    def render(seed):
        p = prompt("stylegan_v_basic_video", duration=0.2)
        p["2"]["inputs"]["seed"] = seed
        entry = server.run(p)
        assert entry["status"]["status_str"] == "success", execution_error(entry)

    render(1001)
    loads = count(LOADED, server.log_text())
    render(1002)  # new content, same model: still loaded
    assert count(LOADED, server.log_text()) == loads
    server.post("/free", {"unload_models": True})
    time.sleep(1.0)
    render(1003)
    assert count(LOADED, server.log_text()) == loads + 1, "after /free the model must be loaded again"


# -- the real frontend ------------------------------------------------------------------------

# What CI changes in the page before Run: ten minutes are for users, and so are full searches
# (the perceptual network takes tens of seconds to load; tests/test_projection.py covers it).
SHORT_SEARCH = {"steps": 2, "perceptual": "none"}
CI_OVERRIDES = {"stylegan_v_long_video_to_file": {"StyleGANV_Timeline": {"duration": 2.0}},
                "stylegan_v_animate_picture": {"StyleGANV_ProjectImage": SHORT_SEARCH},
                "stylegan_v_continue_clip": {"StyleGANV_ProjectVideo": SHORT_SEARCH}}
CI_TIMELINE = {name: o["StyleGANV_Timeline"] for name, o in CI_OVERRIDES.items() if "StyleGANV_Timeline" in o}


def widget_values(node: dict) -> dict:
    """Widget name -> value for a UI-format node (the frontend adds a control value after seeds)."""
    names = [i["name"] for i in node.get("inputs", []) if "widget" in i]
    values, result = list(node.get("widgets_values") or []), {}
    for name in names:
        result[name] = values.pop(0)
        if name == "seed":
            values.pop(0)
    return result


# Workflows made only of these nodes get exact expectations (frames, fps, size) computed from
# their widgets; others bring theirs (EDITING_EXPECTED) or get the generic checks below.
BASIC_TYPES = {"StyleGANV_LoadModel", "StyleGANV_SampleContent", "StyleGANV_SampleMotion", "StyleGANV_Timeline",
               "StyleGANV_Render", "StyleGANV_RenderToFile", "CreateVideo", "SaveVideo", "ImageScaleBy",
               "SaveAnimatedWEBP", "UpscaleModelLoader", "ImageUpscaleWithModel", *NOTE_TYPES}


def expected_output(workflow: dict, overrides: dict) -> dict | None:
    if not {n["type"] for n in workflow["nodes"]} <= BASIC_TYPES:
        return None
    nodes = {n["type"]: widget_values(n) for n in workflow["nodes"]}
    tl = {**nodes["StyleGANV_Timeline"], **overrides}
    frames = math.ceil(tl["duration"] * tl["fps"] - 1e-6) if tl["unit"] == "seconds" else math.ceil(tl["duration"])
    batch = nodes["StyleGANV_SampleContent"]["batch_size"]
    render = nodes.get("StyleGANV_Render") or nodes["StyleGANV_RenderToFile"]
    columns = min(render["grid_columns"], batch)
    width, height = (32 * columns, 32 * math.ceil(batch / columns)) if columns else (32, 32)
    videos = 1 if columns else batch
    scale = nodes.get("ImageScaleBy", {}).get("scale_by", 1.0)
    if "ImageUpscaleWithModel" in nodes:
        scale *= UPSCALE_SCALE  # the stand-in upscaler the server holds
    return {"frames": frames * (1 if columns or "StyleGANV_RenderToFile" in nodes else videos),
            "fps": tl["fps"], "size": (round(width * scale), round(height * scale)),
            "files": videos if "StyleGANV_RenderToFile" in nodes else 1}


def saved_files(entry: dict) -> list[dict]:
    return [item for out in entry["outputs"].values() for item in out.get("images", [])
            if item.get("type") == "output"]


def test_every_workflow_runs_from_the_real_frontend(server, tmp_path):
    host = server.host
    assert host.chromium is not None, "the host was built without Chromium (SKIP_UI=1)"
    job = {"url": server.url, "chromium": str(host.chromium), "shots": str(tmp_path), "pack": "stylegan-v",
           "workflows": [str(p) for p in WORKFLOW_FILES], "timeout_ms": 240_000,
           "overrides": {TITLES[name]: values for name, values in CI_OVERRIDES.items()}}
    (tmp_path / "job.json").write_text(json.dumps(job))
    run = subprocess.run([host.node, str(REPO_ROOT / "tests/host/ui/drive.mjs"), str(tmp_path / "job.json")],
                         check=False, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])

    assert sorted(report["templates"]["stylegan-v"]) == sorted(p.stem for p in WORKFLOW_FILES)
    assert report["templates_entry_visible"], f"no 'stylegan-v' entry in the Templates browser ({tmp_path})"
    assert all(report["templates_titles_visible"].values()), report["templates_titles_visible"]

    for result, path in zip(report["workflows"], WORKFLOW_FILES):
        name = workflow_id(path)
        assert result["name"] == path.stem and name, (result["name"], path)
        assert result["missing_in_frontend"] == [] and not result["missing_dialog"], result
        assert len(result["overridden"]) == sum(map(len, CI_OVERRIDES.get(name, {}).values())), result["overridden"]
        assert result["queue_response"]["status"] == 200, result["queue_response"]
        assert result["status"] == "success", (name, server.log_tail())
        entry = server.get(f"/history/{result['prompt_id']}")[result["prompt_id"]]
        workflow = json.loads(path.read_text())
        if {"SaveVideo", "StyleGANV_RenderToFile"} & {n["type"] for n in workflow["nodes"]}:
            assert result["videos_shown"] >= 1, f"{name}: no video preview in the UI"
            # The mp4 carries its workflow: dropping it on the UI rebuilds the same graph.
            assert result["restored_types"] == result["loaded_types"], (name, result["restored_types"])
        expected = EDITING_EXPECTED.get(name) or PROJECTION_EXPECTED.get(name) \
            or expected_output(workflow, CI_TIMELINE.get(name, {}))
        files = saved_files(entry)
        assert files and (expected is None or len(files) == expected["files"]), (name, files)
        for item in files:
            path_out = server.output_file(item)
            assert path_out.is_file() and path_out.stat().st_size > 0
            if path_out.suffix == ".webp":
                with Image.open(path_out) as im:
                    im.load()  # the frame duration is known once a frame is decoded
                    got = {"frames": im.n_frames, "size": im.size, "fps": 1000 / im.info["duration"]}
            else:
                frames, fps, size, codec, metadata = decode_mp4(path_out)
                assert codec == "h264", name
                got = {"frames": frames, "size": size, "fps": fps}
                # Like ComfyUI's own savers: the workflow that made the file travels inside it.
                assert json.loads(metadata.get("workflow", "{}")).get("nodes"), f"{name}: no workflow in the mp4"
            assert got["frames"] >= 1 and got["size"][0] % 2 == 0 and got["size"][1] % 2 == 0, (name, got)
            if expected is not None:
                assert (got["frames"], tuple(got["size"])) == (expected["frames"], tuple(expected["size"])), \
                    (name, got, expected)
                assert abs(got["fps"] - expected["fps"]) < 0.02 * expected["fps"], (name, got, expected)
