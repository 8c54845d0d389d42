"""The options of a training run, each named once: its field, its flag, and what a resumed run does with it.

`RunOptions` is what `python -m training.train` parses (`training.train` builds
its argparse from the fields' metadata) and what code passes to `Trainer`.
`resolve` is a pure function from those options (and, when resuming, the
options the training state recorded) to the effective options of the run.

On resume, an option marked KEEP may differ from the recorded one: the new value
is used and a note "--flag: old -> new" is logged. An option marked REFUSE
defines the networks, the data layout or the run's random streams; a different
value is an OptionError naming the flag (unless the state did not record one:
older states lose --init once resumed; then the value is taken, with a note).
Options without a mark (how the run is executed: device, precision, workers,
...) are never recorded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from stylegan_v import arguments as A
from stylegan_v.config import ModelConfig
from training.dataset import SAMPLING_MODES
from training.presets import AUGMENT_MODES, TRAIN_PRESETS, TrainPreset, train_preset

KEEP = "keep"
REFUSE = "refuse"


class OptionError(ValueError):
    """An option a resumed run cannot take; the message names the flag."""


def option(default=None, help: str | None = None, *, flag: str | None = None, resume: str | None = None,
           why: str = "", preset: str | None = None, parse=None, required: bool = False, **argparse_kwargs):
    """A RunOptions field. `flag` (default --field-name; "" = no command-line flag), `resume` (KEEP,
    REFUSE or None), `why` (the reason for REFUSE), `preset` (the TrainPreset field it overrides),
    `parse` (command-line value -> field value); the rest goes to argparse's add_argument."""
    meta = {"flag": flag, "help": help, "resume": resume, "why": why, "preset": preset, "parse": parse,
            "argparse": argparse_kwargs}
    if required:
        argparse_kwargs["required"] = True
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def _metrics_list(text: str) -> tuple[str, ...]:
    return tuple(m for m in text.split(",") if m)


