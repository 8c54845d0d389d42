"""Content x motion grids: each cell must equal rendering that content with that motion on its own."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from stylegan_v import content as C
from stylegan_v import render as R
from stylegan_v.curves import Curve
from stylegan_v.grids import GatheredMotion, content_motion_grid, gather_content, grid_indices
from stylegan_v.motions import LoopingMotion, MotionSeed


def test_grid_indices_rows_are_motions():
    content, motion = grid_indices(3, 2)
    assert content.tolist() == [0, 1, 2, 0, 1, 2] and motion.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="at least one"):
        grid_indices(0, 2)


def _cells(frames, rows, columns, size):
    tiled = R.grid(frames, columns)
    return {(r, b): tiled[:, :, r * size:(r + 1) * size, b * size:(b + 1) * size]
            for r in range(rows) for b in range(columns)}


def test_every_cell_is_its_content_with_its_motion(tiny_generator):
    G = tiny_generator
    ws = R.sample_content(G, 7, 3)
    motion = MotionSeed(5, 2)
    t = R.timestamps(4, 10, 25)
    grid_ws, grid_motion, columns = content_motion_grid(ws, motion)
    assert columns == 3 and grid_motion.batch_size == 6 and grid_ws.shape[0] == 6
    cells = _cells(R.render(G, grid_ws, grid_motion, t), rows=2, columns=3, size=32)
    for b in range(3):
        # Reference: content b alone, shared by both motions of the seed (batch broadcasting in the renderer).
        reference = R.render(G, ws[b:b + 1], motion, t)
        for r in range(2):
            assert torch.allclose(cells[r, b], reference[r], atol=1e-5), (r, b)
    assert not torch.allclose(cells[0, 0], cells[1, 0], atol=1e-3)  # rows differ in motion


def test_grid_of_a_schedule_and_a_looping_motion(tiny_generator):
    G = tiny_generator
    a, b = R.sample_content(G, 1, 2), R.sample_content(G, 2, 2)
    morph = C.Morph(a, b, C.per_frame(Curve.parse("0:0, 0.3:1"), 4, 10))
    motion = LoopingMotion(3, 2, period_codes=2)
    t = R.timestamps(4, 10, 25)
    grid_ws, grid_motion, _ = content_motion_grid(morph, motion)
    assert grid_ws.batch_size == 4
    frames = R.render(G, grid_ws, grid_motion, t)
    for column in range(2):
        single = C.Morph(a[column:column + 1], b[column:column + 1], morph.weights)
        reference = R.render(G, single, motion, t)
        for row in range(2):
            assert torch.allclose(frames[row * 2 + column], reference[row], atol=1e-5)
    # A looping motion stays looping through the grid.
    assert torch.equal(grid_motion.model_time(G, torch.tensor([motion.period(G) + 1.0])), torch.tensor([1.0]))


def test_conditional_grid_uses_each_cells_label():
    from stylegan_v import Generator, preset

    config = preset("tiny32").generator
    torch.manual_seed(0)
    G = Generator(dataclasses.replace(config, c_dim=3)).eval()
    ws = R.sample_content(G, 4, 2, class_index=None)
    c = torch.tensor([[1.0, 0, 0], [0, 0, 1]])
    motion = MotionSeed(9, 2)
    t = R.timestamps(3, 10, 25)
    grid_ws, grid_motion, _ = content_motion_grid(ws, motion)
    grid_c = c[grid_indices(2, 2)[0]]
    frames = R.render(G, grid_ws, grid_motion, t, c=grid_c)
    for b in range(2):
        reference = R.render(G, ws[b:b + 1], motion, t, c=c[b:b + 1].expand(2, -1))
        for r in range(2):
            assert torch.allclose(frames[r * 2 + b], reference[r], atol=1e-5), (r, b)


def test_gather_checks_indices():
    with pytest.raises(ValueError, match="motion indices must be in 0..1"):
        GatheredMotion(MotionSeed(0, 2), (0, 2))
    with pytest.raises(ValueError, match="content indices"):
        gather_content(torch.zeros(2, 4, 8), [3])
