"""The example workflows as a user first sees them, in the real ComfyUI 0.3.75 frontend.

One server with the bundled demo model, one browser run (tests/host/ui/views.mjs) at 1600x1000
and 1280x800: every workflow opens from its file and from the Templates browser with every node
and group on visible canvas (not under the top bar, side bar, run bar or minimap) at a scale
where the canvas draws text; wires run left to right and never behind a node; the pack's socket
types have their own colours (through a theme switch) and the pack runs with its script blocked;
a workflow saved before the labels changed still validates. The files themselves are checked
for named groups, a note, and thumbnails that are frames of what the workflow renders.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from host.chain_workflows import CHAINS, CHAINS_DIR, THIRD_PARTY
from host.harness import require_host
from host.make_workflows import (
    NOTE_TYPES,
    SOCKET_TYPES,
    STEPS,
    TITLES,
    VIEWPORTS,
    WORKFLOWS_DIR,
    all_workflows,
    demo_resolution,
    demo_server,
    output_frames,
    run_views,
    thumbnail,
    thumbnail_prompt,
    workflow_file,
    workflow_id,
)
from PIL import Image

pytestmark = pytest.mark.host

WORKFLOW_FILES = sorted(WORKFLOWS_DIR.glob("*.json"))
OURS = sorted(name for p in WORKFLOW_FILES if (name := workflow_id(p)) in all_workflows())
BASIC = workflow_file("stylegan_v_basic_video").stem  # views.mjs names a workflow by its file
# The basic workflow as a user saved it before its labels, layout and Save path changed (a copy of
# the file as it was committed then, so the test needs no git history).
OLD_WORKFLOW = Path(__file__).resolve().parent / "fixtures" / "workflows" / "basic_video_as_saved_before_relabelling.json"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    host = require_host()
    assert host.chromium is not None, "the host was built without Chromium (SKIP_UI=1)"
    with demo_server(host, tmp_path_factory.mktemp("comfy_views")) as srv:
        yield srv


@pytest.fixture(scope="module")
def report(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("views")
    return run_views(server, tmp, WORKFLOW_FILES, run=[BASIC], old_workflow=OLD_WORKFLOW,
                     without_script=True)


def views(report, source):
    return {(v["name"], tuple(v["viewport"])): v for v in report["views"] if v["source"] == source}


@pytest.mark.parametrize("source", ["file", "templates"])
def test_every_workflow_opens_whole_and_readable(report, source):
    seen = views(report, source)
    assert sorted(seen) == sorted((p.stem, v) for p in WORKFLOW_FILES for v in VIEWPORTS)
    for (name, viewport), view in seen.items():
        assert view.get("found", True), f"{name}: no card in the Templates browser"
        assert view["hidden"] == [], (name, viewport, view["hidden"])
        assert not view["low_quality"], f"{name} at {viewport}: scale {view['scale']:.2f} draws no text"


def test_wires_run_left_to_right_and_never_behind_a_node(report):
    for view in report["views"]:
        if view["source"] == "file":
            assert view["wiring"] == [], (view["name"], view["wiring"])


def test_the_saved_view_is_what_opens(report):
    for (name, viewport), view in views(report, "file").items():
        saved = json.loads((WORKFLOWS_DIR / f"{name}.json").read_text())["extra"]["ds"]
        assert math.isclose(view["scale"], saved["scale"], rel_tol=1e-6), (name, viewport)


def test_the_basic_workflow_runs_from_the_page_and_shows_its_video(report):
    (basic,) = [w for w in report["workflows"] if w["name"] == BASIC]
    assert basic["status"] == "success" and basic["videos_shown"] >= 1, basic


def lab(colour: str) -> np.ndarray:
    """CIE L*a*b* (D65) of a #rgb or #rrggbb colour."""
    h = colour.lstrip("#")
    h = "".join(c * 2 for c in h) if len(h) == 3 else h
    rgb = np.array([int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)])
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


