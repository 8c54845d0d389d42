"""The GPU suite: correctness, rendering, training and projection speed and a training smoke run, in one go.

    bench/gpu_suite.sh OUTDIR            # on a CUDA machine: <= 8 minutes on one H100/H200
    bench/gpu_suite.sh OUTDIR --dry-run  # every section at toy sizes on the CPU (tiny32), for CI

Writes OUTDIR/gpu_suite.json (every section: status ok/failed/skipped, its reason, seconds, results)
and OUTDIR/gpu_suite.md (the same as tables). A section that raises is recorded as failed and the
next one still runs; an item that does not apply (CUDA graphs without CUDA) or that its section's
time budget no longer fits is recorded as skipped with the reason. Exit status 1 when a section
failed, by a check (float32 against the float64 oracle, reduced precision against its bound, the
smoke run's losses and ADA p) or by an error, else 0. On a 2-core CPU one toy training step takes
10-20 s, so the dry run's training budget admits the float32 row only and skips the other two.

Sizing. GPU time comes in windows of about 15 minutes, machine start included (2-4 minutes). The
section budgets of a GPU run add up to 5.5 minutes (correctness 30 s, rendering 120 s, training 90 s,
smoke 60 s, projection 30 s), so a run, a fix and one full rerun fit in a window; the 8-minute ceiling leaves room
for the one item a budget cannot cut short. Each budget is checked before every item of its
section, so a slow item (a long torch.compile) costs at most its own overrun: the remaining items
are recorded as skipped, most informative first (bfloat16 before float32; torch.compile only at
256x256, since one compile at 1024x1024 could spend the whole budget). `--only render,training` reruns a part.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
OFFICIAL_TINY = TESTS / "fixtures" / "official_tiny"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
# The parity oracle and the precision bound live with the tests; the suite imports them (one source of truth).
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

PRECISIONS = ("float32", "bfloat16", "float16")
RENDER_PRECISIONS = ("bfloat16", "float16", "float32")  # the Hopper fast path first, should a budget run out
# (the CPU dry run keeps float32 first: it is the cheapest there)


@dataclass(frozen=True)
class Sizes:
    """What each section measures; `full` for a GPU, `toy` for the CPU dry run."""

    render_presets: tuple[tuple[str, tuple[int, ...]], ...]  # (model preset, frames per call)
    render_iters: int
    compile_backend: str          # "inductor"; the dry run traces with "eager" so that compile code cannot rot
    compile_presets: tuple[str, ...]  # where torch.compile is timed: at 1024x1024 one compile can eat the budget
    train_preset: str
    train_precisions: tuple[str, ...]  # in order of interest, should the budget run out
    train_batch: int
    train_iters: int
    train_warmup: int
    train_compile: bool
    smoke_resolution: int
    smoke_iterations: int
    smoke_batch: int
    clip_frames: int | None     # frames per clip D sees in training and smoke (None: the preset's)
    smoke_seconds: float
    projection_preset: str
    projection_steps: int         # timed steps per (kind, precision), after one warm-up step
    budgets: dict                 # seconds per section


FULL = Sizes(render_presets=(("ffs256", (8, 32)), ("mead1024", (1, 4))), render_iters=20,
             compile_backend="inductor", compile_presets=("ffs256",),
             train_preset="ffs256", train_precisions=RENDER_PRECISIONS, train_batch=64, train_iters=10,
             train_warmup=3,
             train_compile=True, smoke_resolution=32, smoke_iterations=100_000, smoke_batch=4, smoke_seconds=50.0,
             clip_frames=None, projection_preset="ffs256", projection_steps=5,
             budgets={"correctness": 30, "render": 120, "training": 90, "smoke": 60, "projection": 30})
TOY = Sizes(render_presets=(("tiny32", (2,)),), render_iters=1, compile_backend="eager", compile_presets=("tiny32",),
            train_preset="tiny32", train_precisions=PRECISIONS, train_batch=2, train_iters=1, train_warmup=0,
            train_compile=False,
            smoke_resolution=32, smoke_iterations=2, smoke_batch=2, smoke_seconds=60.0,
            clip_frames=2, projection_preset="tiny32", projection_steps=2,
            budgets={"correctness": 40, "render": 20, "training": 5, "smoke": 60, "projection": 30})


class Budget:
    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, time.perf_counter()

    @property
    def used(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> bool:
        return self.used < self.seconds


def _skipped(reason: str) -> dict:
    return {"status": "skipped", "reason": reason}


# ---- correctness ----------------------------------------------------------------------------

def correctness(device: torch.device, sizes: Sizes, budget: Budget) -> dict:
    """The fixture's generator on `device`: float32 within the float32 bound of the float64 oracle,
    float16/bfloat16 within that bound plus the reduced-precision term of the precision tests."""
    import numpy as np
    from parity_bounds import excess, float64_copy, generator_oracle
    from test_precision import UNIT_ROUNDOFF, reduced_layers

    import stylegan_v

    with np.load(OFFICIAL_TINY / "reference.npz") as data:
        ref = {k: torch.from_numpy(data[k]) for k in data.files}
    pkl = OFFICIAL_TINY / "network-snapshot.pkl"
    G = stylegan_v.load(pkl)
    o = generator_oracle(float64_copy(G), ref["z"], ref["c"], ref["t"], ref["motion_z"])
    G = G.to(device)
    inputs = [ref[k].to(device) for k in ("z", "c", "t")]
    items = []
    for precision in PRECISIONS:
        if not budget.left():
            items.append({"precision": precision, **_skipped("section budget spent")})
            continue
        G.set_precision(precision)
        with torch.no_grad():
            out = G(*inputs, motion_z=ref["motion_z"].to(device)).float().cpu()
        bound = o.frames_bound
        if precision != "float32":
            bound = bound + 2 * reduced_layers(G) * UNIT_ROUNDOFF[precision] * o.frames.abs().max()
        e = excess(out, o.frames, bound)
        items.append({"precision": precision, "status": "ok" if e <= 1 else "failed", "excess": e,
                      "max_abs_error": float((out.double() - o.frames).abs().max())})
    G.set_precision("float32")
    failed = [i["precision"] for i in items if i["status"] == "failed"]
    return {"status": "failed" if failed else "ok", "check": True, "items": items,
            **({"reason": "outside the bound: " + ", ".join(failed)} if failed else {})}


# ---- rendering ------------------------------------------------------------------------------

def _timer(device: torch.device):
    """(start, stop) -> seconds. CUDA events on CUDA, so that the timed loop has no host sync."""
    if device.type == "cuda":
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def start():
            begin.record()

        def stop() -> float:
            end.record()
            end.synchronize()
            return begin.elapsed_time(end) / 1000
        return start, stop
    t0 = [0.0]

    def start_cpu():
        t0[0] = time.perf_counter()

    def stop_cpu() -> float:
        return time.perf_counter() - t0[0]
    return start_cpu, stop_cpu


def _graphed(fn, args: tuple):
    """One CUDA graph of fn(*args) on static inputs: replay costs one launch."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):  # warm-up on a side stream, as graph capture requires
            fn(*args)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn(*args)
    return graph.replay


