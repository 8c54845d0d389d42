"""A real ComfyUI 0.3.75 server for the node-pack tests, and a small HTTP client for it.

The host itself is built by `.ci/comfy_host.sh` outside the checkout; this module finds it,
starts `main.py` on a free loopback port with a throw-away base directory, loads this pack
through `--extra-model-paths-config` (a `custom_nodes:` entry pointing at a folder that holds
a link to the checkout, named like a clone of the repository would be), and stops it again.
Standard library only, so the harness itself never needs the host's packages.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACK_FOLDER_NAME = "stylegan-v"  # what `git clone` of the repository names the folder
DEFAULT_HOST_DIR = Path.home() / ".cache" / "stylegan_v" / "comfy_host"


@dataclass(frozen=True)
class Host:
    comfy_dir: Path
    python: Path
    chromium: Path | None
    node: str = "node"  # a Node new enough for playwright-core


def find_host() -> Host | None:
    """The host described by the `host.env` that `.ci/comfy_host.sh` writes, if any."""
    host_dir = Path(os.environ.get("COMFY_HOST_DIR", DEFAULT_HOST_DIR))
    env_file = host_dir / "host.env"
    if not env_file.is_file():
        return None
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    comfy_dir = Path(values["COMFY_DIR"])
    python = Path(values["COMFY_PYTHON"])
    if not (comfy_dir / "main.py").is_file() or not python.exists():
        return None
    chromium = Path(values["CHROMIUM"]) if values.get("CHROMIUM") else None
    return Host(comfy_dir, python, chromium, values.get("NODE") or "node")


def require_host() -> Host:
    """The host, or a test failure in CI (where it must exist) / a skip on a dev machine."""
    host = find_host()
    if host is not None:
        return host
    message = "no ComfyUI host; build it with `bash .ci/comfy_host.sh` (or `make test`)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpError(Exception):
    def __init__(self, status: int, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class ComfyServer:
    """One ComfyUI process on loopback; use as a context manager."""

    def __init__(self, host: Host, work_dir: Path, *, extra_args: tuple[str, ...] = (), env: dict | None = None):
        self.host = host
        self.work_dir = Path(work_dir)
        self.base_dir = self.work_dir / "base"
        self.models_dir = self.base_dir / "models" / "stylegan_v"
        self.output_dir = self.base_dir / "output"
        self.log_path = self.work_dir / "server.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = extra_args
        self.env = env or {}
        self.process: subprocess.Popen | None = None

    def _write_layout(self) -> Path:
        for sub in ("models/stylegan_v", "input", "output", "temp", "user", "custom_nodes"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        packs = self.work_dir / "packs"
        packs.mkdir(exist_ok=True)
        link = packs / PACK_FOLDER_NAME
        if not link.exists():
            link.symlink_to(REPO_ROOT, target_is_directory=True)
        config = self.work_dir / "extra_model_paths.yaml"
        config.write_text(f"stylegan_v_tests:\n    custom_nodes: {packs}\n")
        return config

    def start(self, timeout: float = 120.0) -> "ComfyServer":
        config = self._write_layout()
        cmd = [str(self.host.python), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--disable-auto-launch", "--disable-api-nodes", "--base-directory", str(self.base_dir),
               "--database-url", "sqlite:///:memory:", "--extra-model-paths-config", str(config),
               *self.extra_args]
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(cmd, cwd=self.host.comfy_dir, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.get("/system_stats", timeout=1)
                break
            except (OSError, HttpError):
                time.sleep(0.25)
        else:
            self.stop()
            raise RuntimeError(f"ComfyUI did not answer within {timeout:.0f} s:\n{self.log_tail()}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- HTTP ------------------------------------------------------------------------------
    def request(self, method: str, path: str, body=None, timeout: float = 60.0):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            raise HttpError(e.code, body) from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode(errors="replace")

    def get(self, path: str, timeout: float = 60.0):
        return self.request("GET", path, timeout=timeout)

    def post(self, path: str, body, timeout: float = 60.0):
        return self.request("POST", path, body, timeout=timeout)

    def submit(self, prompt: dict, workflow: dict | None = None) -> str:
        body = {"prompt": prompt, "client_id": "stylegan-v-tests"}
        if workflow is not None:  # what the frontend sends so savers embed the workflow
            body["extra_data"] = {"extra_pnginfo": {"workflow": workflow}}
        return self.post("/prompt", body)["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 300.0) -> dict:
        """The history entry of a finished prompt (success or error)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("status_str") in ("success", "error"):
                return entry
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI died while running {prompt_id}:\n{self.log_tail()}")
            time.sleep(0.1)
        raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s:\n{self.log_tail()}")

    def run(self, prompt: dict, workflow: dict | None = None, timeout: float = 300.0) -> dict:
        return self.wait(self.submit(prompt, workflow), timeout)

    def output_file(self, item: dict) -> Path:
        """Path of a saved result such as {"filename", "subfolder", "type": "output"}."""
        assert item.get("type", "output") == "output", item
        return self.output_dir / item.get("subfolder", "") / item["filename"]


def status_messages(entry: dict, event: str) -> list[dict]:
    return [data for name, data in entry["status"].get("messages", []) if name == event]


def execution_error(entry: dict) -> str:
    errors = status_messages(entry, "execution_error")
    return errors[0].get("exception_message", "") if errors else ""


def count(pattern: str, text: str) -> int:
    return len(re.findall(pattern, text))
