"""Data side of the trainer: procedural dataset, prepare tool, dataset reader, sparse sampling."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from training import prepare as prepare_mod
from training import procedural
from training.dataset import (
    FrameSampling,
    VideoClipStream,
    VideoFramesDataset,
    real_frames_to_model,
    sample_fake_times,
    sample_times,
)
from training.image_codec import decode_image, encode_png
from training.progress import ProgressBar

RES = 32


@pytest.fixture(scope="module")
def proc_dir(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("proc") / "ds"
    procedural.write_dataset(str(dest), num_videos=6, num_frames=48, resolution=RES, seed=3, labels=True, progress=False)
    return dest


@pytest.fixture(scope="module")
def proc_zip(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("proczip") / "ds.zip"
    procedural.write_dataset(str(dest), num_videos=6, num_frames=48, resolution=RES, seed=3, labels=True, progress=False)
    return dest


def _read_png_dir(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---- image codec ------------------------------------------------------------------------

def test_png_roundtrip_through_ffmpeg_decoder():
    rng = np.random.default_rng(0)
    for shape in [(7, 5, 3), (16, 16, 3), (3, 9)]:
        image = rng.integers(0, 256, size=shape, dtype=np.uint8)
        decoded = decode_image(encode_png(image), "x.png")
        expected = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
        assert np.array_equal(decoded, expected)


def test_decode_image_rejects_garbage():
    with pytest.raises(ValueError, match="bad.png"):
        decode_image(b"not a png at all" * 4, "bad.png")
    with pytest.raises(ValueError, match="unsupported"):
        decode_image(b"x", "frame.gif2")


# ---- procedural ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(procedural.KINDS))
def test_procedural_is_deterministic(tmp_path, kind):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for dest, seed in [(a, 5), (b, 5), (c, 6)]:
        procedural.write_dataset(str(dest), num_videos=3, num_frames=4, resolution=16, seed=seed, progress=False, kind=kind)
    assert _read_png_dir(a) == _read_png_dir(b)
    assert _read_png_dir(a) != _read_png_dir(c)
    # Worker processes produce the same bytes as the serial path.
    d = tmp_path / "d"
    procedural.write_dataset(str(d), num_videos=3, num_frames=4, resolution=16, seed=5, workers=2, progress=False, kind=kind)
    assert _read_png_dir(a) == _read_png_dir(d)


@pytest.mark.parametrize("kind", list(procedural.KINDS))
def test_procedural_has_smooth_real_motion(kind):
    for index in range(4):
        video = procedural.render_video(11, index, 40, 48, kind).astype(np.float64)
        step = np.abs(video[1:] - video[:-1]).mean(axis=(1, 2, 3))
        far = np.abs(video[24:] - video[:-24]).mean(axis=(1, 2, 3))
        assert (step > 0).all(), "consecutive frames must differ (real motion)"
        assert step.mean() * 3 < far.mean(), "neighbouring frames must be much closer than distant ones"


@pytest.mark.parametrize("kind", list(procedural.KINDS))
def test_procedural_videos_vary(kind):
    firsts = [procedural.render_video(2, i, 1, 32, kind)[0].astype(np.float64) for i in range(6)]
    for i in range(len(firsts)):
        for j in range(i):
            assert np.abs(firsts[i] - firsts[j]).mean() > 5


def test_procedural_shapes_stream_is_unchanged_by_the_sky_kind():
    # Datasets written before the sky kind existed must come out the same: the shapes
    # kind stays the default and its frames are those of render_frame for its recipe.
    recipe = procedural.draw_recipe(4, 2)
    expected = np.stack([procedural.render_frame(recipe, float(t), 24) for t in range(3)])
    assert np.array_equal(procedural.render_video(4, 2, 3, 24), expected)


def test_sky_is_a_landscape_under_a_changing_sky():
    from training import procedural_sky as sky

    for index in range(6):
        recipe = sky.draw_sky_recipe(8, index)
        video = sky.render_sky_frames(recipe, np.arange(48), 64).astype(np.float64)
        # The land below the lowest point of the ridge is dark and still; the sky above moves.
        land = video[:, int(recipe.horizon * 64) + 2:]
        top = video[:, : int(recipe.horizon * 64) // 2]
        assert land.mean() < 40, "the ground is a dark silhouette"
        assert np.abs(np.diff(land, axis=0)).mean() * 4 < np.abs(np.diff(top, axis=0)).mean() + 1e-9
        assert top.mean() > land.mean()


def test_sky_colours_follow_the_sun():
    from training import procedural_sky as sky

    recipe = sky.draw_sky_recipe(0, 0)
    # The same place at noon, at sunset (the sun on the horizon) and at midnight.
    noon, sunset, midnight = [
        sky.render_sky_frames(replace(recipe, day_phase=phase, day_rate=0.0, covers=recipe.covers + 9.0), [0.0], 64)[0]
        for phase in (0.25, 0.5, 0.75)
    ]
    zenith = lambda frame: frame[:8].reshape(-1, 3).mean(0)
    low_sky = lambda frame: frame[int(recipe.horizon * 64) - 10: int(recipe.horizon * 64) - 6].reshape(-1, 3).mean(0)
    assert zenith(noon)[2] > zenith(noon)[0] + 60, "a blue sky by day"
    assert low_sky(sunset)[0] > low_sky(sunset)[2] + 40, "a warm horizon at sunset"
    assert zenith(midnight).max() < 40 < zenith(noon).max(), "dark at night"


def test_sky_is_continuous_in_time():
    from training import procedural_sky as sky

    recipe = sky.draw_sky_recipe(3, 1)
    frames = sky.render_sky_frames(recipe, [10.0, 10.5, 11.0, 30.0], 48).astype(np.float64)
    between = np.abs(frames[1] - (frames[0] + frames[2]) / 2).mean()
    assert between < np.abs(frames[0] - frames[3]).mean() / 4, "a fractional time lies between its neighbours"


def test_sky_labels_are_the_hour_and_cover_every_class(tmp_path):
    from training import procedural_sky as sky

    classes = [sky.hour_class(sky.draw_sky_recipe(1, i)) for i in range(48)]
    assert set(classes) == set(range(procedural.NUM_CLASSES))
    assert classes.count(0) > len(classes) / 3, "mostly daytime"
    dest = tmp_path / "sky"
    procedural.write_dataset(str(dest), num_videos=4, num_frames=2, resolution=8, seed=1, labels=True, progress=False, kind="sky")
    labels = json.loads((dest / "dataset.json").read_text())["labels"]
    assert {key.split("/")[0]: value for key, value in labels.items()} == {
        procedural.video_name(i): classes[i] for i in range(4)
    }


def test_procedural_zip_layout_and_labels(proc_dir, proc_zip):
    with zipfile.ZipFile(proc_zip) as z:
        names = z.namelist()
        # Original reader's requirements: one top-level folder, explicit directory entries.
        assert {n.split("/")[0] for n in names} == {"ds"}
        assert "ds/" in names and "ds/video_000000/" in names
        assert "ds/dataset.json" in names
        zipped = {n[len("ds/"):]: z.read(n) for n in names if n.endswith(".png")}
    assert zipped == {k: v for k, v in _read_png_dir(proc_dir).items() if k.endswith(".png")}
    labels = json.loads((proc_dir / "dataset.json").read_text())["labels"]
    for key, label in labels.items():
        video = key.split("/")[0]
        index = int(video.split("_")[1])
        assert label == procedural.draw_recipe(3, index).num_shapes - 1


def test_procedural_cli(tmp_path, capsys):
    dest = tmp_path / "cli.zip"
    rc = procedural.main([str(dest), "--videos", "2", "--frames", "3", "--resolution", "8", "--seed", "1", "--quiet"])
    assert rc == 0 and dest.is_file()
    assert procedural.main([str(dest), "--videos", "2", "--frames", "3", "--resolution", "8", "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    sky_dest = tmp_path / "sky"
    assert procedural.main([str(sky_dest), "--kind", "sky", "--videos", "1", "--frames", "2", "--resolution", "8", "--quiet"]) == 0
    assert len(list(sky_dest.rglob("*.png"))) == 2
    with pytest.raises(ValueError, match="--kind must be one of shapes, sky"):
        procedural.render_video(0, 0, 1, 8, kind="clouds")


# ---- sampling ----------------------------------------------------------------------------

def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def test_random_sampling_constraints():
    rng = np.random.default_rng(0)
    sampling = FrameSampling()
    spans = set()
    for draw in range(3000):
        length = int(rng.integers(3, 200))
        times = sample_times(rng, length, sampling)
        assert times.dtype == np.int64 and times.shape == (3,)
        assert np.all(np.diff(times) > 0), "sorted and distinct"
        assert times[0] >= 0 and times[-1] <= length - 1
        span = int(times[-1] - times[0])
        assert _is_power_of_two(span) and 2 <= span <= min(32, length - 1)
        spans.add(span)
    assert spans == {2, 4, 8, 16, 32}


def test_random_sampling_uses_every_offset_and_more_frames():
    rng = np.random.default_rng(1)
    starts = {int(sample_times(rng, 5, FrameSampling())[0]) for _ in range(400)}
    # length 5: spans {2, 4}; start in [0, 4 - span]
    assert starts == {0, 1, 2}
    five = FrameSampling(num_frames=5)
    assert five.min_video_len() == 5  # smallest power-of-two span >= 4 is 4
    assert FrameSampling(num_frames=6).min_video_len() == 9  # span >= 5 -> 8
    for _ in range(300):
        times = sample_times(rng, 40, five)
        assert len(set(times.tolist())) == 5 and _is_power_of_two(int(times[-1] - times[0]))


def test_uniform_and_consecutive_sampling():
    rng = np.random.default_rng(2)
    for _ in range(500):
        length = int(rng.integers(4, 100))
        u = sample_times(rng, length, FrameSampling(num_frames=4, mode="uniform"))
        gaps = np.diff(u)
        assert (gaps == gaps[0]).all() and 1 <= gaps[0] <= min(32, length // 4)
        assert u[0] >= 0 and u[-1] <= length - 1
        c = sample_times(rng, length, FrameSampling(num_frames=4, mode="consecutive"))
        assert (np.diff(c) == 1).all() and c[0] >= 0 and c[-1] <= length - 1


def test_fake_times_are_fractional_with_integer_gaps():
    rng = np.random.default_rng(3)
    lengths = np.array([3, 10, 64, 2000])
    indices, times = sample_fake_times(rng, np.minimum(lengths, 1024), 512, FrameSampling())
    assert indices.shape == (512,) and times.shape == (512, 3) and times.dtype == np.float64
    assert set(indices.tolist()) == {0, 1, 2, 3}
    gaps = np.diff(times, axis=1)
    assert np.allclose(gaps, np.round(gaps)) and (np.round(gaps) >= 1).all()
    spans = times[:, -1] - times[:, 0]
    assert all(_is_power_of_two(int(round(s))) and round(s) <= 32 for s in spans)
    usable = np.minimum(lengths, 1024)[indices]
    assert (times[:, 0] >= 0).all() and (times[:, -1] <= usable - 1).all()
    has_room = usable - 1 - np.round(spans) > 0  # a 3-frame video has only offset 0
    assert (times[has_room, 0] % 1 != 0).all(), "offsets are real numbers"
    # Pure function of the generator.
    again = sample_fake_times(np.random.default_rng(3), np.minimum(lengths, 1024), 512, FrameSampling())
    assert np.array_equal(again[0], indices) and np.array_equal(again[1], times)


def test_sampling_config_errors():
    with pytest.raises(ValueError, match="mode"):
        FrameSampling(mode="zigzag")
    with pytest.raises(ValueError, match="total_dists"):
        FrameSampling(num_frames=40)
    with pytest.raises(ValueError, match="too short"):
        sample_times(np.random.default_rng(0), 2, FrameSampling())


# ---- dataset reader ----------------------------------------------------------------------

def _locate(video: np.ndarray, frames: np.ndarray) -> list[int]:
    """Index in `video` [T, H, W, 3] of each of `frames` [F, 3, H, W] (frames are all distinct)."""
    flat = video.reshape(len(video), -1).astype(np.int64)
    out = []
    for frame in frames:
        diffs = np.abs(flat - frame.transpose(1, 2, 0).reshape(1, -1)).sum(axis=1)
        assert diffs.min() == 0, "returned frame is not a frame of the video"
        out.append(int(diffs.argmin()))
    return out


@pytest.mark.parametrize("which", ["dir", "zip"])
def test_dataset_items(which, proc_dir, proc_zip):
    path = proc_dir if which == "dir" else proc_zip
    ds = VideoFramesDataset(path, use_labels=True)
    assert len(ds) == 6 and ds.resolution == RES and ds.num_channels == 3 and ds.label_dim == 3
    assert ds.fps == procedural.NOMINAL_FPS
    assert ds.video_names == [f"video_{i:06d}" for i in range(6)]
    rng = np.random.default_rng(0)
    for draw in range(30):
        index = draw % 6
        clip = ds.get_clip(index, rng)
        assert clip["frames"].shape == (3, 3, RES, RES) and clip["frames"].dtype == np.uint8
        assert clip["times"].dtype == np.int64 and clip["video_len"] == 48
        video = procedural.render_video(3, index, 48, RES)
        assert _locate(video, clip["frames"]) == clip["times"].tolist()
        one_hot = clip["label"]
        assert one_hot.dtype == np.float32 and one_hot.sum() == 1
        assert int(one_hot.argmax()) == procedural.draw_recipe(3, index).num_shapes - 1


def test_dataset_window_for_long_videos(proc_dir):
    ds = VideoFramesDataset(proc_dir, max_num_frames=20)
    assert (ds.item_lengths == 20).all()
    rng = np.random.default_rng(5)
    starts = set()
    for _ in range(40):
        clip = ds.get_clip(1, rng)
        assert clip["video_len"] == 20 and clip["times"].max() <= 19
        absolute = _locate(procedural.render_video(3, 1, 48, RES), clip["frames"])
        start = absolute[0] - int(clip["times"][0])
        assert np.array_equal(np.array(absolute) - start, clip["times"]), "one window offset for the whole clip"
        assert 0 <= start <= 48 - 20
        starts.add(start)
    assert len(starts) > 3


def test_dataset_mirror(proc_zip):
    ds = VideoFramesDataset(proc_zip, mirror=True)
    assert len(ds) == 12 and len(ds.item_lengths) == 12
    for i in range(6):
        plain = ds.get_clip(i, np.random.default_rng(i))
        flipped = ds.get_clip(i + 6, np.random.default_rng(i))
        assert np.array_equal(plain["times"], flipped["times"])
        assert np.array_equal(plain["frames"][..., ::-1], flipped["frames"])
        assert flipped["frames"].flags["C_CONTIGUOUS"]


@pytest.mark.filterwarnings("ignore:.*skipping 1 video")
def test_dataset_skips_short_videos_and_validates(tmp_path, proc_dir):
    root = tmp_path / "short"
    root.mkdir()
    for name, count in [("a_long", 5), ("b_short", 2)]:
        (root / name).mkdir()
        for i in range(count):
            (root / name / f"{i:03d}.png").write_bytes(encode_png(np.full((8, 8, 3), i * 10, np.uint8)))
    with pytest.warns(UserWarning, match="b_short"):
        ds = VideoFramesDataset(root)
    assert ds.video_names == ["a_long"]
    with pytest.raises(ValueError, match="every video is shorter"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        VideoFramesDataset(root, sampling=FrameSampling(num_frames=6, mode="consecutive"))
    with pytest.raises(ValueError, match="expected 16x16"):
        VideoFramesDataset(root, resolution=16)
    with pytest.raises(ValueError, match="dataset.json"):
        VideoFramesDataset(root, use_labels=True)
    with pytest.raises(FileNotFoundError):
        VideoFramesDataset(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no video folders"):
        VideoFramesDataset(empty)
    # A frame of the wrong size is named when it is read.
    (root / "a_long" / "004.png").write_bytes(encode_png(np.zeros((4, 4, 3), np.uint8)))
    ds = VideoFramesDataset(root, sampling=FrameSampling(mode="consecutive", num_frames=5))
    with pytest.raises(ValueError, match="004.png"):
        ds.get_clip(0, np.random.default_rng(0))


def test_dataset_labels_float_and_mismatch(tmp_path):
    root = tmp_path / "lab"
    for video in ["v0", "v1"]:
        (root / video).mkdir(parents=True)
        for i in range(3):
            (root / video / f"{i}.png").write_bytes(encode_png(np.zeros((4, 4, 3), np.uint8)))
    (root / "dataset.json").write_text(json.dumps({"labels": [["v0/0.png", [0.5, 1.5]], ["v1/0.png", [2.0, 3.0]]]}))
    ds = VideoFramesDataset(root, use_labels=True)
    assert np.allclose(ds.get_labels([1, 0]), [[2.0, 3.0], [0.5, 1.5]])
    (root / "dataset.json").write_text(json.dumps({"labels": {"v0/0.png": 0, "v0/1.png": 1, "v1/0.png": 1}}))
    with pytest.raises(ValueError, match="different labels"):
        VideoFramesDataset(root, use_labels=True)
    (root / "dataset.json").write_text(json.dumps({"labels": {"v0/0.png": 0}}))
    with pytest.raises(ValueError, match="v1"):
        VideoFramesDataset(root, use_labels=True)


def test_clip_stream_deterministic_and_sharded(proc_zip):
    ds = VideoFramesDataset(proc_zip, mirror=True)

    def take(stream, count):
        it = iter(stream)
        return [next(it) for _ in range(count)]

    a = take(VideoClipStream(ds, seed=7), 12)
    b = take(VideoClipStream(ds, seed=7), 12)
    assert [x["index"] for x in a] == [x["index"] for x in b]
    assert all(torch.equal(x["frames"], y["frames"]) and torch.equal(x["times"], y["times"]) for x, y in zip(a, b))
    assert sorted(x["index"] for x in a) == list(range(12)), "one epoch visits every item once"
    c = take(VideoClipStream(ds, seed=8), 12)
    assert [x["index"] for x in a] != [x["index"] for x in c]
    # Two ranks split each epoch without overlap.
    r0 = [x["index"] for x in take(VideoClipStream(ds, seed=7, rank=0, world_size=2), 6)]
    r1 = [x["index"] for x in take(VideoClipStream(ds, seed=7, rank=1, world_size=2), 6)]
    assert sorted(r0 + r1) == list(range(12))
    # Resuming with start=k continues the same item sequence.
    resumed = [x["index"] for x in take(VideoClipStream(ds, seed=7, rank=0, world_size=2, start=2), 4)]
    assert resumed == [x["index"] for x in take(VideoClipStream(ds, seed=7, rank=0, world_size=2), 6)][2:]


def test_real_frames_to_model():
    frames = torch.tensor([0, 255, 128], dtype=torch.uint8).reshape(1, 3, 1, 1, 1).expand(2, 3, 3, 2, 2)
    out = real_frames_to_model(frames)
    assert out.shape == (6, 3, 2, 2) and out.dtype == torch.float32
    assert out[0].eq(-1).all() and out[1].eq(1).all() and torch.allclose(out[2], torch.tensor(128 / 127.5 - 1), atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        real_frames_to_model(frames.float())


def test_clip_stream_with_dataloader_workers(proc_zip):
    ds = VideoFramesDataset(proc_zip, mirror=True)
    serial = VideoClipStream(ds, seed=1, start=3)
    expected = [serial.clip_at(k) for k in range(3, 15)]
    loader = torch.utils.data.DataLoader(VideoClipStream(ds, seed=1, start=3, batch_size=4), batch_size=4, num_workers=2)
    it = iter(loader)
    batches = [next(it) for _ in range(3)]
    batch = batches[0]
    assert batch["frames"].shape == (4, 3, 3, RES, RES) and batch["frames"].dtype == torch.uint8
    assert batch["times"].shape == (4, 3) and batch["times"].dtype == torch.int64
    assert batch["label"].shape == (4, 0)
    # Same clips, same order as the single-process stream: workers do not change the data.
    assert torch.cat([b["index"] for b in batches]).tolist() == [e["index"] for e in expected]
    frames = torch.cat([b["frames"] for b in batches])
    assert torch.equal(frames, torch.stack([e["frames"] for e in expected]))


# ---- prepare -----------------------------------------------------------------------------

def _write_mp4(path: Path, frames: np.ndarray) -> None:
    height, width = frames.shape[1:3]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "12"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _decode_mp4(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _box_half(frames: np.ndarray) -> np.ndarray:
    f = frames.astype(np.float64)
    return (f[:, 0::2, 0::2] + f[:, 1::2, 0::2] + f[:, 0::2, 1::2] + f[:, 1::2, 1::2]) / 4


@pytest.fixture(scope="module")
def prepare_src(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    base = procedural.render_video(9, 0, 12, 64)
    wide = np.concatenate([procedural.render_video(9, 1, 12, 64), procedural.render_video(9, 2, 12, 64)[:, :, :32]], axis=2)
    (src / "cats").mkdir()
    _write_mp4(src / "cats" / "square.mp4", base)
    _write_mp4(src / "wide.mp4", wide)  # 96x64: must be centre-cropped
    (src / "broken.mp4").write_bytes((src / "wide.mp4").read_bytes()[:200])
    (src / "notes.txt").write_text("not a video")
    frames = src / "dogs" / "frames"
    frames.mkdir(parents=True)
    for i, frame in enumerate(procedural.render_video(9, 3, 12, 64)):
        (frames / f"{i}.png").write_bytes(encode_png(frame))  # 0..11: natural order needed
    return src


@pytest.mark.parametrize("dest_name", ["out", "out.zip"])
def test_prepare_layout_and_content(prepare_src, tmp_path, dest_name):
    dest = tmp_path / dest_name
    options = prepare_mod.PrepareOptions(resolution=RES)
    converted, skipped = prepare_mod.prepare(prepare_src, dest, options, workers=2, progress=False)
    assert [s.source.path.name for s in skipped] == ["broken.mp4"]
    assert "decode failed" in skipped[0].error
    ds = VideoFramesDataset(dest, sampling=FrameSampling(mode="consecutive", num_frames=12))
    assert ds.fps == 25.0  # the mp4s' frame rate, recorded in dataset.json
    assert ds.label_dim == 0
    with pytest.raises(ValueError, match="missing or null"):
        VideoFramesDataset(dest, use_labels=True)
    assert ds.video_names == ["cats__square", "dogs__frames", "wide"] and ds.resolution == RES
    assert (ds.frame_counts == 12).all()
    got = {name: ds.read_frames(i, range(12)).transpose(0, 2, 3, 1).astype(np.float64) for i, name in enumerate(ds.video_names)}
    square = _decode_mp4(prepare_src / "cats" / "square.mp4")
    assert np.abs(got["cats__square"] - _box_half(square)).mean() < 1.5
    wide = _decode_mp4(prepare_src / "wide.mp4")
    assert np.abs(got["wide"] - _box_half(wide[:, :, 16:80])).mean() < 1.5
    assert np.abs(got["wide"] - _box_half(wide[:, :, 0:64])).mean() > 5, "crop must be centred"
    pngs = procedural.render_video(9, 3, 12, 64)
    assert np.abs(got["dogs__frames"] - _box_half(pngs)).mean() < 1.0, "frame folder in natural order (2 < 10)"


def test_prepare_chunks_labels_and_cli(prepare_src, tmp_path, capsys):
    dest = tmp_path / "chunks"
    rc = prepare_mod.main([str(prepare_src / "cats"), str(dest), "--resolution", "16", "--chunk-frames", "5",
                           "--workers", "1", "--quiet"])
    assert rc == 0
    # 12 frames -> chunks of 5, 5 and a 2-frame tail dropped (< --min-frames 3).
    assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == ["square_0000", "square_0001"]
    out = capsys.readouterr()
    assert "wrote 2 videos" in out.out
    labelled = tmp_path / "labelled.zip"
    sub = tmp_path / "classes"
    (sub / "a").mkdir(parents=True)
    (sub / "b").mkdir()
    for cls in ["a", "b"]:
        (sub / cls / "clip.mp4").write_bytes((prepare_src / "cats" / "square.mp4").read_bytes())
    prepare_mod.prepare(sub, labelled, prepare_mod.PrepareOptions(resolution=8), labels_from_dirs=True, progress=False)
    ds = VideoFramesDataset(labelled, use_labels=True)
    assert ds.video_names == ["a__clip", "b__clip"] and np.array_equal(ds.get_labels([0, 1]), np.eye(2, dtype=np.float32))
    # Nothing usable -> clear failure and exit status 1.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mp4").write_bytes(b"\x00" * 100)
    assert prepare_mod.main([str(bad), str(tmp_path / "bad_out"), "--resolution", "8", "--quiet"]) == 1
    assert "none of the 1 sources" in capsys.readouterr().err
    assert not (tmp_path / "bad_out").exists()
    with pytest.raises(ValueError, match="resolution"):
        prepare_mod.prepare(prepare_src, tmp_path / "r", prepare_mod.PrepareOptions(resolution=100000))
    # A destination inside the source (re-running with --overwrite) is not read back as input.
    inner = sub / "prepared"
    for _ in range(2):
        converted, _ = prepare_mod.prepare(sub, inner, prepare_mod.PrepareOptions(resolution=8), overwrite=True,
                                           progress=False)
        assert [r.source.name for r in converted] == ["a__clip", "b__clip"]


# ---- progress ----------------------------------------------------------------------------

def test_progress_bar_plain_stream():
    stream = io.StringIO()
    with ProgressBar(20, desc="job", unit="x", stream=stream) as bar:
        for _ in range(20):
            bar.update()
    lines = stream.getvalue().strip().splitlines()
    assert 2 <= len(lines) <= 11
    assert lines[-1].startswith("job: 100%") and "20/20 x" in lines[-1]
