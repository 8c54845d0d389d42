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
                 "--batch", 4, "--truncation", 0.7, "--scale", 1, "--out", video)
    assert "18 frames" in result.stdout
    frames, fps = read_video(video)
    assert frames.shape == (18, 64, 64, 3) and fps == pytest.approx(12)
    assert frames.std() > 5  # a real picture, not a constant


def test_render_matches_library_frames(official_pkl, tmp_path):
    """The mp4's first frame is the library's frame 0 (up to H.264 loss)."""
    from stylegan_v import render as R

    video = tmp_path / "one.mp4"
    run("render", "--checkpoint", official_pkl, "--seed", 5, "--motion-seed", 6, "--frames", 2, "--fps", 25,
        "--crf", 0, "--scale", 1, "--out", video)
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


def test_render_scale_nearest_enlarges_pixels(official_pkl, tmp_path):
    plain, big = tmp_path / "plain.mp4", tmp_path / "big.mp4"
    common = ("--checkpoint", official_pkl, "--seed", 5, "--motion-seed", 6, "--frames", 2, "--crf", 0)
    run("render", *common, "--scale", 1, "--out", plain)
    run("render", *common, "--scale", 3, "--resize", "nearest", "--out", big)
    small, _ = read_video(plain)
    large, _ = read_video(big)
    assert large.shape == (2, 96, 96, 3)
    luma = np.array([0.299, 0.587, 0.114])  # full resolution in yuv420p, unlike chroma
    blocks = (large.astype(float) @ luma).reshape(2, 32, 3, 32, 3)
    assert blocks.std(axis=(2, 4)).mean() < 3  # each source pixel became a flat 3x3 block...
    assert abs(blocks.mean(axis=(2, 4)) - small.astype(float) @ luma).mean() < 3  # ...of the same value
    result = run("render", "--checkpoint", official_pkl, "--scale", 0, "--out", tmp_path / "x.mp4", check=False)
    assert result.returncode == 2 and "argument --scale: must be 1..16, got 0" in result.stderr


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
    # Our one line ends stderr. A library's import notice may come before it: under torch 2.2 einops
    # imports torch._dynamo on its first use, which imports transformers where it is installed, and
    # that prints a line of its own (whether it does depends on when the signal lands).
    assert err.strip().splitlines()[-1] == f"terminated: nothing written; {out} is as it was"
    assert "Traceback" not in err and "terminated" not in "".join(err.strip().splitlines()[:-1])
    assert out.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


# ---- enlargement: stylegan_v.resize against references written here, then the CLI's default ----

def _cubic(x, a=-0.75):
    """Keys' cubic convolution kernel (a = -0.75, the common choice for image resampling)."""
    x = np.abs(x)
    return np.where(x <= 1, (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1,
                    np.where(x < 2, a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a, 0.0))


def _resample_axis(x, scale, kernel, taps, axis):
    """Enlarge one axis by `scale`, sampling at pixel centres ((i + 0.5) / scale - 0.5), edges clamped."""
    n = x.shape[axis]
    out = []
    for i in range(n * scale):
        src = (i + 0.5) / scale - 0.5
        base = np.floor(src)
        acc = 0.0
        for k in range(-taps + 1, taps + 1):
            j = base + k
            acc = acc + kernel(src - j) * np.take(x, int(np.clip(j, 0, n - 1)), axis=axis)
        out.append(acc)
    return np.stack(out, axis=axis)


def _reference(x, scale, mode):
    if mode == "bicubic":
        kernel, taps = _cubic, 2
    else:
        kernel, taps = (lambda d: np.maximum(0.0, 1 - np.abs(d))), 1
    return _resample_axis(_resample_axis(x, scale, kernel, taps, -1), scale, kernel, taps, -2)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("scale", [2, 3, 8])
def test_smooth_enlargement_matches_the_resampling_formula(mode, scale):
    import torch

    from stylegan_v.resize import enlarge

    x = torch.from_numpy(np.random.default_rng(scale).uniform(-1, 1, (2, 3, 3, 5, 4)))  # [B, F, C, H, W]
    out = enlarge(x, scale, mode)
    assert out.shape == (2, 3, 3, 5 * scale, 4 * scale) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), _reference(x.numpy(), scale, mode), rtol=0, atol=1e-9)