def _frames_per_second(call, frames: int, iters: int, device: torch.device) -> float:
    start, stop = _timer(device)
    call()  # warm-up (compile, cudnn autotune)
    call()
    start()
    for _ in range(iters):
        call()
    return frames * iters / stop()


def render(device: torch.device, sizes: Sizes, budget: Budget) -> dict:
    from stylegan_v import render as R
    from stylegan_v.benchmark import _generator, flops_per_frame, measure, peak_tflops

    cuda = device.type == "cuda"
    items = []
    for preset_name, batches in sizes.render_presets:
        G = _generator(preset_name, device)
        flops = flops_per_frame(G)
        for precision in RENDER_PRECISIONS:
            G.set_precision(precision)
            peak = peak_tflops(device, precision)
            for batch in batches:
                ws = R.sample_content(G, seed=0, batch_size=1, device=device).repeat(batch, 1, 1)
                motion_v = torch.randn(batch, G.cfg.motion_v_dim, device=device,
                                       generator=torch.Generator(device).manual_seed(0))
                modes = {"eager": functools.partial(G.synthesis.frames, ws, motion_v)}
                if preset_name in sizes.compile_presets:
                    compiled = torch.compile(G.synthesis.frames, backend=sizes.compile_backend)
                    modes[f"compiled ({sizes.compile_backend})"] = functools.partial(compiled, ws, motion_v)
                for mode, call in [*modes.items(), ("cuda graph", None)]:
                    row = {"preset": preset_name, "resolution": G.img_resolution, "precision": precision,
                           "batch": batch, "mode": mode}
                    # What cannot run here is said so whatever the clock: a loaded CPU spends the budget early.
                    if mode == "cuda graph" and not cuda:
                        items.append({**row, **_skipped("CUDA graphs need a CUDA device")})
                        continue
                    if not budget.left():
                        items.append({**row, **_skipped("section budget spent")})
                        continue
                    if mode == "cuda graph":
                        with torch.no_grad():
                            call = _graphed(G.synthesis.frames, (ws, motion_v))
                    try:
                        with torch.no_grad():
                            fps = _frames_per_second(call, batch, sizes.render_iters, device)
                    except Exception as error:  # noqa: BLE001 - one configuration failing must not hide the others
                        items.append({**row, "status": "failed", "reason": f"{type(error).__name__}: {error}"})
                        continue
                    items.append({**row, "status": "ok", "frames_per_s": fps, "tflops": fps * flops / 1e12,
                                  "mfu": fps * flops / (peak * 1e12) if peak else None,
                                  "timer": "cuda events" if cuda else "perf_counter"})
            # The whole renderer (motion window, chunking, output copy) once per precision, for contrast
            # with the synthesis-only rows; stylegan_v.benchmark times it with a host clock.
            if budget.left():
                fps, peak_mem = measure(G, batches[-1], 2, 2, device, repeats=1)
                items.append({"preset": preset_name, "resolution": G.img_resolution, "precision": precision,
                              "batch": batches[-1], "mode": "renderer (host clock)", "status": "ok",
                              "frames_per_s": fps, "peak_mem_gib": peak_mem / 2**30})
        del G
        if cuda:
            torch.cuda.empty_cache()
    return _summary(items)


