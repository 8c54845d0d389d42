"""Benchmark: frames/s through the ComfyUI nodes against the library's renderer (not a test).

    .venv/bin/python -m tests.host.bench_nodes                       # tiny32 on the CPU
    .venv/bin/python -m tests.host.bench_nodes --preset ffs256 --frames 256 --batch 4 --chunk 32

Runs inside a real ComfyUI (the host from .ci/comfy_host.sh, imported in-process, GPU if
there is one) with a random-weight checkpoint of the preset, and times the same render five
ways, best of --repeats interleaved rounds:
  library        render.render_chunks only (frames stay on the device)
  library+image  render_chunks + to_unit into a preallocated CPU buffer (what IMAGE needs)
  node Render    StyleGANV_Render.execute (IMAGE, fps and VIDEO outputs)
  library mp4    render_chunks + to_uint8 + video.write_mp4
  node ToFile    StyleGANV_RenderToFile.execute
The node path should add little over the matching library path.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from .harness import find_host
from .inprocess import load_comfy


def timed(fn, sync) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny32")
    parser.add_argument("--frames", type=int, default=64, help="frames per video")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument("--repeats", type=int, default=5)
    opts = parser.parse_args()

    host = find_host()
    if host is None:
        raise SystemExit("no ComfyUI host: run `bash .ci/comfy_host.sh` first")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        comfy_nodes, _ = load_comfy(host, work)
        if torch.cuda.is_available():  # load_comfy forces the CPU for machines without a GPU
            from comfy.cli_args import args

            args.cpu = False
        import comfy.model_management as mm

        import stylegan_v
        from stylegan_v import render
        from stylegan_v.video import write_mp4

        config = stylegan_v.preset(opts.preset)
        torch.manual_seed(0)
        stylegan_v.save(stylegan_v.Generator(config.generator), work / "models/stylegan_v/bench.safetensors",
                        model_config=config)
        node = {k.removeprefix("StyleGANV_"): v for k, v in comfy_nodes.NODE_CLASS_MAPPINGS.items()
                if k.startswith("StyleGANV_")}
        device = mm.get_torch_device()
        sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

        model = node["LoadModel"].execute(ckpt_name="bench.safetensors", dtype=opts.dtype).args[0]
        content = node["SampleContent"].execute(model=model, seed=0, batch_size=opts.batch, truncation_psi=1.0,
                                                class_index=-1).args[0]
        motion = node["SampleMotion"].execute(seed=0, batch_size=opts.batch).args[0]
        timeline = node["Timeline"].execute(model=model, fps=30.0, duration=opts.frames, unit="frames",
                                            start_time=0.0, speed=1.0).args[0]
        G = model.model.generator
        mm.load_models_gpu([model])
        res = G.img_resolution

        def library():
            for _ in render.render_chunks(G, content.ws, motion, timeline.t, c=content.c, chunk_size=opts.chunk):
                pass

        def library_image():
            out = torch.empty([opts.batch, opts.frames, res, res, 3])
            for first, frames in render.render_chunks(G, content.ws, motion, timeline.t, c=content.c,
                                                      chunk_size=opts.chunk):
                out[:, first:first + frames.shape[1]] = render.to_unit(frames).cpu()

        def node_render():
            node["Render"].execute(model=model, content=content, motion=motion, timeline=timeline,
                                   chunk_size=opts.chunk, grid_columns=0)

        def library_mp4():
            chunks = render.render_chunks(G, content.ws, motion, timeline.t, c=content.c, chunk_size=opts.chunk)
            batches = (render.to_uint8(f[0]).cpu() for _, f in chunks)  # first video, like one file
            write_mp4(work / "lib.mp4", batches, 30.0, crf=18)

        def node_file():
            node["RenderToFile"].execute(model=model, content=content, motion=motion, timeline=timeline,
                                         chunk_size=opts.chunk, grid_columns=0, crf=18, filename_prefix="bench/v")

        total = opts.batch * opts.frames
        print(f"{opts.preset} {res}x{res}, batch {opts.batch} x {opts.frames} frames, chunk {opts.chunk}, "
              f"device {device}, precision {G.precision}")
        rows = [("library", library), ("library+image", library_image), ("node Render", node_render)]
        if opts.batch == 1:  # one file each, so the mp4 rows compare like with like
            rows += [("library mp4", library_mp4), ("node ToFile", node_file)]
        # Interleaved rounds, best of each: load from other processes hits every row alike.
        best = {name: float("inf") for name, _ in rows}
        for name, fn in rows:
            fn()  # warm-up (first-call allocations, codec start)
        for _ in range(opts.repeats):
            for name, fn in rows:
                best[name] = min(best[name], timed(fn, sync))
        results = {}
        for name, _ in rows:
            results[name] = total / best[name]
            print(f"  {name:<14} {results[name]:9.1f} frames/s  ({best[name]:.3f} s)")
        print(f"  node Render / library+image: {results['node Render'] / results['library+image']:.3f}")
        if "node ToFile" in results:
            print(f"  node ToFile / library mp4:   {results['node ToFile'] / results['library mp4']:.3f}")


if __name__ == "__main__":
    main()