def test_enlargement_keeps_constants_and_nearest_repeats_pixels_exactly():
    import torch

    from stylegan_v.resize import FILTERS, enlarge

    flat = torch.full((1, 3, 4, 4), 0.25)
    for mode in FILTERS:  # the kernel weights sum to 1, up to float32 rounding of four products
        assert (enlarge(flat, 5, mode) - 0.25).abs().max() <= 4 * 2 ** -24, mode
    x = torch.randn(2, 3, 4, 6)
    big = enlarge(x, 3, "nearest")
    assert torch.equal(big[..., 1::3, 2::3], x) and torch.equal(big[..., ::3, ::3], x)
    assert enlarge(x, 1, "bicubic") is x
    for scale, mode, message in ((0, "bicubic", "--scale must be 1..16"), (2, "lanczos", "--resize must be one of")):
        with pytest.raises(ValueError, match=message):
            enlarge(x, scale, mode)


@pytest.mark.parametrize("resolution, scale", [(32, 8), (64, 4), (100, 3), (128, 2), (256, 1), (1024, 1), (4, 16)])
def test_default_scale_is_the_smallest_that_reaches_256_px(resolution, scale):
    from stylegan_v.resize import MIN_VIEW_SIZE, default_scale

    assert default_scale(resolution) == scale
    assert resolution * scale >= MIN_VIEW_SIZE or scale == 16
    assert scale == 1 or resolution * (scale - 1) < MIN_VIEW_SIZE


def test_render_default_is_at_least_256_px_and_smoothly_enlarged(tmp_path):
    """The 32x32 demo model comes out 8x larger, with the library's bicubic enlargement of its frames."""
    from stylegan_v import render as R
    from stylegan_v.arguments import DEMO_CHECKPOINT
    from stylegan_v.resize import enlarge

    video = tmp_path / "v.mp4"
    result = run("render", "--seed", 5, "--motion-seed", 6, "--frames", 1, "--fps", 25, "--crf", 0, "--out", video)
    assert "256x256" in result.stdout
    frames, _ = read_video(video)
    assert frames.shape == (1, 256, 256, 3)
    G = stylegan_v.load(DEMO_CHECKPOINT)
    small = R.render(G, R.sample_content(G, 5, 1), R.MotionSeed(6), R.timestamps(1, 25, G.model_config.dataset_fps))
    luma = np.array([0.299, 0.587, 0.114])  # full resolution in yuv420p, unlike chroma
    got = frames[0].astype(float) @ luma
    smooth = R.to_uint8(enlarge(small, 8, "bicubic"))[0, 0].numpy().astype(float) @ luma
    blocky = R.to_uint8(enlarge(small, 8, "nearest"))[0, 0].numpy().astype(float) @ luma
    assert abs(got - smooth).mean() < 2  # H.264 at crf 0 after the RGB -> YUV rounding

    def blockiness(image):  # steps between 8x8 blocks over steps inside them: ~1 when smooth
        steps = abs(np.diff(image, axis=1))
        edges = (np.arange(steps.shape[1]) % 8) == 7
        return steps[:, edges].mean() / max(steps[:, ~edges].mean(), 1e-9)  # nearest: no steps inside

    assert blockiness(blocky) > 10 and blockiness(got) < 2, (blockiness(blocky), blockiness(got))


# ---- help, errors, output folders, vocabulary ----

def test_help_answers_without_importing_torch():
    """--help of every command builds the parsers only: no torch, no networks (the package's own
    __init__ is replaced by an empty package here, so this checks the command line module alone)."""
    code = f"""
import runpy, sys, types
pkg = types.ModuleType("stylegan_v")
pkg.__path__ = [{str(ROOT / "stylegan_v")!r}]
sys.modules["stylegan_v"] = pkg
import stylegan_v.__main__ as cli
for argv in ([], ["render"], ["convert"], ["info"]):
    try:
        cli.main(argv + ["--help"])
    except SystemExit as e:
        assert e.code == 0, (argv, e.code)
heavy = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "numpy", "av", "safetensors")))
assert not heavy, heavy
"""
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd="/",
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--resize {bicubic,bilinear,nearest}" in result.stdout and "(default: 30.0)" in result.stdout