def _summary(items: list[dict]) -> dict:
    failed = [i for i in items if i["status"] == "failed"]
    return {"status": "failed" if failed else "ok", "items": items,
            **({"reason": f"{len(failed)} item(s) failed"} if failed else {})}


# ---- training -------------------------------------------------------------------------------

def _model(preset_name: str, frames: int | None):
    """The preset's model, with D seeing `frames` frames per clip (None: the preset's own)."""
    import dataclasses

    from training.presets import train_preset

    model = train_preset(preset_name).model_config()
    if frames is None:
        return None
    return dataclasses.replace(model, discriminator=dataclasses.replace(model.discriminator, num_frames=frames))


def training(device: torch.device, sizes: Sizes, budget: Budget) -> dict:
    from training import benchmark as TB

    items = []
    for precision in sizes.train_precisions:
        row = {"preset": sizes.train_preset, "batch": sizes.train_batch, "precision": precision}
        if not budget.left():
            items.append({**row, **_skipped("section budget spent")})
            continue
        config = TB.BenchConfig(preset=sizes.train_preset, batch=sizes.train_batch, device=device.type,
                                precision=precision, loss_scaling=precision == "float16",
                                compile=sizes.train_compile, channels_last=device.type == "cuda",
                                model=_model(sizes.train_preset, sizes.clip_frames))
        try:
            r = TB.measure(config, sizes.train_iters, sizes.train_warmup)
        except Exception as error:  # noqa: BLE001 - recorded; the other precisions still run
            items.append({**row, "status": "failed", "reason": f"{type(error).__name__}: {error}"})
            continue
        items.append({**row, "status": "ok", "frames_per_clip": r["trainer"].model.discriminator.num_frames,
                      "loss_scaling": precision == "float16", "compile": r["trainer"].runtime.compile,
                      "ms_per_iter": r["ms_per_iter"], "sec_per_kimg": r["sec_per_kimg"],
                      "tflops": r["tflops"], "mfu": r["mfu"], "peak_mem_gib": r["mem_gib"],
                      "memory": "max allocated" if r["cuda"] else "process RSS"})
        del r
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return _summary(items)


