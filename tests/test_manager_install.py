"""The pack installed by ComfyUI-Manager's own command-line installer, as a user's Manager would.

ComfyUI-Manager (pinned in .ci/comfy_manager_requirements.txt, installed into the host's
environment by .ci/comfy_host.sh) runs `cm-cli install <git URL>` against a throw-away copy of
the host's ComfyUI folder, so the shared host's custom_nodes/ is never touched. The URL is a
bare clone of this repository: what a user gets is the committed tree, not the working copy.

What is exercised: Manager's URL check, its git clone into custom_nodes/<repository name>, its
dependency step (one `pip install <line>` per line of our requirements.txt, run by the host's
Python; pip or uv, whichever Manager picks) and its post-install pip fixer. Then ComfyUI is
restarted the way Manager asks the user to, and the installed copy must list our nodes, list
the demo model it ships, serve its workflows and run the basic workflow.

What is not: `--mode local` reads the node list bundled in Manager's wheel instead of fetching
channel lists and the Comfy Registry (this machine reaches neither), so installing by registry
id or from a registry zip is not exercised; nor is Manager's web UI, which 0.3.75 does not load
(it has no --enable-manager). Every requirement is already in the host's environment, so the
dependency step finds each satisfied: the test checks that Manager asked the host's Python for
each line and that each is met there afterwards, not that pip downloaded anything.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

import av
import pytest
from host.harness import PACK_FOLDER_NAME, REPO_ROOT, ComfyServer, execution_error, require_host
from host.make_workflows import WORKFLOWS
from host.models import DEMO_CHECKPOINT

pytestmark = [pytest.mark.host, pytest.mark.slow]

NODE_IDS = ["StyleGANV_LoadModel", "StyleGANV_SampleContent", "StyleGANV_SampleMotion", "StyleGANV_Timeline",
            "StyleGANV_Render", "StyleGANV_RenderToFile"]
# What a user's Manager would write into the host's folder, left out of the copy.
HOST_STATE = {"user", "output", "input", "temp", "models"}


class InstalledHostServer(ComfyServer):
    """A server whose base directory is the ComfyUI folder itself (the default layout a user runs)
    and whose only copy of the pack is the one in its custom_nodes/: no link to the checkout."""

    def _write_layout(self) -> Path:
        for sub in ("models/stylegan_v", "input", "output", "temp", "user", "custom_nodes"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "extra_model_paths.yaml"
        config.write_text("{}\n")  # a valid config that adds no folder
        return config


def requirement_lines() -> list[str]:
    """Our requirements.txt as Manager reads it: one requirement per non-comment line."""
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def executed_commands(output: str) -> list[list[str]]:
    """The commands Manager reports as `## ComfyUI-Manager: EXECUTE => [...]` (a Python list literal)."""
    return [ast.literal_eval(m) for m in re.findall(r"EXECUTE => (\[[^\]]*\])", output)]


def copy_comfyui(source: Path, target: Path) -> None:
    def ignore(folder, names):
        return HOST_STATE.intersection(names) if Path(folder) == source else set()

    shutil.copytree(source, target, ignore=ignore, symlinks=True)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(server after the restart, Manager's output, the installed folder, the host)."""
    host = require_host()
    work = tmp_path_factory.mktemp("manager_install")
    comfy = work / "base"  # ComfyServer's base_dir: the ComfyUI folder and its base directory at once
    copy_comfyui(host.comfy_dir, comfy)
    own_host = dataclasses.replace(host, comfy_dir=comfy)
    bare = work / "remote" / f"{PACK_FOLDER_NAME}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(REPO_ROOT), str(bare)], check=True)
    # PYTHONPATH is cleared so the server can find the library only inside the installed folder.
    env = {"STYLEGAN_V_CACHE": str(work / "svcache"), "PYTHONPATH": ""}

    with InstalledHostServer(own_host, work, env=env) as before:
        assert "StyleGANV_LoadModel" not in before.get("/object_info"), "the pack is there before Manager ran"

    # Manager's check accepts only URLs with a host part, so a local repository is file://localhost/...
    url = f"file://localhost{bare}"
    run = subprocess.run([str(host.python), "-m", "cm_cli", "install", "--mode", "local", "--exit-on-fail", url],
                         check=False, cwd=comfy, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, COMFYUI_PATH=str(comfy), COLUMNS="1000", NO_COLOR="1", TERM="dumb",
                                  PYTHONPATH=""))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]

    server = InstalledHostServer(own_host, work, env=env)
    with server:  # the restart that Manager asks for after an install
        yield server, output, comfy / "custom_nodes" / PACK_FOLDER_NAME, own_host