def test_help_shows_every_default():
    import argparse
    import re

    from stylegan_v.__main__ import parser

    p = parser()
    subparsers = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        entries = re.split(r"\n  (?=-)", sub.format_help())
        for action in sub._actions:
            if action.option_strings and action.dest != "help" and \
                    not any(action.default is v for v in (None, False, argparse.SUPPRESS)):
                entry = next(e for e in entries if e.startswith(action.option_strings[0] + " "))
                assert "default" in entry, (name, entry)
    render = " ".join(subparsers.choices["render"].format_help().split())
    for shown in ("(default: 30.0)", "(default: 4.0)", "(default: 0)", "(default: float32)", "(default: bicubic)",
                  "(default: out.mp4)", "the built-in 32x32 demo model", "at least 256 px"):
        assert shown in render, shown


@pytest.mark.parametrize("args, message", [
    (("--seconds", "-3"), "argument --seconds: must be positive, got -3"),
    (("--seconds", "1e9"), "--seconds must be at most 333333 at 30 fps, got 1e+09"),
    (("--frames", "0"), "argument --frames: must be 1..10000000, got 0"),
    (("--fps", "0"), "argument --fps: must be positive, got 0"),
    (("--start", "-1"), "argument --start: must be >= 0, got -1"),
    (("--batch", "0"), "argument --batch: must be >= 1, got 0"),
    (("--crf", "52"), "argument --crf: must be 0..51, got 52"),
    (("--resize", "lanczos"), "argument --resize: invalid choice: 'lanczos'"),
    (("--precision", "fp8"), "precision must be one of float32, float16, bfloat16; got 'fp8'"),
    (("--nonsense",), "unrecognized arguments: --nonsense"),
])
def test_more_bad_arguments_are_one_error_line_in_the_users_units(tmp_path, args, message):
    out = tmp_path / "new" / "x.mp4"
    result = run("render", "--out", out, *args, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
    assert "frames" not in lines[0] or "--frames" in args  # seconds are refused in seconds
    assert not list(tmp_path.iterdir())  # no folder made for a refused command


def test_missing_output_folders_are_created_with_a_note(official_pkl, tmp_path):
    video = tmp_path / "a" / "b" / "v.mp4"
    result = run("render", "--frames", 1, "--scale", 1, "--out", video)
    assert video.is_file() and f"note: created the folder {video.parent}" in result.stderr.splitlines()
    again = run("render", "--frames", 1, "--scale", 1, "--out", video)
    assert "note:" not in again.stderr  # only when a folder was missing
    converted = tmp_path / "c" / "m.safetensors"
    result = run("convert", official_pkl, converted)
    assert converted.is_file() and f"note: created the folder {converted.parent}" in result.stderr


def test_a_failed_command_leaves_no_folder_it_created(tmp_path):
    import signal
    import time

    out = tmp_path / "new" / "deeper" / "v.mp4"
    process = subprocess.Popen([sys.executable, "-m", "stylegan_v", "render", "--frames", "100000", "--scale", "1",
                                "--out", out], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.parent.is_dir() and list(out.parent.glob(".v.mp4.*"))) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert not list(tmp_path.iterdir()), list(tmp_path.rglob("*"))


def test_every_command_reads_one_precision_vocabulary():
    """The CLI, both benchmarks and the trainer take the library's names and the short ones, and
    hand the library's name on."""
    from stylegan_v import benchmark as render_benchmark
    from stylegan_v.__main__ import parser
    from stylegan_v.generator import PRECISIONS, parse_precision
    from training import benchmark as train_benchmark
    from training.train import build_parser

    spellings = ["float32", "float16", "bfloat16", "fp32", "fp16", "bf16", "half"]
    for given in spellings:
        name = next(k for k, v in PRECISIONS.items() if v == parse_precision(given))
        assert parser().parse_args(["render", "--precision", given]).precision == name
        assert render_benchmark.parser().parse_args(["--precisions", given]).precisions == (name,)
        assert train_benchmark.parser().parse_args(["--preset", "tiny32", "--precision", given]).precision == (name,)
        args = build_parser().parse_args(["--data", "d", "--outdir", "o", "--preset", "tiny32", "--precision", given])
        assert args.precision == name


# ---- make demo: its arguments and its set-up script's checks ----

def _make_variable(name: str) -> str:
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith(f"{name} :=") or line.startswith(f"{name} ?="):
            return line.split("=", 1)[1].strip()
    raise AssertionError(f"{name} not in the Makefile")


def test_make_demo_arguments_parse_and_show_the_model_enlarged_smoothly():
    import shlex

    from stylegan_v.__main__ import parser

    args = parser().parse_args(["render", *shlex.split(_make_variable("DEMO_ARGS"))])
    assert args.batch == 9 and args.resize in ("bicubic", "bilinear")
    assert 32 * args.scale >= 128  # the demo model is 32x32: tiles a browser shows at a readable size
    assert str(args.out) == "out/demo.mp4"


def test_setup_refuses_a_python_without_venv_in_one_clear_line(tmp_path):
    fake = tmp_path / "python3"  # a Python whose ensurepip is missing, as on a fresh Debian
    fake.write_text(f"#!/bin/sh\ncase \"$*\" in *ensurepip*) exit 1;; esac\nexec {sys.executable} \"$@\"\n")
    fake.chmod(0o755)
    result = subprocess.run(["bash", str(ROOT / ".ci" / "setup.sh"), "demo"], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake), "VENV": str(tmp_path / "none"),
                                 "DEMO_VENV": str(tmp_path / "demo")}, timeout=60, check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"[setup] error: '{fake}' cannot create virtual environments; install python3-venv "
        "(Debian/Ubuntu: sudo apt-get install python3-venv)"]
    assert not (tmp_path / "demo").exists()
    result = subprocess.run(["bash", str(ROOT / ".ci" / "setup.sh"), "demo"], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHON": str(tmp_path / "missing")}, timeout=60,
                            check=False)
    assert result.returncode == 1 and "Python 3.10 or newer is needed" in result.stderr


