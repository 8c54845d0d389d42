"""The generator and discriminator compute the original's function (reference outputs of the original code)."""

from __future__ import annotations

import pytest
import torch

import stylegan_v

TOL = 1e-4  # the fixture README: agreement ~1e-5, the original varies ~1.5e-5 with batch composition


@pytest.fixture(scope="module", params=["pkl", "safetensors"])
def nets(request, official_pkl, tmp_path_factory):
    if request.param == "pkl":
        path = official_pkl
    else:
        path = tmp_path_factory.mktemp("conv") / "official_tiny.safetensors"
        stylegan_v.convert_pickle(official_pkl, path)
    return stylegan_v.load(path, "G_ema"), stylegan_v.load(path, "D")


def _close(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


def test_mapping(nets, reference):
    G, _ = nets
    z, c = reference["z"], reference["c"]
    assert _close(G.mapping(z, c), reference["ws"]) < TOL
    assert _close(G.mapping(z, c, truncation_psi=0.7), reference["ws_trunc07"]) < TOL


def test_motion_vectors(nets, reference):
    G, _ = nets
    motion_v, _ = G.synthesis.motion_encoder(reference["t"], reference["c"], reference["motion_z"])
    assert _close(motion_v, reference["motion_v"]) < TOL


@pytest.mark.parametrize("psi,key", [(1.0, "frames"), (0.7, "frames_trunc07")])
def test_frames(nets, reference, psi, key):
    G, _ = nets
    frames = G(reference["z"], reference["c"], reference["t"], motion_z=reference["motion_z"], truncation_psi=psi)
    assert _close(frames, reference[key]) < TOL


def test_frames_fractional_and_long_timestamps_individually(nets, reference):
    """Each (video, frame) rendered alone equals the batched reference: frames are independent given t."""
    G, _ = nets
    t = reference["t"]
    assert (t.frac() != 0).any() and t.max() > 1024  # the fixture covers both cases
    for b in range(t.shape[0]):
        for f in range(t.shape[1]):
            frame = G(reference["z"][b:b + 1], reference["c"][b:b + 1], t[b:b + 1, f:f + 1],
                      motion_z=reference["motion_z"][b:b + 1])
            assert _close(frame[0], reference["frames"][b * t.shape[1] + f]) < TOL


def test_discriminator_logits(nets, reference):
    _, D = nets
    logits = D(reference["d_images"], reference["c"], reference["d_t"])
    assert _close(logits, reference["d_logits"]) < TOL


def test_longer_motion_noise_changes_nothing(nets, reference):
    G, _ = nets
    mz = reference["motion_z"]
    longer = torch.cat([mz, torch.randn(mz.shape[0], 50, mz.shape[2])], dim=1)
    a = G(reference["z"], reference["c"], reference["t"], motion_z=mz)
    b = G(reference["z"], reference["c"], reference["t"], motion_z=longer)
    assert torch.equal(a, b)


def test_motion_knot_identity(nets):
    """At t = jΔ the motion vector is exactly the aligner of code j (spec 1.4.4)."""
    G, _ = nets
    enc = G.synthesis.motion_encoder
    codes = enc.codes(torch.randn(1, 40, enc.z_dim))
    j = torch.arange(0, 15)
    v = enc.motion_vectors(codes, (j * enc.distance).double().unsqueeze(0))
    expected = enc.time_encoder.aligners_predictor(codes[0, j])
    assert _close(v, expected) < 1e-5
