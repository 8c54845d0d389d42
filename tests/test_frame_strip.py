"""training.frame_strip: rows are videos, columns are moments, cells are the renderer's frames."""

from __future__ import annotations

import numpy as np

from stylegan_v import render as R
import pytest

from training.frame_strip import frame_strip, main, tile
from training.image_codec import decode_image


def test_cells_are_the_rendered_frames(official_pkl):
    import stylegan_v

    G = stylegan_v.load(official_pkl)
    strip = frame_strip(G, seed=3, motion_seed=4, videos=2, frames=3, step=0.5, gap=2)
    assert strip.shape == (2 * 34 - 2, 3 * 34 - 2, 3)
    t = R.timestamps(3, fps=2, dataset_fps=G.model_config.dataset_fps)
    expected = R.to_uint8(R.render(G, R.sample_content(G, 3, 2), R.MotionSeed(4, 2), t)).numpy()
    assert np.array_equal(strip[34:66, 68:100], expected[1, 2])  # video 1 at 1.0 s
    assert (strip[32:34] == 255).all() and (strip[:, 32:34] == 255).all()  # white gaps


def test_tile_places_cells_in_rows_and_leaves_gaps_and_missing_cells_white():
    a, b = np.zeros((4, 6, 3), np.uint8), np.full((4, 6, 3), 7, np.uint8)
    strip = tile([[a, None, b], [b]], gap=1)  # rows of different lengths: as wide as the longest
    assert strip.shape == (2 * 5 - 1, 3 * 7 - 1, 3)
    assert (strip[:4, :6] == 0).all() and (strip[:4, 14:20] == 7).all() and (strip[5:9, :6] == 7).all()
    assert (strip[:4, 7:13] == 255).all() and (strip[5:9, 7:] == 255).all() and (strip[4] == 255).all()
    with pytest.raises(ValueError, match="4x6x3"):
        tile([[a, np.zeros((5, 6, 3), np.uint8)]])
    with pytest.raises(ValueError, match="at least one"):
        tile([[None]])


def test_command_line_writes_a_png(official_pkl, tmp_path):
    out = tmp_path / "strip.png"
    assert main([str(official_pkl), str(out), "--videos", "1", "--frames", "2", "--scale", "2"]) == 0
    image = decode_image(out.read_bytes(), out.name)
    assert image.shape == (64, 2 * 64 + 4, 3)


def test_preview_is_the_video_s_own_frames_thinned(tmp_path):
    from PIL import Image

    from stylegan_v.video import write_mp4
    from training import preview

    # A video whose frames say their index: frame i is uniformly i * 8.
    frames = np.stack([np.full((16, 16, 3), i * 8, np.uint8) for i in range(30)])
    video = tmp_path / "v.mp4"
    write_mp4(video, [frames], fps=30)
    out = tmp_path / "p.webp"
    assert preview.main([str(video), str(out), "--fps", "10", "--seconds", "0.5", "--quality", "100"]) == 0
    with Image.open(out) as image:
        assert image.n_frames == 5 and image.size == (16, 16)
        levels = []
        for i in range(image.n_frames):
            image.seek(i)
            levels.append(np.asarray(image.convert("RGB")).mean())
            assert image.info["duration"] == 100
    # Every third frame of the first 15 (lossy codecs: within a few levels of 0, 24, 48, 72, 96).
    assert np.allclose(levels, [0, 24, 48, 72, 96], atol=4)
    assert preview.main([str(tmp_path / "missing.mp4"), str(out)]) == 2
