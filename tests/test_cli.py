"""The command line: render an mp4, convert an original snapshot, describe a file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import stylegan_v
from stylegan_v.video import read_video

ROOT = Path(__file__).resolve().parents[1]


def run(*args, check=True):
    return subprocess.run([sys.executable, "-m", "stylegan_v", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, check=check, timeout=300)


def test_convert_info_render(official_pkl, tmp_path):
    out = tmp_path / "tiny.safetensors"
    run("convert", official_pkl, out)
    info = json.loads(run("info", out).stdout)
    assert set(info["nets"]) == {"G_ema", "G", "D"}
    assert info["generator"]["resolution"] == 32
    assert info["provenance"]["imported_from"] == official_pkl.name

    video = tmp_path / "v.mp4"
    result = run("render", "--checkpoint", out, "--seed", 3, "--motion-seed", 4, "--fps", 12, "--seconds", 1.5,
                 "--batch", 4, "--truncation", 0.7, "--out", video)
    assert "18 frames" in result.stdout
    frames, fps = read_video(video)
    assert frames.shape == (18, 64, 64, 3) and fps == pytest.approx(12)
    assert frames.std() > 5  # a real picture, not a constant


def test_render_matches_library_frames(official_pkl, tmp_path):
    """The mp4's first frame is the library's frame 0 (up to H.264 loss)."""
    from stylegan_v import render as R

    video = tmp_path / "one.mp4"
    run("render", "--checkpoint", official_pkl, "--seed", 5, "--motion-seed", 6, "--frames", 2, "--fps", 25,
        "--crf", 0, "--out", video)
    G = stylegan_v.load(official_pkl)
    ws = R.sample_content(G, 5, 1)
    expected = R.to_uint8(R.render(G, ws, R.MotionSeed(6), R.timestamps(2, 25, G.model_config.dataset_fps)))
    other = R.to_uint8(R.render(G, R.sample_content(G, 50, 1), R.MotionSeed(6), R.timestamps(1, 25, 25)))
    frames, _ = read_video(video)

    def luma(x):  # yuv420p keeps luma at full resolution; chroma is subsampled
        return (x[..., :3].astype(float) * [0.299, 0.587, 0.114]).sum(-1)

    err = abs(luma(frames[0]) - luma(expected[0, 0].numpy())).mean()
    assert err < 3, err
    assert abs(luma(frames[0]) - luma(other[0, 0].numpy())).mean() > 4 * err


def test_render_scale_enlarges_pixels(official_pkl, tmp_path):
    plain, big = tmp_path / "plain.mp4", tmp_path / "big.mp4"
    common = ("--checkpoint", official_pkl, "--seed", 5, "--motion-seed", 6, "--frames", 2, "--crf", 0)
    run("render", *common, "--out", plain)
    run("render", *common, "--scale", 3, "--out", big)
    small, _ = read_video(plain)
    large, _ = read_video(big)
    assert large.shape == (2, 96, 96, 3)
    luma = np.array([0.299, 0.587, 0.114])  # full resolution in yuv420p, unlike chroma
    blocks = (large.astype(float) @ luma).reshape(2, 32, 3, 32, 3)
    assert blocks.std(axis=(2, 4)).mean() < 3  # each source pixel became a flat 3x3 block...
    assert abs(blocks.mean(axis=(2, 4)) - small.astype(float) @ luma).mean() < 3  # ...of the same value
    result = run("render", "--checkpoint", official_pkl, "--scale", 0, "--out", tmp_path / "x.mp4", check=False)
    assert result.returncode != 0 and "--scale must be 1..16" in result.stderr


def test_errors_are_clear(tmp_path):
    result = run("render", "--checkpoint", tmp_path / "missing.safetensors", "--out", tmp_path / "x.mp4",
                 check=False)
    assert result.returncode == 2 and "checkpoint not found" in result.stderr
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x04garbage")
    result = run("info", bad, check=False)
    assert result.returncode == 2 and "bad.pkl" in result.stderr
    result = run("render", "--checkpoint", tmp_path / "missing.safetensors", "--frames", 0, check=False)
    assert result.returncode == 2


def test_precision_uses_the_library_names_and_reads_the_short_ones(capsys):
    from stylegan_v.__main__ import parser

    for given, name in (("float32", "float32"), ("float16", "float16"), ("bfloat16", "bfloat16"), ("fp32", "float32"),
                        ("fp16", "float16"), ("bf16", "bfloat16"), ("half", "float16")):
        assert parser().parse_args(["render", "--precision", given]).precision == name
    assert parser().parse_args(["render"]).precision == "float32"
    with pytest.raises(SystemExit):
        parser().parse_args(["render", "--precision", "fp8"])
    assert "precision must be one of float32, float16, bfloat16; got 'fp8'" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (("--truncation", "nan"), "argument --truncation: must be a finite number, got nan"),
    (("--seconds", "inf"), "argument --seconds: must be a finite number, got inf"),
    (("--fps", "nan"), "argument --fps: must be a finite number"),
    (("--speed=-inf",), "argument --speed: must be a finite number"),
    (("--class-index", "3", "--frames", "1"), "--class-index is for class-conditional models"),
    (("--device", "cuda:7", "--frames", "1"), "--device cuda:7: this machine has"),
    (("--speed", "1e12", "--frames", "3"), "beyond the 2.199e+10 s (2^39 dataset frames at 25 fps)"),
    (("--batch", "10000000", "--frames", "2"), "use a smaller chunk or fewer videos"),
])
def test_bad_arguments_are_one_error_line_with_status_2(tmp_path, args, message):
    out = tmp_path / "x.mp4"
    result = run("render", "--out", out, *args, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_out_must_be_a_regular_file_and_links_are_followed_only_when_asked(tmp_path):
    (tmp_path / "folder").mkdir()
    result = run("render", "--frames", 1, "--out", tmp_path / "folder", check=False)
    assert result.returncode == 2 and "exists and is not a regular file" in result.stderr
    target = tmp_path / "target.mp4"
    target.write_bytes(b"previous")
    link = tmp_path / "link.mp4"
    link.symlink_to(target)
    result = run("render", "--frames", 1, "--out", link, check=False)
    assert result.returncode == 2 and "--follow-symlink" in result.stderr
    assert target.read_bytes() == b"previous" and link.is_symlink()
    run("render", "--frames", 1, "--follow-symlink", "--out", link)
    assert link.is_symlink() and read_video(target)[0].shape[0] == 1


def test_sigterm_keeps_the_previous_output_and_leaves_no_temp_file(tmp_path):
    import signal
    import time

    out = tmp_path / "v.mp4"
    out.write_bytes(b"previous")
    process = subprocess.Popen([sys.executable, "-m", "stylegan_v", "render", "--frames", "100000", "--out", out],
                               cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".v.mp4.*")) and time.monotonic() < deadline:  # rendering has begun
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert err.strip().splitlines() == [f"terminated: nothing written; {out} is as it was"]
    assert out.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]