JND = 20.0  # CIE76 distance that reads as a different colour at a glance (2.3 is barely noticeable)


def test_socket_types_have_their_own_colours(report):
    colours = report["colours"]
    ours = {t: c["wire"] for t, c in colours["ours"].items()}
    assert sorted(ours) == sorted(SOCKET_TYPES)
    for state in (colours["ours"], colours["after_theme"]):
        for t in SOCKET_TYPES:
            assert state[t]["wire"] == state[t]["connected"] == state[t]["disconnected"] == ours[t], (t, state[t])
    others = {name: c for name, c in colours["core"].items() if name not in SOCKET_TYPES}
    others.update({f"default {k}": v for k, v in colours["defaults"].items()})
    for t, c in ours.items():
        for u, d in ours.items():
            assert t == u or np.linalg.norm(lab(c) - lab(d)) > JND, (t, u)
        for name, d in others.items():
            assert np.linalg.norm(lab(c) - lab(d)) > JND, (t, c, name, d)


def test_widgets_show_their_display_names(server, report):
    info = server.get("/object_info")
    shown = 0
    for node_id, labels in report["labels"].items():
        inputs = {**info[node_id]["input"]["required"], **info[node_id]["input"].get("optional", {})}
        for widget, label in labels.items():
            if widget in inputs:
                assert label == inputs[widget][1].get("display_name", widget), (node_id, widget, label)
                shown += label != widget
    assert shown >= 5  # truncation_psi, class_index and the keyframe inputs have names of their own


def test_the_pack_runs_with_its_script_blocked(report):
    blocked = report["without_script"]
    assert blocked["status"] == "success", blocked
    # Without the script the types fall back to the frontend's defaults: the check above can tell.
    assert all(c["wire"] != report["colours"]["ours"][t]["wire"] for t, c in blocked["colours"].items())


def test_a_workflow_saved_before_the_label_changes_still_validates(report):
    old = report["old_workflow"]
    assert old["status"] == 200 and old["body"]["node_errors"] == {}, old["body"]
    saved = json.loads(OLD_WORKFLOW.read_text())
    content = next(n for n in saved["nodes"] if n["type"] == "StyleGANV_SampleContent")
    sent = next(n for n in old["prompt"].values() if n["class_type"] == "StyleGANV_SampleContent")["inputs"]
    # Widgets are matched by position: the saved values land on the same inputs.
    assert [sent["seed"], sent["batch_size"], sent["truncation_psi"], sent["class_index"]] == \
        [content["widgets_values"][0], *content["widgets_values"][2:5]]


# -- the files --------------------------------------------------------------------------------

def inside(box, outer) -> bool:
    return outer[0] <= box[0] and outer[1] <= box[1] and box[0] + box[2] <= outer[0] + outer[2] \
        and box[1] + box[3] <= outer[1] + outer[3]


@pytest.mark.parametrize("name", OURS)
def test_workflow_has_named_steps_and_a_note(name):
    workflow = json.loads(workflow_file(name).read_text())
    groups = workflow["groups"]
    assert groups and all(g["title"] in STEPS for g in groups), [g["title"] for g in groups]
    notes = [n for n in workflow["nodes"] if n["type"] in NOTE_TYPES]
    assert len(notes) == 1, name
    text = notes[0]["widgets_values"][0]
    size = demo_resolution()
    assert "Change first" in text and f"{size}×{size} demo" in text and "models/stylegan_v" in text, text
    for node in workflow["nodes"]:
        if node["type"] in NOTE_TYPES:
            continue
        box = [node["pos"][0], node["pos"][1] - 30, node["size"][0], node["size"][1] + 30]
        assert sum(inside(box, g["bounding"]) for g in groups) == 1, (name, node["type"])