def test_setup_demo_reuses_an_environment_that_renders(tmp_path):
    """With a venv that has what rendering needs (the one running the tests), nothing is installed and
    its python is the one line on stdout."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "python").exists() or sys.prefix == sys.base_prefix:
        pytest.fail("the tests run in a virtual environment (see .ci/setup.sh)")
    result = subprocess.run(["bash", str(ROOT / ".ci" / "setup.sh"), "demo"], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "VENV": str(venv), "DEMO_VENV": str(tmp_path / "demo")},
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{venv}/bin/python\n"
    assert f"[setup] rendering with the existing {venv}" in result.stderr and "installing" not in result.stderr
    assert not (tmp_path / "demo").exists()


def test_project_is_a_subcommand_of_the_command_line(tmp_path):
    listed = run("--help")
    assert listed.returncode == 0 and "project" in listed.stdout
    missing = run("project", "--image", tmp_path / "nowhere.png", "--out", tmp_path / "latents.safetensors",
                  check=False)
    lines = missing.stderr.strip().splitlines()
    assert missing.returncode == 2 and len(lines) == 1, missing.stderr
    assert lines[0].startswith("error:") and "nowhere.png" in lines[0]
    assert not (tmp_path / "latents.safetensors").exists()


@pytest.mark.parametrize("failure,status,line", [
    (OSError(28, "No space left on device"), 1, "error: could not write checkpoint {out}: No space left on device "
                                                "(it needs more than the 0 B written before the disk filled; "),
    (KeyboardInterrupt(), 130, "interrupted: nothing written; {out} is as it was"),
])
def test_convert_interrupted_or_on_a_full_disk_keeps_the_previous_file(official_pkl, tmp_path, monkeypatch, capsys,
                                                                      failure, status, line):
    import safetensors.torch

    from stylegan_v.__main__ import main

    out = tmp_path / "model.safetensors"
    out.write_bytes(b"previous")

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(safetensors.torch, "save_file", fail)
    assert main(["convert", str(official_pkl), str(out)]) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line.format(out=out)), err
    assert out.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
