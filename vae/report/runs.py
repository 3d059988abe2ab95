"""What each job of a sweep has left in its folder: status, settings, metrics, curves."""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from vae.evaluation import SCALARS
from vae.runs.record import ATTEMPTS, COMPLETED, FAILED, INTERRUPTED, PRUNED, RUNNING, read_record, status_of

# How much the k importance samples of test/nll tighten the ELBO: -test/eval_elbo - test/nll, on the same images.
GAP = "test/nll_elbo_gap"
# Columns of the table, in this order, for those that at least one run has. test/eval_elbo is the evaluation's
# ELBO: where the trainer's test/loss is a cross-entropy on grey levels (data.binarize=none), the only
# likelihood of a cheap evaluation.
LIKELIHOODS = ("test/nll", "test/eval_elbo", GAP)
METRICS = (
    "test/loss", "test/recon", "test/kl", *LIKELIHOODS, *(name for name in SCALARS if name not in LIKELIHOODS),
    "val/loss",
)  # fmt: skip
# Training curves, one panel each (per-step values; a GAN's two losses show its oscillation).
CURVES = ("train/loss", "train/recon", "train/kl", "train/d_loss", "train/g_loss")
# A run's status as the report shows it: its record's, but ``running`` (killed with SIGKILL, or still running)
# and no record (a run of an older version, killed or running) both read as ``unfinished``.
UNFINISHED = "unfinished"
STATUSES = (COMPLETED, FAILED, UNFINISHED, INTERRUPTED, PRUNED)
STOPPED = (UNFINISHED, INTERRUPTED, PRUNED)  # stopped before their test: their last logged epoch matters
NOT_SWEPT = {"seed", "hydra.sweep.dir", "hydra.run.dir", "paths.root_dir", "data.root"}  # never a series key


@dataclass
class Run:
    """What one job of the sweep has left in its folder."""

    folder: Path
    status: str  # one of STATUSES
    overrides: dict[str, str]  # its command-line overrides, including the sweep's
    latent_dim: int | None
    dataset: str = "MNIST"  # data.dataset.name (runs recorded before it existed trained on MNIST)
    metrics: dict[str, float] = field(default_factory=dict)
    n_params: int | None = None
    wall_time_s: float | None = None
    epoch: int | None = None  # last epoch logged, for STOPPED runs
    error: str = ""
    robustness: tuple[list[float], list[float]] | None = None  # (sigmas, accuracies) when evaluated
    relative_noise: bool = False  # the robustness noise was scaled by each dim's spread
    samples_kind: str = ""  # what the sample metrics measured (decoder means, drawn pixels, generator outputs)
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # CURVES: (step, value) pairs
    last_step: int | None = None  # the highest step of any scalar it logged; None: no TensorBoard scalars
    log_every_n_steps: int | None = None  # how often it wrote training values (trainer.log_every_n_steps)
    resumed: int = 0  # times it was continued from a checkpoint (metrics.json's resumed_from)
    attempts: int = 0  # earlier attempts moved aside to <run>/attempts/ before it ran again
    launch: str = ""  # what the sweep's last launch naming it did with it (vae.report.history)


def find_runs(sweep: Path) -> list[Path]:
    """The job folders of a multirun (each has ``.hydra/overrides.yaml``), in job order. Only one level
    down: ``<run>/attempts/*/`` hold earlier attempts of a run, with their own ``.hydra``, not runs."""
    folders = [p.parent.parent for p in sweep.glob("*/.hydra/overrides.yaml")]

    def job_number(folder: Path) -> tuple[int, str]:
        suffix = folder.name.rsplit("_", 1)[-1]
        return (int(suffix) if suffix.isdigit() else sys.maxsize, folder.name)

    return sorted(folders, key=job_number)