@pytest.mark.parametrize("name", OURS)
def test_thumbnail_is_frames_of_what_the_workflow_renders(server, name):
    prompt = all_workflows()[name][0]
    entry = server.run(thumbnail_prompt(prompt), timeout=600)
    assert entry["status"]["status_str"] == "success", server.log_tail()
    (item, *_) = [i for out in entry["outputs"].values() for i in out.get("images", []) if i.get("type") == "output"]
    fresh = np.asarray(thumbnail(output_frames(server.output_file(item))), dtype=np.float64)
    with Image.open(workflow_file(name).with_suffix(".jpg")) as im:
        stored = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert stored.shape == fresh.shape, "rerun: .venv/bin/python -m tests.host.make_workflows --thumbnails"
    # JPEG at quality 90 moves smooth pixels by a few levels; another picture differs by tens.
    assert np.abs(stored - fresh).mean() < 4.0, \
        f"{workflow_file(name).stem}.jpg is not what the workflow renders now; rerun make_workflows --thumbnails"


def test_templates_are_named_by_their_titles():
    # The Templates browser titles a pack's template by its file name: each file is one of ours.
    assert sorted(p.stem for p in WORKFLOW_FILES) == sorted(TITLES[name] for name in all_workflows())
    for path in WORKFLOW_FILES:
        assert path.with_suffix(".jpg").is_file(), f"{path.name} has no thumbnail"


# -- the chains into other packs (docs/chains/) -----------------------------------------------

CHAIN_FILES = sorted(CHAINS_DIR.glob("*.json"))


def accepts(declared: dict, name: str, link_type: str) -> bool:
    spec = {**declared["input"]["required"], **declared["input"].get("optional", {})}[name]
    return link_type in declared.get("accepts", {}).get(name, [spec[0]])


def test_chain_files_are_the_chains():
    assert sorted(p.stem for p in CHAIN_FILES) == sorted(CHAINS)
    for path in CHAIN_FILES:
        assert path.with_suffix(".png").is_file(), f"{path.name} has no screenshot"


@pytest.mark.parametrize("path", CHAIN_FILES, ids=lambda p: p.stem)
def test_chain_links_into_other_packs_match_their_declared_inputs(path):
    workflow = json.loads(path.read_text())
    nodes = {n["id"]: n for n in workflow["nodes"]}
    third_party = [n for n in nodes.values() if n["type"] in THIRD_PARTY]
    assert third_party, f"{path.name} uses no other pack"
    checked = 0
    for _, origin, origin_slot, target, target_slot, link_type in workflow["links"]:
        source, sink = nodes[origin], nodes[target]
        assert source["outputs"][origin_slot]["type"] == link_type, (path.name, source["type"])
        if sink["type"] in THIRD_PARTY:
            name = sink["inputs"][target_slot]["name"]
            assert accepts(THIRD_PARTY[sink["type"]], name, link_type), (path.name, sink["type"], name, link_type)
            checked += 1
        if source["type"] in THIRD_PARTY:
            assert THIRD_PARTY[source["type"]]["output"][origin_slot] == link_type, (path.name, source["type"])
    assert checked >= 1
    # The prompt gives every required input of those nodes, by their declared names only.
    for node in CHAINS[path.stem][0].values():
        if node["class_type"] in THIRD_PARTY:
            declared = THIRD_PARTY[node["class_type"]]["input"]
            assert set(declared["required"]) <= set(node["inputs"]) <= {*declared["required"],
                                                                         *declared.get("optional", {})}


def test_interpolated_chain_plays_at_the_timeline_fps_times_the_multiplier():
    workflow = json.loads((CHAINS_DIR / "rife_interpolation.json").read_text())
    nodes = {n["type"]: n for n in workflow["nodes"]}
    widgets = {t: dict(zip([i["name"] for i in n["inputs"] if "widget" in i], n["widgets_values"]))
               for t, n in nodes.items() if t in ("StyleGANV_Timeline", "CreateVideo", "RIFE VFI")}
    # (The Timeline's list has no control value: it has no seed.)
    assert widgets["CreateVideo"]["fps"] == widgets["StyleGANV_Timeline"]["fps"] * widgets["RIFE VFI"]["multiplier"]
