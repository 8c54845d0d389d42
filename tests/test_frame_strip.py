"""training.frame_strip: rows are videos, columns are moments, cells are the renderer's frames."""

from __future__ import annotations

import numpy as np

from stylegan_v import render as R
from training.frame_strip import frame_strip, main
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


def test_command_line_writes_a_png(official_pkl, tmp_path):
    out = tmp_path / "strip.png"
    assert main([str(official_pkl), str(out), "--videos", "1", "--frames", "2", "--scale", "2"]) == 0
    image = decode_image(out.read_bytes(), out.name)
    assert image.shape == (64, 2 * 64 + 4, 3)
