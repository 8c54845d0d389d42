"""The `models/stylegan_v` folder: registration, file lookup and content fingerprints."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import folder_paths

from stylegan_v.checkpoint import sha256_file

FOLDER = "stylegan_v"
EXTENSIONS = {".safetensors", ".pkl"}
# The demo model ships inside the pack; listing this folder last makes it loadable by name
# with no copying, while a user's own file of the same name in models/stylegan_v wins.
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "stylegan_v" / "assets"


def register_model_folder() -> None:
    """Add models/stylegan_v (honours --base-directory and extra_model_paths.yaml) and the bundled models."""
    default_dir = os.path.join(folder_paths.models_dir, FOLDER)
    if FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[FOLDER] = ([default_dir], set(EXTENSIONS))
    else:
        # extra_model_paths.yaml created the entry first (with an empty extension set, which
        # would list every file): keep the user's paths and add ours and our extensions.
        folder_paths.add_model_folder_path(FOLDER, default_dir)
        folder_paths.folder_names_and_paths[FOLDER][1].update(EXTENSIONS)
    if BUNDLED_DIR.is_dir() and str(BUNDLED_DIR) not in folder_paths.get_folder_paths(FOLDER):
        folder_paths.folder_names_and_paths[FOLDER][0].append(str(BUNDLED_DIR))


def checkpoint_names() -> list[str]:
    return folder_paths.get_filename_list(FOLDER)


def checkpoint_path(name: str) -> str:
    """Full path of a file listed in the folder; FileNotFoundError naming the folder if not."""
    path = folder_paths.get_full_path(FOLDER, name)
    if path is None or not os.path.isfile(path):
        folders = ", ".join(folder_paths.get_folder_paths(FOLDER))
        raise FileNotFoundError(f"checkpoint '{name}' was not found in models/{FOLDER} ({folders}); "
                                f"put a StyleGAN-V .safetensors or .pkl file there and refresh the node list")
    return path


_hash_lock = threading.Lock()
_hash_memo: dict[tuple[str, int, int], str] = {}


def content_hash(path: str) -> str:
    """sha256 of the file, memoised on (path, size, mtime) so unchanged files hash once."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        if key in _hash_memo:
            return _hash_memo[key]
    value = sha256_file(path)
    with _hash_lock:
        _hash_memo[key] = value
    return value