def read_run(folder: Path) -> Run:
    """The run's status, settings and numbers; evaluation results (eval.json) take precedence over
    those recorded at the end of training, being the later measurement. A completed run's numbers
    all describe its best checkpoint: test/* and the evaluation measure it, and val/* are the
    values it was ranked by. Runs stopped before their test (unfinished, interrupted, pruned) show
    their recorded validation values, else the last ones they logged."""
    overrides = {
        o.key_or_group: o.get_value_element_as_str()
        for o in OverridesParser.create().parse_overrides(OmegaConf.load(folder / ".hydra" / "overrides.yaml"))
        if not o.is_delete()
    }
    config = OmegaConf.load(folder / ".hydra" / "config.yaml")
    latent_dim = OmegaConf.select(config, "model.latent_dim", default=None)
    run = Run(folder, UNFINISHED, overrides, latent_dim, OmegaConf.select(config, "data.dataset.name", default="MNIST"))
    run.log_every_n_steps = OmegaConf.select(config, "trainer.log_every_n_steps", default=None)
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0}).Reload()  # its TensorBoard files
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    run.curves = {tag: scalars[tag] for tag in CURVES if tag in scalars}
    run.last_step = max((step for points in scalars.values() for step, _ in points), default=None)
    if (folder / ATTEMPTS).is_dir():
        run.attempts = sum(path.is_dir() for path in (folder / ATTEMPTS).iterdir())
    summary = read_record(folder)
    if summary is not None:  # written when the run starts (running) and again when it ends
        status = status_of(summary)
        run.status, run.error = UNFINISHED if status == RUNNING else status, summary.get("error", "")
        # metrics holds the last epoch's val/*; best_metrics those of the best checkpoint (runs
        # recorded before it was kept show the last epoch's)
        best = {k: v for k, v in summary.get("best_metrics", {}).items() if k.startswith("val/")}
        run.metrics = {k: v for k, v in (summary.get("metrics", {}) | best).items() if k in METRICS}
        run.n_params = summary.get("n_params")
        if status != RUNNING:  # the record written at its start timed nothing
            run.wall_time_s = summary.get("wall_time_s")
        run.resumed = len(summary.get("resumed_from", []))
        _add_evaluation(run, summary.get("best_checkpoint"))
    if run.status in STOPPED:  # what it has logged so far, where its record has no value (running: none)
        run.metrics = {tag: scalars[tag][-1][1] for tag in METRICS if tag in scalars} | run.metrics
        run.epoch = int(scalars["epoch"][-1][1]) if "epoch" in scalars else None
    if {"test/nll", "test/eval_elbo"} <= run.metrics.keys():
        run.metrics[GAP] = -run.metrics["test/eval_elbo"] - run.metrics["test/nll"]
    return run


def _add_evaluation(run: Run, best_checkpoint: str | None) -> None:
    path = run.folder / "checkpoints" / "eval.json"
    if not path.is_file():
        return
    evaluations = {  # {checkpoint file name: results}, without evaluations on another dataset than the run's
        name: results
        for name, results in json.loads(path.read_text()).items()
        if results.get("dataset", run.dataset) == results.get("trained_on", run.dataset)
    }
    if not evaluations:
        return
    name = Path(best_checkpoint).name if best_checkpoint else None
    results = evaluations.get(name) or max(evaluations.values(), key=lambda r: r["step"])
    run.metrics |= {k: results[k] for k in METRICS if results.get(k) is not None}
    run.samples_kind = results.get("samples_kind", "")
    if curve := results.get("noise_robustness"):
        run.robustness = (curve["sigma"], curve["accuracy"])
        run.relative_noise = curve.get("relative", False)


def swept_keys(runs: list[Run]) -> list[str]:
    """Override keys whose value differs between runs (all override keys for a single run)."""
    keys = list(dict.fromkeys(k for run in runs for k in run.overrides if k not in NOT_SWEPT))
    if len(runs) == 1:
        return keys
    return [k for k in keys if len({run.overrides.get(k) for run in runs}) > 1]


def sort_key(value: str) -> tuple[int, float, str]:
    """Numbers in numeric order (2 before 10), before words in alphabetical order."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def series_label(run: Run, swept: list[str]) -> str:
    """The run's swept settings other than the latent dim: one line per label in the plots."""
    parts = [f"{key.split('.')[-1]}={run.overrides.get(key, '-')}" for key in swept if key != "model.latent_dim"]
    return ", ".join(parts) or "all runs"


def run_label(run: Run, swept: list[str]) -> str:
    return ", ".join(f"{key.split('.')[-1]}={run.overrides.get(key, '-')}" for key in swept) or run.folder.name