# ---- training smoke run ---------------------------------------------------------------------

def smoke(device: torch.device, sizes: Sizes, budget: Budget) -> dict:
    """tiny32 on procedural clips: the losses must move and ADA's p must leave its start."""
    from training.loop import RunOptions, Trainer
    from training.presets import train_preset
    from training.procedural import write_dataset

    p0 = 0.2  # inside (0, 1), so that p can move either way: at 0 a D that does not overfit leaves it at 0
    # ADA's 500 kimg is a schedule for days; a few hundred videos must move p visibly here.
    preset = train_preset("tiny32").with_overrides(batch=sizes.smoke_batch, augment_p=p0, ada_kimg=0.05,
                                                   ada_interval=1, total_kimg=1e6)
    with tempfile.TemporaryDirectory(prefix="sgv-smoke-") as tmp:
        write_dataset(f"{tmp}/data", num_videos=4, num_frames=40, resolution=sizes.smoke_resolution, seed=0,
                      progress=False)
        opts = RunOptions(data=f"{tmp}/data", outdir=f"{tmp}/run", train=preset, device=device.type, workers=0,
                          sample_kimg=0, tensorboard=False, model=_model("tiny32", sizes.clip_frames))
        trainer = Trainer(opts)
        trainer.log.close()
        # Step by step rather than Trainer.run, so that the section's own clock can stop it: the losses
        # are read every iteration (one host sync each, which a smoke run can afford).
        loader = trainer._loader()
        pipe = trainer.state.augment_pipe
        losses, ps = [], []
        deadline = min(sizes.smoke_seconds, budget.seconds - budget.used - 5)
        start = time.perf_counter()
        while len(losses) < sizes.smoke_iterations and time.perf_counter() - start < deadline:
            trainer.train_step(loader)
            values = trainer.stats.collect()
            losses.append((values["Loss/G/loss"], values["Loss/D/loss"]))
            ps.append(float(pipe.p))
        done, seconds = len(losses), time.perf_counter() - start
    g, d = zip(*losses)
    finite = all(math.isfinite(x) for x in (*g, *d))
    # "Moving": the losses vary across iterations by more than float32 noise could make them.
    moved = max(g) - min(g) > 1e-3 and max(d) - min(d) > 1e-3
    adapted = any(abs(p - p0) > 1e-6 for p in ps)  # p is a float32 buffer: 0.2 reads back as 0.2000000030
    ok = done >= 2 and finite and moved and adapted
    problems = [name for name, good in (("fewer than 2 iterations", done >= 2), ("non-finite loss", finite),
                                        ("losses did not move", moved), ("ADA p did not move", adapted))
                if not good]
    return {"status": "ok" if ok else "failed", "check": True, "iterations": done, "seconds": seconds,
            "G_loss_first": g[0], "G_loss_last": g[-1], "G_loss_range": max(g) - min(g),
            "D_loss_first": d[0], "D_loss_last": d[-1], "D_loss_range": max(d) - min(d),
            "p_start": p0, "p_end": ps[-1], "p_min": min(ps), "p_max": max(ps),
            **({"reason": "; ".join(problems)} if problems else {})}


# ---- projection ----------------------------------------------------------------------------