_NETWORKS = "it sets the networks"
_SAMPLING = "it sets how clips are drawn (and, for uniform, the discriminator)"


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs. None means: the preset's value (fresh run) or the run's (resume)."""

    data: str = option(help="dataset folder or zip (root/video/frame.png; see training.prepare)", required=True,
                       resume=KEEP)
    outdir: str = option(help="run folder (created; reused by --resume latest)", required=True)
    train: TrainPreset | None = option(
        help="training + model preset (not needed with --resume)", flag="--preset", resume=REFUSE, why=_NETWORKS,
        parse=train_preset, choices=sorted(TRAIN_PRESETS))
    model: ModelConfig | None = option(flag="", resume=REFUSE, why=_NETWORKS)  # None: the training preset's
    kimg: float | None = option(help="train until this many thousand frames (default: preset)", type=float,
                                resume=KEEP, preset="total_kimg")
    snap: float | None = option(help="training snapshot + G_ema export every this many kimg (default: preset)",
                                type=float, resume=KEEP, preset="snap_kimg")
    tick: float | None = option(help="status line every this many kimg (default: preset)", type=float, resume=KEEP,
                                preset="tick_kimg")
    resume: str | None = option(help="'latest' (newest snapshot in --outdir), 'auto' (latest if there is one, else "
                                     "start; for job requeueing) or a training-state file")
    init: str | None = option(help="start from these weights (an original .pkl or one of our .safetensors); "
                                   "fine-tuning settings: fast ADA, no EMA ramp-up",
                              resume=REFUSE, why="the weights come from the training state")
    seed: int | None = option(help="(default 0)", type=int, resume=REFUSE,
                              why="it sets the data order and the random streams")
    batch: int | None = option(help="videos per iteration over all processes (default: preset)", type=int,
                               resume=KEEP, preset="batch")
    batch_gpu: int | None = option(help="videos per forward pass per process (gradient accumulation; default: the "
                                          "whole per-process batch at once)", type=int)
    gamma: float | None = option(help="R1 weight (default: 0.0002 * resolution^2 / batch)", type=float,
                                 resume=KEEP, preset="r1_gamma")
    aug: str | None = option(help="augmentation mode (default: ada)", choices=AUGMENT_MODES, resume=KEEP,
                             preset="augment")
    p: float | None = option(help="augmentation probability for --aug fixed (initial p for ada; default: preset)",
                             type=float, resume=KEEP, preset="augment_p")
    target: float | None = option(help="ADA target for E[sign(D(real))] (default 0.6)", type=float, resume=KEEP,
                                  preset="ada_target")
    mirror: bool | None = option(help="add x-flipped copies of the videos (default: preset, on)",
                                 action="boolean", resume=KEEP, preset="mirror")
    sampling: str | None = option(help="frame sampling (default random)", choices=SAMPLING_MODES, resume=REFUSE,
                                  why=_SAMPLING, preset="sampling")
    max_dist: int | None = option(help="largest first-to-last frame span of a clip (default 32)", type=int,
                                  resume=REFUSE, why=_SAMPLING, preset="max_dist")
    dataset_fps: float | None = option(help="frame rate of the data, stored in exports (default: preset)",
                                       type=float, resume=KEEP)
    device: str | None = option(help="default: cuda when available", choices=("cuda", "cpu"))
    precision: str | None = option(
        help="bfloat16 (bf16): autocast (default on CUDA); float16 (fp16): the original's fp16 top blocks; "
             "float32 (fp32, default on CPU)", type=A.precision, metavar="{float32,bfloat16,float16}")
    loss_scaling: bool = option(False, "dynamic loss scaling (with --precision fp16)", action="store_true")
    compile: bool | None = option(help="torch.compile the main G and D passes (default: on for CUDA; R1 stays "
                                       "eager)", action="boolean")
    channels_last: bool | None = option(help="NHWC activations (default: on for CUDA)", action="boolean")
    threads: int | None = option(help="CPU threads for torch (default: the cores the data workers leave free)",
                                 type=int)
    workers: int | None = option(help="data-loading processes per GPU (default: up to 3, leaving a core to "
                                      "training; 0: load in the main one)", type=int)
    keep: int = option(3, "training snapshots to keep (exports are all kept; 0 = all)", type=int)
    sample_kimg: float | None = option(help="sample video every this many kimg (default: --snap; 0: never)",
                                       type=float)
    sample_videos: int | None = option(help="videos in the sample grid (default: 16, 4 at 1024x1024)", type=int)
    sample_frames: int = option(64, "frames of each sample video", type=int)
    metrics: tuple[str, ...] = option((), "comma-separated metrics, e.g. fvd2048_16f,fid50k_full (default: none)",
                                      parse=_metrics_list)
    metrics_kimg: float | None = option(help="evaluate every this many kimg (default: --snap)", type=float)
    metrics_num: int | None = option(help="fewer samples for a quick look (metric renamed, e.g. fvd256_16f)",
                                     type=int)
    peak_tflops: float | None = option(help="device peak for the MFU estimate when not auto-detected", type=float)
    tensorboard: bool = option(True, "do not write TensorBoard logs (written by default when TensorBoard is "
                                     "installed)", flag="--no-tensorboard", action="store_false")
    verify_replicas: bool = option(False, "check that all processes hold identical weights at the end",
                                   action="store_true")
    log_every_iter: bool = option(False, flag="")  # a status line after every iteration (tests)


OPTIONS = dataclasses.fields(RunOptions)


def flag_of(f: dataclasses.Field) -> str:
    flag = f.metadata["flag"]
    return f"--{f.name.replace('_', '-')}" if flag is None else flag


# ---- resolution ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Resolved:
    """The effective options of a run: `options.train` and `options.model` are final."""

    options: RunOptions
    notes: tuple[str, ...] = ()         # on resume: one line per changed KEEP option, "--flag: old -> new"
    warnings: tuple[str, ...] = ()
    changed: frozenset[str] = frozenset()  # names of the KEEP options that changed on resume

    @property
    def train(self) -> TrainPreset:
        return self.options.train

    @property
    def model(self) -> ModelConfig:
        return self.options.model


def recorded_options(train: TrainPreset, model: ModelConfig, seed: int, data: str, init: str | None,
                     outdir: str = "") -> RunOptions:
    """The options a training state records, as RunOptions (the preset's fields under their flags)."""
    return RunOptions(data=data, outdir=outdir, train=train, model=model, seed=seed, init=init,
                      dataset_fps=model.dataset_fps, **_preset_values(train))


def resolve(opts: RunOptions, recorded: RunOptions | None = None, init_model: ModelConfig | None = None) -> Resolved:
    """Effective options from the given ones and, when resuming, the recorded ones.

    `init_model`: the model config of the --init checkpoint (fresh runs). Pure: no files are read.
    """
    if recorded is not None:
        return _resolve_resumed(opts, recorded)
    return _resolve_fresh(opts, init_model)


def _preset_values(train: TrainPreset) -> dict:
    return {f.name: getattr(train, f.metadata["preset"]) for f in OPTIONS if f.metadata["preset"]}


def _preset_overrides(opts: RunOptions) -> dict:
    return {f.metadata["preset"]: getattr(opts, f.name) for f in OPTIONS if f.metadata["preset"]}


def _resolve_fresh(opts: RunOptions, init_model: ModelConfig | None) -> Resolved:
    if opts.train is None:
        raise ValueError("a training preset is needed unless resuming")
    train = opts.train.with_overrides(**_preset_overrides(opts))
    model = opts.model or train.model_config()
    warnings = []
    if init_model is not None:
        # Fine-tuning: the architecture is the checkpoint's; training uses transfer-learning settings.
        if init_model.generator.resolution != model.generator.resolution:
            warnings.append(f"--init {opts.init} is {init_model.generator.resolution}x"
                            f"{init_model.generator.resolution}; using its architecture instead of the preset's "
                            f"{model.generator.resolution}")
        d_kind = init_model.discriminator.sampling_type
        if (train.sampling == "uniform") != (d_kind == "uniform"):
            raise OptionError(f"--init {opts.init} has a discriminator for '{d_kind}' frame sampling; the run asks "
                              f"for '{train.sampling}' (pass --sampling {d_kind})")
        model, train = init_model, train.for_fine_tuning()
    else:
        model = _match_d_sampling(model, train.sampling)
    if opts.dataset_fps:
        model = dataclasses.replace(model, dataset_fps=float(opts.dataset_fps))
    effective = dataclasses.replace(opts, train=train, model=model, seed=0 if opts.seed is None else opts.seed,
                                    dataset_fps=model.dataset_fps, **_preset_values(train))
    return Resolved(effective, warnings=tuple(warnings))


def _resolve_resumed(opts: RunOptions, recorded: RunOptions) -> Resolved:
    values, notes, changed = {}, [], set()
    for f in OPTIONS:
        policy = f.metadata["resume"]
        if policy is None:
            continue
        new, old = getattr(opts, f.name), getattr(recorded, f.name)
        if new is None or _same(new, old):
            values[f.name] = old
            continue
        flag = flag_of(f) or f.name
        if policy == REFUSE and old is not None:
            raise OptionError(f"{flag} {_show(new)}: this run was started with {_show(old)}, and {f.metadata['why']}, "
                              f"so it cannot change on resume; leave {flag} out, or start a new run (--init "
                              "takes an export of this one)")
        values[f.name] = new
        notes.append(f"{flag}: {_show(old)} -> {_show(new)}")
        changed.add(f.name)
    effective = dataclasses.replace(opts, **values)
    train = recorded.train.with_overrides(**_preset_overrides(effective))
    model = dataclasses.replace(recorded.model, dataset_fps=float(effective.dataset_fps))
    effective = dataclasses.replace(effective, train=train, model=model)
    return Resolved(effective, notes=tuple(notes), changed=frozenset(changed))


def _same(new, old) -> bool:
    if isinstance(new, TrainPreset) and isinstance(old, TrainPreset):
        return new.name == old.name  # a preset is named on the command line; the run's carries its overrides
    return new == old


def _show(value) -> str:
    if isinstance(value, (TrainPreset, ModelConfig)):
        return value.name
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def _match_d_sampling(model: ModelConfig, sampling: str) -> ModelConfig:
    """D embeds all gaps of a clip for 'random' sampling but only the first for 'uniform' (the
    original reads the sampling type in D), so a fresh uniform run needs a uniform D."""
    kind = "uniform" if sampling == "uniform" else "random"
    if model.discriminator.sampling_type == kind:
        return model
    return dataclasses.replace(model, discriminator=dataclasses.replace(model.discriminator, sampling_type=kind))
