"""What the Comfy Registry receives: the archive `comfy node publish` builds, and the checks it runs.

The Registry zips the git-tracked files less the `.comfyignore` patterns (gitwildmatch rules), and
its scanner flags packs that exec or eval, call pickle.load, torch.load(weights_only=False) or
subprocess. Our one unpickler is the audited one (`stylegan_v/legacy/unpickler.py`): it subclasses
pickle.Unpickler with an allow-list and never runs code from a file.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pathspec
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
AUDITED_UNPICKLER = "stylegan_v/legacy/unpickler.py"
REGISTRY_RUFF_RULES = "S102,S307,E702"  # exec, eval, statements joined by semicolons
FLAGGED = {
    "pickle.load": re.compile(r"\bpickle\.loads?\("),
    "torch.load(weights_only=False)": re.compile(r"weights_only\s*=\s*False"),
    "subprocess": re.compile(r"^\s*(import|from)\s+subprocess\b|\bsubprocess\.", re.MULTILINE),
    "os.system": re.compile(r"\bos\.(system|popen)\("),
    "eval/exec": re.compile(r"(?<![\w.])(eval|exec)\("),
}


def archive_files() -> list[str]:
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], check=True, capture_output=True,
                             text=True).stdout.splitlines()
    lines = (ROOT / ".comfyignore").read_text().splitlines()
    ignore = pathspec.GitIgnoreSpec.from_lines([x for x in lines if x.strip() and not x.startswith("#")])
    return [path for path in tracked if not ignore.match_file(path)]


def flagged_calls(path: str, text: str) -> list[str]:
    allowed = {"pickle.load"} if path == AUDITED_UNPICKLER else set()
    return [name for name, pattern in FLAGGED.items() if name not in allowed and pattern.search(text)]


def test_the_archive_holds_the_pack_and_nothing_test_only():
    files = set(archive_files())
    for needed in ("__init__.py", "pyproject.toml", "LICENSE", "README.md", "requirements.txt", "nodes/__init__.py",
                   "stylegan_v/__init__.py", AUDITED_UNPICKLER, "training/train.py",
                   "stylegan_v/assets/stylegan_v_demo.safetensors", "stylegan_v/assets/MODEL_CARD.md",
                   "stylegan_v/assets/icon.png"):
        assert needed in files, needed
    assert any(f.startswith("workflows/") and f.endswith(".json") for f in files)
    assert any(f.startswith("nodes/web/") for f in files)
    leaked = [f for f in files if f.endswith(".pkl") or f.startswith(("tests/", ".ci/"))]
    assert not leaked, leaked


def test_registry_metadata():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project, comfy = meta["project"], meta["tool"]["comfy"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["license"] and project["urls"]["Repository"].startswith("https://")
    assert project["classifiers"]
    for key in ("PublisherId", "DisplayName", "Icon", "requires-comfyui"):
        assert comfy[key], key
    icon = comfy["Icon"].split("/main/", 1)[1]  # the raw URL of a file in this repository
    assert icon in archive_files()
    with Image.open(ROOT / icon) as image:
        assert image.width <= 800 and image.height <= 400


def test_the_registry_s_lint_rules_pass():
    sources = [f for f in archive_files() if f.endswith(".py")]
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select", REGISTRY_RUFF_RULES,
                          *sources], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_no_flagged_calls_outside_the_audited_unpickler():
    found = {}
    for path in archive_files():
        if path.endswith(".py"):
            names = flagged_calls(path, (ROOT / path).read_text(encoding="utf-8"))
            if names:
                found[path] = names
    assert not found, found


def test_the_scan_would_catch_each_flagged_call():
    samples = {"pickle.load": "obj = pickle.load(f)", "subprocess": "import subprocess", "os.system": "os.system(c)",
               "torch.load(weights_only=False)": "torch.load(p, weights_only=False)", "eval/exec": "exec(code)"}
    for name, text in samples.items():
        assert flagged_calls("nodes/x.py", text) == [name], name
    assert flagged_calls("nodes/x.py", "model.eval()") == []