def projection(device: torch.device, sizes: Sizes, budget: Budget) -> dict:
    """Image and clip projection steps/s (random weights) in float32 and under bfloat16 autocast:
    the speed the projection's fast defaults are sized by, and a check that both precisions run."""
    import statistics

    from stylegan_v import Generator, preset
    from stylegan_v.projection_benchmark import step_rates

    torch.manual_seed(0)
    G = Generator(preset(sizes.projection_preset).generator).eval().requires_grad_(False).to(device)
    items = []
    for precision in ("bfloat16", "float32"):
        for kind in ("image", "video"):
            row = {"preset": sizes.projection_preset, "kind": kind, "precision": precision}
            if not budget.left():
                items.append({**row, **_skipped("section budget spent")})
                continue
            rates = step_rates(G, kind, precision, sizes.projection_steps)
            items.append({**row, "status": "ok", "steps_per_s": statistics.median(rates),
                          "min": min(rates), "max": max(rates)})
    return {"status": "ok", "items": items}


SECTIONS = {"correctness": correctness, "render": render, "training": training, "smoke": smoke,
            "projection": projection}


# ---- driver ---------------------------------------------------------------------------------

def run_suite(outdir: Path, dry_run: bool, only: tuple[str, ...] = ()) -> dict:
    cuda = torch.cuda.is_available() and not dry_run
    device = torch.device("cuda" if cuda else "cpu")
    sizes = TOY if dry_run else FULL
    report = {"device": torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)",
              "dry_run": dry_run, "torch": torch.__version__, "sections": {}}
    for name, section in SECTIONS.items():
        budget = Budget(sizes.budgets[name])
        if only and name not in only:
            result = _skipped("not in --only")
        elif not cuda and not dry_run:
            result = _skipped("no CUDA device (use --dry-run for the CPU toy run)")
        else:
            print(f"[gpu_suite] {name} (budget {budget.seconds:g} s)", flush=True)
            try:
                result = section(device, sizes, budget)
            except Exception as error:  # noqa: BLE001 - recorded; the other sections still run
                result = {"status": "failed", "reason": f"{type(error).__name__}: {error}",
                          "traceback": traceback.format_exc()}
        result.update(budget_s=budget.seconds, seconds=budget.used)
        report["sections"][name] = result
        print(f"[gpu_suite] {name}: {result['status']} in {budget.used:.1f} s"
              + (f" ({result['reason']})" if result.get("reason") else ""), flush=True)
        if cuda:
            torch.cuda.empty_cache()
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "gpu_suite.json").write_text(json.dumps(report, indent=1, default=str))
    (outdir / "gpu_suite.md").write_text(markdown(report))
    return report


def _cell(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(rows: list[dict]) -> list[str]:
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k != "traceback"]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(r.get(k, "")) for k in keys) + " |" for r in rows]
    return lines


def markdown(report: dict) -> str:
    lines = [f"# GPU suite: {report['device']}" + (" (dry run, toy sizes)" if report["dry_run"] else ""), "",
             f"torch {report['torch']}", "", "## Sections", ""]
    lines += _table([{"section": name, "status": s["status"], "seconds": s["seconds"], "budget_s": s["budget_s"],
                      "reason": s.get("reason", "")} for name, s in report["sections"].items()])
    for name, s in report["sections"].items():
        if s.get("items"):
            lines += ["", f"## {name}", ""] + _table(s["items"])
        elif s["status"] != "skipped":
            lines += ["", f"## {name}", ""] + _table([{k: v for k, v in s.items() if k != "traceback"}])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/gpu_suite.sh", description=__doc__.split("\n\n")[0])
    p.add_argument("outdir", type=Path, help="folder for gpu_suite.json and gpu_suite.md (created)")
    p.add_argument("--dry-run", action="store_true", help="every section at toy sizes on the CPU (tiny32)")
    p.add_argument("--only", type=lambda s: tuple(s.split(",")), default=(),
                   help="comma-separated sections to run: " + ", ".join(SECTIONS))
    args = p.parse_args(argv)
    unknown = [s for s in args.only if s not in SECTIONS]
    if unknown:
        p.error(f"--only: unknown section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    report = run_suite(args.outdir, args.dry_run, args.only)
    print(f"[gpu_suite] wrote {args.outdir / 'gpu_suite.json'} and {args.outdir / 'gpu_suite.md'}")
    return 1 if any(s["status"] == "failed" for s in report["sections"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
