"""The on-disk training layout: one root -> one folder per video -> frames.

Frames are ordered by lexicographic file name, so writers zero-pad indices.
A zip holds a single top-level folder with explicit directory entries, which is
what the original StyleGAN-V reader requires; our reader also accepts zips
without the top-level folder. Labels (and our optional fps) live in `<root>/dataset.json`.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from training.image_codec import is_image_name

LABELS_FILE = "dataset.json"


def frame_name(index: int, ext: str = ".png") -> str:
    return f"{index:06d}{ext}"


def is_zip_path(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(".zip")


class LayoutWriter:
    """Writes videos into a directory or a zip; the result appears atomically on close().

    Usage: `with LayoutWriter(dest) as out: out.add_video(name, [png_bytes, ...])`.
    Video folders written through a staging directory can be moved in with
    `add_video_dir`, so worker processes never send frames through a pipe.
    """

    def __init__(self, dest: str | os.PathLike, overwrite: bool = False):
        self.dest = Path(dest)
        self.is_zip = is_zip_path(self.dest)
        if self.dest.exists():
            empty_dir = self.dest.is_dir() and not any(self.dest.iterdir())
            if not (overwrite or empty_dir):
                raise FileExistsError(f"{self.dest} already exists (pass overwrite=True / --overwrite to replace it)")
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.dest.with_name(self.dest.name + ".partial")
        _remove(self._tmp)
        self.root_name = self.dest.stem if self.is_zip else ""
        self.video_names: list[str] = []
        if self.is_zip:
            self._zip = zipfile.ZipFile(self._tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
            self._zip.writestr(zipfile.ZipInfo(self.root_name + "/"), b"")
        else:
            self._zip = None
            self._tmp.mkdir(parents=True)

    def staging_dir(self) -> Path:
        """A scratch folder next to the destination (same file system, so moves are renames)."""
        path = self.dest.with_name(self.dest.name + ".staging")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _check_new(self, video: str) -> None:
        if not video or "/" in video or "\\" in video or video in (".", ".."):
            raise ValueError(f"invalid video folder name {video!r}")
        if video in self.video_names:
            raise ValueError(f"video folder {video!r} written twice")
        self.video_names.append(video)

    def add_video(self, video: str, frames: list[bytes], ext: str = ".png") -> None:
        self._check_new(video)
        if self._zip is not None:
            prefix = f"{self.root_name}/{video}/"
            self._zip.writestr(zipfile.ZipInfo(prefix), b"")
            for i, data in enumerate(frames):
                self._zip.writestr(prefix + frame_name(i, ext), data)
        else:
            folder = self._tmp / video
            folder.mkdir()
            for i, data in enumerate(frames):
                (folder / frame_name(i, ext)).write_bytes(data)

    def add_video_dir(self, video: str, folder: Path) -> None:
        """Moves (dir) or copies then deletes (zip) an already written frame folder."""
        self._check_new(video)
        files = sorted(p.name for p in folder.iterdir())
        if self._zip is not None:
            prefix = f"{self.root_name}/{video}/"
            self._zip.writestr(zipfile.ZipInfo(prefix), b"")
            for name in files:
                self._zip.write(folder / name, prefix + name)
            shutil.rmtree(folder)
        else:
            os.replace(folder, self._tmp / video)

    def write_info(self, labels: dict[str, object] | None = None, fps: float | None = None) -> None:
        """Writes dataset.json. `labels` maps video folder name -> int class or list of floats."""
        # Label keys name a frame ("video/000000.png"): the format the original reader expects.
        # It reads only "labels" (null = unconditional); "fps" is ours, for the model config.
        info: dict[str, object] = {"labels": None}
        if labels is not None:
            info["labels"] = {f"{video}/{frame_name(0)}": label for video, label in labels.items()}
        if fps is not None:
            info["fps"] = float(fps)
        data = json.dumps(info, indent=1).encode()
        if self._zip is not None:
            self._zip.writestr(f"{self.root_name}/{LABELS_FILE}", data)
        else:
            (self._tmp / LABELS_FILE).write_bytes(data)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        staging = self.dest.with_name(self.dest.name + ".staging")
        _remove(staging)
        _remove(self.dest)
        os.replace(self._tmp, self.dest)

    def abort(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        _remove(self._tmp)
        _remove(self.dest.with_name(self.dest.name + ".staging"))

    def __enter__(self) -> "LayoutWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@dataclass(frozen=True)
class LayoutIndex:
    """What a dataset contains: per video folder, its frame entry names in order."""

    videos: tuple[str, ...]                 # video folder names, sorted
    frames: tuple[tuple[str, ...], ...]     # per video: frame paths relative to the container
    labels_entry: str | None                # path of dataset.json, if present


def index_directory(root: Path) -> LayoutIndex:
    if not root.is_dir():
        raise FileNotFoundError(f"dataset directory not found: {root}")
    videos, frames = [], []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir():
            continue
        names = sorted(e.name for e in os.scandir(entry.path) if e.is_file() and is_image_name(e.name))
        if names:
            videos.append(entry.name)
            frames.append(tuple(f"{entry.name}/{n}" for n in names))
    labels = LABELS_FILE if (root / LABELS_FILE).is_file() else None
    return LayoutIndex(tuple(videos), tuple(frames), labels)


def index_zip(names: list[str], path: str) -> LayoutIndex:
    image_parts = [n.split("/") for n in names if not n.endswith("/") and is_image_name(n)]
    if not image_parts:
        raise ValueError(f"{path}: the zip holds no image frames")
    depths = {len(p) for p in image_parts}
    roots = {p[0] for p in image_parts}
    if depths == {3} and len(roots) == 1:
        root = next(iter(roots)) + "/"
        image_parts = [p[1:] for p in image_parts]
    elif depths == {2}:
        root = ""
    else:
        raise ValueError(
            f"{path}: frames must sit exactly two levels below the root (root/video/frame.png), "
            f"found entries at depths {sorted(depths)}"
        )
    per_video: dict[str, list[str]] = {}
    for video, frame in image_parts:
        per_video.setdefault(video, []).append(frame)
    videos = tuple(sorted(per_video))
    frames = tuple(tuple(f"{root}{v}/{f}" for f in sorted(per_video[v])) for v in videos)
    labels = root + LABELS_FILE if (root + LABELS_FILE) in set(names) else None
    return LayoutIndex(videos, frames, labels)
