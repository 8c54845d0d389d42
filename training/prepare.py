"""Turn videos and frame folders into the training layout.

    python -m training.prepare SRC DEST --resolution R [--workers N] [options]

SRC is searched recursively. Every folder that directly holds images is one
video (frames in natural order: 2.png before 10.png); every other file is
tried as a video with FFmpeg (through `av`). Frames are resized so the shorter
side is R (area filter when shrinking, bicubic when enlarging), centre-cropped
to R x R and stored as PNG in DEST/<video>/000000.png ... DEST is a directory,
or a zip when it ends with .zip. Files that fail to decode are skipped and
listed at the end; the exit status is 0 when at least one video was written.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from training.image_codec import decode_image, encode_png, is_image_name
from training.layout import LayoutWriter, frame_name
from training.progress import ProgressBar

# Files next to media that are certainly not videos; anything else is tried.
_IGNORED_SUFFIXES = {".txt", ".md", ".json", ".csv", ".yaml", ".yml", ".py", ".xml", ".srt", ".vtt", ".log", ".zip"}
MAX_RESOLUTION = 4096


@dataclass(frozen=True)
class PrepareOptions:
    resolution: int
    skip_frames: int = 0         # drop this many frames at the start of each source
    max_frames: int = 0          # keep at most this many frames per source (0 = all)
    chunk_frames: int = 0        # split each source into clips of this many frames (0 = whole)
    min_frames: int = 3          # sources (or last chunks) shorter than this are dropped


@dataclass(frozen=True)
class Source:
    path: Path
    kind: str                    # "video" | "frames"
    name: str                    # output folder name
    label: str | None            # first-level folder under SRC, for --labels-from-dirs


@dataclass
class Converted:
    source: Source
    clips: list[tuple[str, Path, int]]   # (video name, staged folder, frame count)
    error: str | None = None
    fps: float | None = None             # the video stream's average rate; None for frame folders


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _safe_name(relative: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", relative.replace(os.sep, "__").replace("/", "__")).strip("._")
    return name or "video"


def find_sources(src: Path, exclude: tuple[Path, ...] = ()) -> list[Source]:
    """Every frame folder and candidate video file under `src`, in a stable order.

    Paths in `exclude` (the destination and its scratch files, when they lie
    inside `src`) are not searched.
    """
    excluded = {p.resolve() for p in exclude}
    if src.is_file():
        return [Source(src, "video", _safe_name(src.stem), None)]
    if not src.is_dir():
        raise FileNotFoundError(f"source not found: {src}")
    sources: list[Source] = []
    used: set[str] = set()

    def unique(name: str) -> str:
        candidate, k = name, 1
        while candidate in used:
            candidate, k = f"{name}_{k}", k + 1
        used.add(candidate)
        return candidate

    def label_of(path: Path) -> str | None:
        parts = path.relative_to(src).parts
        return parts[0] if len(parts) > 1 else None

    for folder, dirs, files in os.walk(src):
        folder_path = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (folder_path / d).resolve() not in excluded)
        files = sorted(f for f in files if not f.startswith(".") and (folder_path / f).resolve() not in excluded)
        images = [f for f in files if is_image_name(f)]
        if images:
            relative = folder_path.relative_to(src).as_posix()
            name = _safe_name(src.name if relative == "." else relative)
            sources.append(Source(folder_path, "frames", unique(name), label_of(folder_path)))
        for f in files:
            if is_image_name(f) or Path(f).suffix.lower() in _IGNORED_SUFFIXES:
                continue
            path = folder_path / f
            relative = path.relative_to(src).with_suffix("").as_posix()
            sources.append(Source(path, "video", unique(_safe_name(relative)), label_of(path)))
    return sources


def fit_frame(image: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [H, W, 3] -> [R, R, 3]: scale the shorter side to R, then centre crop."""
    height, width = image.shape[:2]
    scale = resolution / min(height, width)
    new_w, new_h = max(resolution, round(width * scale)), max(resolution, round(height * scale))
    if (new_w, new_h) != (width, height):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        # Area averaging avoids aliasing when shrinking; bicubic is the better enlarger.
        interpolation = "AREA" if scale < 1 else "BICUBIC"
        image = frame.reformat(width=new_w, height=new_h, format="rgb24", interpolation=interpolation).to_ndarray()
    top, left = (new_h - resolution) // 2, (new_w - resolution) // 2
    return np.ascontiguousarray(image[top : top + resolution, left : left + resolution])


