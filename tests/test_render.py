"""Streaming renderer: chunking, prefix stability, long timelines, bounded memory; encoding beside rendering."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import torch

from stylegan_v import render as R
from stylegan_v import video


def test_timestamps_follow_fps_speed_and_start():
    t = R.timestamps(5, fps=60, dataset_fps=30, start_time=1.0, speed=0.5)
    expected = torch.tensor([(1.0 + 0.5 * k / 60) * 30 for k in range(5)], dtype=torch.float64)
    assert torch.allclose(t, expected)
    assert t.dtype == torch.float64
    with pytest.raises(ValueError, match="num_frames"):
        R.timestamps(0, 30, 30)
    with pytest.raises(ValueError, match="start_time"):
        R.timestamps(3, 30, 30, start_time=-1)


def test_motion_noise_is_prefix_stable_and_window_consistent():
    full = R.motion_noise(7, 0, 0, 300, 8)
    assert torch.equal(R.motion_noise(7, 0, 0, 10, 8), full[:10])
    assert torch.equal(R.motion_noise(7, 0, 130, 170, 8), full[130:170])
    assert not torch.equal(R.motion_noise(7, 1, 0, 10, 8), full[:10])  # each video has its own stream
    assert not torch.equal(R.motion_noise(8, 0, 0, 10, 8), full[:10])
    assert abs(full.mean()) < 0.1 and abs(full.std() - 1) < 0.1


def test_content_latents_do_not_depend_on_batch_size():
    assert torch.equal(R.content_latents(3, 4, 16)[:2], R.content_latents(3, 2, 16))


def test_class_labels_one_per_video(tiny_generator):
    import dataclasses

    from stylegan_v import Generator

    torch.manual_seed(0)
    G = Generator(dataclasses.replace(tiny_generator.cfg, c_dim=3)).eval()
    c = R.class_labels(G, seed=6, batch_size=3, class_index=[2, 0, 2])
    assert torch.equal(c, torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 0, 1]]))
    # Video b's noise is the seed's video b, whatever the classes: one class for all is class_index.
    chosen = R.sample_content(G, 6, 3, 0.8, class_index=[2, 0, 2])
    all_two, all_zero = R.sample_content(G, 6, 3, 0.8, class_index=2), R.sample_content(G, 6, 3, 0.8, class_index=0)
    assert torch.allclose(chosen[[0, 2]], all_two[[0, 2]], atol=1e-6)
    assert torch.allclose(chosen[1], all_zero[1], atol=1e-6)
    with pytest.raises(ValueError, match="class_index must be in 0..2 for this model, got 3"):
        R.class_labels(G, 0, 2, class_index=[1, 3])
    with pytest.raises(ValueError, match="2 class indices given for 3 videos"):
        R.sample_content(G, 0, 3, class_index=[1, 2])


def test_chunked_equals_one_shot_and_matches_generator(tiny_generator):
    G = tiny_generator
    ws = R.sample_content(G, seed=1, batch_size=2)
    motion = R.MotionSeed(seed=5, batch_size=2)
    t = R.timestamps(37, fps=24, dataset_fps=30)
    one_shot = R.render(G, ws, motion, t, chunk_size=37)
    chunked = R.render(G, ws, motion, t, chunk_size=5)
    assert one_shot.shape == (2, 37, 3, 32, 32)
    assert (one_shot - chunked).abs().max() < 1e-5  # grouped-conv batch rounding only

    # The renderer's windowed motion equals the original forward pass fed the same noise in full.
    enc = G.synthesis.motion_encoder
    noise = motion.noise(0, enc.num_noise(float(t.max())), enc.z_dim)
    with torch.no_grad():
        reference = G.synthesis(ws, t.unsqueeze(0).expand(2, -1), motion_z=noise)
    assert (one_shot.reshape(reference.shape) - reference).abs().max() < 1e-5


def test_prefix_stable_timeline(tiny_generator):
    G = tiny_generator
    ws = R.sample_content(G, seed=2, batch_size=1)
    motion = R.MotionSeed(seed=9)
    short = R.render(G, ws, motion, R.timestamps(10, 25, 25))
    long = R.render(G, ws, motion, R.timestamps(300, 25, 25), chunk_size=64)
    # Motion is bitwise identical; frames differ only by batch-composition rounding of the convolutions
    # (the original varies by ~1.5e-5 the same way).
    assert (long[:, :10] - short).abs().max() < 1e-4
    t = R.timestamps(10, 25, 25).unsqueeze(0)
    v_short = R.motion_window(G, motion, t)
    v_long = R.motion_window(G, motion, R.timestamps(300, 25, 25).unsqueeze(0))[:10]
    assert torch.equal(R.motion_codes(G, motion, 0, 1), R.motion_codes(G, motion, 0, 30)[:, :2])
    assert (v_short - v_long).abs().max() < 1e-5  # same codes; matmul rounding only


def test_long_and_fractional_timestamps(tiny_generator):
    G = tiny_generator
    ws = R.sample_content(G, seed=3, batch_size=1)
    motion = R.MotionSeed(seed=4)
    # Ten minutes at 30 fps: render frames near the end without touching the rest.
    t = torch.tensor([17999.0, 17999.25, 17999.5, 18000.0], dtype=torch.float64)
    frames = R.render(G, ws, motion, t)
    assert torch.isfinite(frames).all() and frames.shape[1] == 4
    # Continuity in t: a tiny step in time changes the frame a little.
    near = R.render(G, ws, motion, t + 1e-3)
    assert (near - frames).abs().max() < 0.05
    # The windowed codes equal the original's full-length motion generator output ...
    enc = G.synthesis.motion_encoder
    noise = motion.noise(0, enc.num_noise(float(t.max())), enc.z_dim)
    with torch.no_grad():
        full_codes = enc.codes(noise)
        reference = G.synthesis(ws, t.unsqueeze(0), motion_z=noise)
    first = int(t.min()) // enc.distance
    window = R.motion_codes(G, motion, first, first + 2)
    assert (window - full_codes[:, first:first + 3]).abs().max() < 1e-5
    # ... and frames agree to float32's resolution of the phase: at t = 18000 the angle is ~1e4 rad,
    # whose float32 spacing is ~1e-3, so the original itself cannot be more precise than that.
    assert (frames.reshape(reference.shape) - reference).abs().max() < 5e-3


def test_memory_is_bounded_by_the_chunk(tiny_generator, monkeypatch):
    """A 10-minute timeline draws noise only for the current window, never for the whole video."""
    G = tiny_generator
    drawn = []
    original = R.MotionSeed.noise

    def spy(self, start, stop, dim):
        drawn.append(stop - start)
        return original(self, start, stop, dim)

    monkeypatch.setattr(R.MotionSeed, "noise", spy)
    ws = R.sample_content(G, seed=0, batch_size=1)
    t = R.timestamps(18000, fps=30, dataset_fps=30)
    chunks = R.render_chunks(G, ws, R.MotionSeed(0), t, chunk_size=16)
    for i, (start, frames) in zip(range(3), chunks):
        assert frames.shape[1] == 16
    # Each call draws one aligned block of codes' noise, independent of the timeline's length.
    assert max(drawn) == R.CODE_BLOCK + G.synthesis.motion_encoder.receptive_field - 1
    assert len(drawn) <= 2 * 3


def test_batch_broadcast_and_errors(tiny_generator):
    G = tiny_generator
    ws = R.sample_content(G, seed=0, batch_size=1)
    frames = R.render(G, ws, R.MotionSeed(0, batch_size=3), R.timestamps(2, 25, 25))
    assert frames.shape[0] == 3
    with pytest.raises(ValueError, match="batch"):
        R.render(G, R.sample_content(G, 0, 2), R.MotionSeed(0, 3), R.timestamps(2, 25, 25))
    with pytest.raises(ValueError, match="seed"):
        R.MotionSeed(-1)
    with pytest.raises(ValueError, match="chunk_size"):
        R.render(G, ws, R.MotionSeed(0), R.timestamps(2, 25, 25), chunk_size=0)


def test_uint8_and_grid():
    frames = torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 1, 3, 1, 1).expand(4, 2, 3, 2, 2)
    g = R.grid(frames, columns=3)
    assert g.shape == (2, 3, 4, 6)
    assert g[0, 0, 2:, 2:].eq(-1).all()  # the empty sixth cell is black
    u = R.to_uint8(frames)
    assert u.shape == (4, 2, 2, 2, 3) and u.dtype == torch.uint8
    assert u[0, 0, 0, 0].tolist() == [0, 128, 255]


# ---- encoding beside rendering ------------------------------------------------------------------------

def _videos(batch: int, frames: int, size: int = 16) -> np.ndarray:
    """uint8 [B, F, H, W, 3] of flat grey frames (which H.264 keeps exactly): video b, frame f is 20 + 30f + 100b."""
    levels = 20 + 30 * np.arange(frames)[None, :] + 100 * np.arange(batch)[:, None]
    return np.broadcast_to(levels[:, :, None, None, None], (batch, frames, size, size, 3)).astype(np.uint8)


def test_write_mp4s_writes_video_b_of_every_batch_to_file_b(tmp_path):
    videos = _videos(2, 5)
    paths = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    video.write_mp4s(paths, (videos[:, i:i + 2] for i in range(0, 5, 2)), fps=10.0, crf=0)
    for path, expected in zip(paths, videos):
        frames, fps = video.read_video(path)
        assert frames.shape == expected.shape and fps == pytest.approx(10.0)
        assert np.abs(frames.mean(axis=(1, 2, 3)) - expected.mean(axis=(1, 2, 3))).max() < 2


def test_write_mp4s_leaves_no_file_when_the_frames_fail(tmp_path):
    def frames_then_failure():
        yield _videos(2, 2)
        raise KeyboardInterrupt  # e.g. the renderer interrupted, or out of memory

    threads = threading.active_count()
    with pytest.raises(KeyboardInterrupt):
        video.write_mp4s([tmp_path / "a.mp4", tmp_path / "b.mp4"], frames_then_failure(), fps=10.0)
    assert list(tmp_path.iterdir()) == []
    assert threading.active_count() == threads  # every encoder has ended


def test_write_mp4s_reports_an_encoder_failure(tmp_path):
    bad = _videos(2, 2).astype(np.float32)  # the encoders refuse anything but uint8
    with pytest.raises(RuntimeError, match="writing the mp4 failed: frames must be uint8"):
        video.write_mp4s([tmp_path / "a.mp4", tmp_path / "b.mp4"], iter([bad, bad, bad, bad]), fps=10.0)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="a batch of 3 videos for 2 files"):
        video.write_mp4s([tmp_path / "a.mp4", tmp_path / "b.mp4"], iter([_videos(3, 1)]), fps=10.0)


def test_write_mp4s_stays_a_few_batches_ahead_of_a_slow_encoder(tmp_path, monkeypatch):
    counts = {"produced": 0, "consumed": 0, "max_ahead": 0}

    def slow_encoder(path, batches, fps, crf=18, metadata=None):
        for _ in batches:
            counts["consumed"] += 1
            counts["max_ahead"] = max(counts["max_ahead"], counts["produced"] - counts["consumed"])
            time.sleep(0.002)
        return counts["consumed"]

    def fast_renderer():
        for _ in range(200):
            counts["produced"] += 1
            yield np.zeros((1, 1, 2, 2, 3), np.uint8)

    monkeypatch.setattr(video, "write_mp4", slow_encoder)
    video.write_mp4s([tmp_path / "a.mp4"], fast_renderer(), fps=10.0)
    assert counts["consumed"] == 200 and counts["max_ahead"] <= 4, counts  # queue depth 2, plus one in hand each


def test_frame_feed_ends_raises_and_drains():
    feed = video.FrameFeed(depth=4)
    for item in (1, 2):
        feed.put(item)
    feed.close()
    assert list(feed) == [1, 2]
    failed = video.FrameFeed(depth=4)
    failed.put(1)
    failed.close(ValueError("stopped"))
    with pytest.raises(ValueError, match="stopped"):
        list(failed)
    # A consumer that gives up drains: the producer is never left blocked on a full queue.
    abandoned = video.FrameFeed(depth=1)
    producer = threading.Thread(target=lambda: [abandoned.put(i) for i in range(50)] and abandoned.close())
    producer.start()
    abandoned.drain()
    producer.join(timeout=10)
    assert not producer.is_alive()


def test_windows_around_far_apart_times_equal_one_window(tiny_generator):
    """Frames far apart read their own windows of codes: the codes are the same ones, v(t) agrees."""
    G = tiny_generator
    enc = G.synthesis.motion_encoder
    motion = R.MotionSeed(seed=3, batch_size=2)
    t = torch.tensor([[0.0, 7.5, 3000.0, 3001.5, 9000.25], [1.0, 4000.0, 4000.5, 9500.0, 20.0]], dtype=torch.float64)
    left = torch.div(t, enc.distance, rounding_mode="floor").long()
    runs = R.code_runs(left)
    assert len(runs) > 1 and sum(b - a + 1 for a, b in runs) < 100  # not the 600 codes of the span
    whole = R.motion_codes(G, motion, 0, int(left.max()) + 1)
    for first, last in runs:  # aligned blocks: a code's value does not depend on the window that asked
        assert torch.equal(R.motion_codes(G, motion, first, last), whole[:, first:last + 1])
    reference = enc.motion_vectors(whole, t)
    windowed = R.motion_window(G, motion, t)  # per-video groups: the two videos' times differ
    assert (windowed - reference).abs().max() < 1e-5  # same codes; matmul rounding only
    shared = R.motion_window(G, motion, t[:1].expand(2, -1))  # one group for both videos
    assert (shared - enc.motion_vectors(whole, t[:1].expand(2, -1))).abs().max() < 1e-5


def test_code_runs_cover_each_frame_and_bridge_small_gaps():
    assert R.code_runs(torch.tensor([0, 1, 2, 40, 41, 200])) == [(0, 3), (40, 42), (200, 201)]
    assert R.code_runs(torch.tensor([5, 5, 5])) == [(5, 6)]
    assert R.code_runs(torch.tensor([0, 34])) == [(0, 35)]  # a gap of CODE_BLOCK codes is bridged
    assert R.code_runs(torch.tensor([0, 35])) == [(0, 1), (35, 36)]


def test_speed_and_start_cost_what_ordinary_frames_cost(tiny_generator):
    """16 frames at speed 1e7 or starting at 1e9 s take the time of 16 ordinary frames (work ~ frames, not span)."""
    G = tiny_generator
    ws = R.sample_content(G, seed=1, batch_size=1)
    motion = R.MotionSeed(seed=2)
    timelines = {"ordinary": R.timestamps(16, 25, 25), "speed": R.timestamps(16, 25, 25, speed=1e7),
                 "start": R.timestamps(16, 25, 25, start_time=1e9)}
    times = {name: [] for name in timelines}
    # One thread: the ratio then counts work; on a loaded machine each parallel op also pays the thread
    # pool's wake-up, which would count the number of (tiny) motion ops instead.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for t in timelines.values():  # warm-up
            R.render(G, ws, motion, t)
        for _ in range(7):  # alternated, so that load on a shared machine hits all three alike
            for name, t in timelines.items():
                start = time.perf_counter()
                frames = R.render(G, ws, motion, t)
                times[name].append(time.perf_counter() - start)
                assert torch.isfinite(frames).all()
    finally:
        torch.set_num_threads(threads)
    # Each round's ratio pairs runs made under the same load; the median of the rounds is the claim.
    for name in ("speed", "start"):
        ratios = [a / b for a, b in zip(times[name], times["ordinary"])]
        median = float(np.median(ratios))
        print(f"{name}: {median:.2f}x the time of 16 ordinary frames ({min(ratios):.2f}-{max(ratios):.2f})")
        assert median < 1.5, (name, ratios)


def test_times_beyond_the_exact_range_are_refused_naming_the_limit(tiny_generator):
    G = tiny_generator
    with pytest.raises(ValueError, match=r"limit of 5\.498e\+11 \(2\^39\)"):
        R.timestamps(16, 25, 25, start_time=R.MAX_MODEL_TIME / 25)
    with pytest.raises(ValueError, match=r"2\^39"):
        R.timestamps(2, 25, 1e12, speed=1e300)  # overflows to inf: beyond the limit, not NaN
    with pytest.raises(ValueError, match="finite"):
        R.timestamps(2, 25, 25, start_time=float("inf"))
    with pytest.raises(ValueError, match=r"2\^39"):
        R.motion_window(G, R.MotionSeed(0), torch.tensor([[0.0, R.MAX_MODEL_TIME]], dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        R.motion_window(G, R.MotionSeed(0), torch.tensor([[0.0, float("nan")]], dtype=torch.float64))
    just_inside = torch.tensor([[R.MAX_MODEL_TIME - 1000]], dtype=torch.float64)
    assert torch.isfinite(R.motion_window(G, R.MotionSeed(0), just_inside)).all()


def test_compile_without_a_cpp_compiler_stays_eager_with_a_note(tiny_generator, monkeypatch, tmp_path):
    """Neither $CXX nor g++ can be found: the network is left eager, and the note says why."""
    from stylegan_v.compiled import compile_synthesis

    eager = tiny_generator.synthesis.frames
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no g++ on it
    monkeypatch.delenv("CXX", raising=False)
    note = compile_synthesis(tiny_generator, "cpu")
    assert note.startswith("note: no C++ compiler (g++) found") and "\n" not in note
    assert tiny_generator.synthesis.frames == eager  # not wrapped by torch.compile
    monkeypatch.setenv("CXX", str(tmp_path / "missing-g++"))
    assert "missing-g++" in compile_synthesis(tiny_generator, "cpu")


def test_render_compile_falls_back_to_eager_in_a_process_without_a_compiler(tmp_path):
    """`render --compile` with $CXX naming a missing binary: one note on stderr, and the video is written."""
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "v.mp4"
    env = {**os.environ, "CXX": str(tmp_path / "no-such-g++"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "stylegan_v", "render", "--compile", "--frames", "2", "--scale", "1",
                           "--device", "cpu", "--out", str(out)], check=False, capture_output=True, text=True, env=env,
                          timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "C++ compiler" in line]
    expected = (f"note: no C++ compiler ({tmp_path / 'no-such-g++'}) found, so torch.compile cannot build kernels; "
                "rendering eager")
    assert notes == [expected], done.stderr
    assert out.stat().st_size > 0


def test_compile_with_a_compiler_wraps_synthesis_and_caches_beside_converted_snapshots(tiny_generator, monkeypatch,
                                                                                       tmp_path):
    from stylegan_v.compiled import compile_synthesis

    fake = tmp_path / "bin" / "g++"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("STYLEGAN_V_CACHE", str(tmp_path / "cache"))
    eager = tiny_generator.synthesis.frames
    assert compile_synthesis(tiny_generator, "cpu") is None  # compiles lazily, at the first call (not made here)
    assert tiny_generator.synthesis.frames != eager
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cache" / "inductor")