def test_manager_cloned_the_committed_pack_into_custom_nodes(installed):
    _, output, folder, _ = installed
    assert "[INSTALLED]" in output, output[-4000:]
    assert (folder / "__init__.py").is_file() and (folder / ".git").is_dir()
    head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    ours = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert head == ours


def test_manager_ran_each_requirement_with_the_host_s_python(installed):
    _, output, _, host = installed
    commands = executed_commands(output)
    installs = {cmd[-1]: cmd for cmd in commands if "install" in cmd}
    for line in requirement_lines():
        assert line in installs, f"Manager did not install {line!r}: {commands}"
        assert Path(installs[line][0]) == host.python, installs[line]
    check = ("import sys; from importlib.metadata import version; from packaging.requirements import Requirement\n"
             "for line in sys.argv[1:]:\n"
             "    r = Requirement(line)\n"
             "    assert r.specifier.contains(version(r.name), prereleases=True), (line, version(r.name))\n")
    done = subprocess.run([str(host.python), "-c", check, *requirement_lines()], check=False, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr


def test_after_the_restart_the_host_loads_the_installed_copy(installed):
    server, _, folder, host = installed
    # Nothing but the installed folder can provide the library to the server's Python.
    find = "import importlib.util; print(importlib.util.find_spec('stylegan_v'))"
    probe = subprocess.run([str(host.python), "-c", find], check=False, cwd=host.comfy_dir, capture_output=True,
                           text=True, env=dict(os.environ, PYTHONPATH=""))
    assert probe.stdout.strip() == "None", probe.stdout
    log = server.log_text()
    assert re.search(rf"seconds: {re.escape(str(folder))}$", log, re.MULTILINE), server.log_tail()
    assert not [line for line in log.splitlines() if "IMPORT FAILED" in line and PACK_FOLDER_NAME in line], log
    info = server.get("/object_info")
    for node_id in NODE_IDS:
        assert info[node_id]["python_module"] == f"custom_nodes.{PACK_FOLDER_NAME}", node_id
    # The model folder is empty: the only model listed is the one the installed pack ships.
    assert server.get("/models/stylegan_v") == [DEMO_CHECKPOINT]
    shipped = sorted(p.stem for p in (folder / "workflows").glob("*.json"))
    assert shipped and sorted(server.get("/api/workflow_templates")[PACK_FOLDER_NAME]) == shipped


def test_the_installed_pack_runs_the_basic_workflow_on_its_demo_model(installed):
    from stylegan_v import checkpoint

    server, _, folder, _ = installed
    resolution = checkpoint.read_config(folder / "stylegan_v" / "assets" / DEMO_CHECKPOINT)[0].generator.resolution
    prompt = copy.deepcopy(WORKFLOWS["stylegan_v_basic_video"][0])
    prompt["4"]["inputs"].update(fps=25.0, duration=1.0, unit="seconds")
    entry = server.run(prompt)
    assert entry["status"]["status_str"] == "success", execution_error(entry) or server.log_tail()
    (saved,) = entry["outputs"]["7"]["images"]
    with av.open(str(server.output_file(saved))) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert (frames, float(stream.average_rate), stream.width, stream.height) == (25, 25.0, resolution, resolution)