def _video_frames(path: Path, info: dict) -> Iterator[np.ndarray]:
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if stream.average_rate:
            info["fps"] = float(stream.average_rate)
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


def _folder_frames(path: Path) -> Iterator[np.ndarray]:
    names = sorted((f for f in os.listdir(path) if is_image_name(f) and not f.startswith(".")), key=_natural_key)
    for name in names:
        yield decode_image((path / name).read_bytes(), name=str(path / name))


def convert_source(source: Source, staging: Path, options: PrepareOptions) -> Converted:
    """Decodes one source into staged frame folders (one per chunk). Never raises on bad media."""
    info: dict = {}
    frames = _video_frames(source.path, info) if source.kind == "video" else _folder_frames(source.path)
    chunk = options.chunk_frames or None
    clips: list[tuple[str, Path, int]] = []
    decoded = 0
    folder, count = None, 0

    def close_clip() -> None:
        nonlocal folder, count
        if folder is not None:
            if count >= options.min_frames:
                clips.append((folder.name, folder, count))
            else:
                shutil.rmtree(folder)
        folder, count = None, 0

    try:
        for raw in frames:
            decoded += 1
            if decoded <= options.skip_frames:
                continue
            kept = decoded - options.skip_frames
            if options.max_frames and kept > options.max_frames:
                break
            if folder is None:
                suffix = f"_{len(clips):04d}" if chunk else ""
                folder = staging / f"{source.name}{suffix}"
                folder.mkdir(parents=True)
            if raw.ndim != 3 or raw.shape[0] == 0 or raw.shape[1] == 0:
                raise ValueError(f"frame {decoded - 1} has unusable shape {raw.shape}")
            (folder / frame_name(count)).write_bytes(encode_png(fit_frame(raw, options.resolution), compress_level=3))
            count += 1
            if chunk and count == chunk:
                close_clip()
        close_clip()
    except (av.FFmpegError, ValueError, OSError, MemoryError) as error:
        for _, path, _ in clips:
            shutil.rmtree(path, ignore_errors=True)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        where = f" after {decoded} frames" if decoded else ""
        return Converted(source, [], f"decode failed{where}: {error}")
    if not clips:
        kept = max(0, decoded - options.skip_frames)
        return Converted(source, [], f"too short: {kept} usable frames, need {options.min_frames}")
    return Converted(source, clips, fps=info.get("fps"))


def _convert_job(job: tuple[Source, Path, PrepareOptions]) -> Converted:
    return convert_source(*job)


def prepare(
    src: str | os.PathLike,
    dest: str | os.PathLike,
    options: PrepareOptions,
    workers: int = 1,
    labels_from_dirs: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[list[Converted], list[Converted]]:
    """Converts SRC into DEST. Returns (converted, skipped) per source."""
    if not 4 <= options.resolution <= MAX_RESOLUTION:
        raise ValueError(f"--resolution must be in 4..{MAX_RESOLUTION}, got {options.resolution}")
    for field_name in ("skip_frames", "max_frames", "chunk_frames"):
        if getattr(options, field_name) < 0:
            raise ValueError(f"--{field_name.replace('_', '-')} must be >= 0")
    if options.min_frames < 1:
        raise ValueError("--min-frames must be >= 1")
    src, dest = Path(src), Path(dest)
    scratch = tuple(dest.with_name(dest.name + suffix) for suffix in ("", ".partial", ".staging"))
    sources = find_sources(src, exclude=scratch)
    if not sources:
        raise ValueError(f"{src}: found no videos or frame folders")
    if labels_from_dirs and any(s.label is None for s in sources):
        loose = next(s for s in sources if s.label is None)
        raise ValueError(f"--labels-from-dirs needs every source inside a class folder of {src}; {loose.path} is not")

    converted: list[Converted] = []
    skipped: list[Converted] = []
    with LayoutWriter(dest, overwrite=overwrite) as out:
        staging = out.staging_dir()
        jobs = [(s, staging / f"{i:06d}", options) for i, s in enumerate(sources)]
        results: dict[int, Converted] = {}
        with ProgressBar(len(jobs), desc="prepare", unit="source", enabled=progress) as bar:
            if workers > 1:
                with ProcessPoolExecutor(workers) as pool:
                    futures = {pool.submit(_convert_job, job): i for i, job in enumerate(jobs)}
                    for future in as_completed(futures):
                        results[futures[future]] = future.result()
                        bar.update()
            else:
                for i, job in enumerate(jobs):
                    results[i] = _convert_job(job)
                    bar.update()
        # Written in source order whatever order workers finished in.
        for i in range(len(jobs)):
            result = results[i]
            if result.error is not None:
                skipped.append(result)
                continue
            converted.append(result)
            for name, folder, _ in result.clips:
                out.add_video_dir(name, folder)
        if not converted:
            raise ValueError(f"{src}: none of the {len(sources)} sources could be converted")
        labels = None
        if labels_from_dirs:
            classes = sorted({r.source.label for r in converted})
            labels = {name: classes.index(r.source.label) for r in converted for name, _, _ in r.clips}
        out.write_info(labels=labels, fps=dataset_fps(converted))
    return converted, skipped


def dataset_fps(converted: list[Converted]) -> float | None:
    """The sources' common frame rate (median when they differ); None without video sources."""
    rates = [r.fps for r in converted if r.fps]
    return float(np.median(rates)) if rates else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.prepare", description=__doc__.split("\n\n")[2], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("src", help="folder of videos and/or frame folders (searched recursively), or one video file")
    parser.add_argument("dest", help="output directory, or a .zip file")
    parser.add_argument("--resolution", type=int, required=True, help="output frame size R (square)")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2), help="worker processes")
    parser.add_argument("--skip-frames", type=int, default=0, help="drop the first N frames of every source")
    parser.add_argument("--max-frames", type=int, default=0, help="keep at most N frames per source (0 = all)")
    parser.add_argument("--chunk-frames", type=int, default=0, help="split sources into clips of N frames (0 = no)")
    parser.add_argument("--min-frames", type=int, default=3, help="drop sources/clips shorter than N frames (default 3)")
    parser.add_argument("--labels-from-dirs", action="store_true", help="class label = first folder level under SRC")
    parser.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    options = PrepareOptions(args.resolution, args.skip_frames, args.max_frames, args.chunk_frames, args.min_frames)
    try:
        converted, skipped = prepare(
            args.src, args.dest, options, workers=args.workers, labels_from_dirs=args.labels_from_dirs,
            overwrite=args.overwrite, progress=not args.quiet,
        )
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    clips = sum(len(r.clips) for r in converted)
    frames = sum(n for r in converted for _, _, n in r.clips)
    print(f"wrote {clips} videos ({frames} frames, {args.resolution}x{args.resolution}) from {len(converted)} sources to {args.dest}")
    rates = sorted({round(r.fps, 3) for r in converted if r.fps})
    if len(rates) > 1:
        print(f"note: sources have different frame rates {rates}; recorded the median {dataset_fps(converted):g} fps")
    elif rates:
        print(f"frame rate: {rates[0]:g} fps (stored in dataset.json)")
    if skipped:
        print(f"skipped {len(skipped)} source(s):", file=sys.stderr)
        for result in skipped:
            print(f"  {result.source.path}: {result.error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
