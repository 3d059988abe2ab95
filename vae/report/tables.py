"""The report's table: one row per run, as CSV and as Markdown."""

import contextlib
import csv
from pathlib import Path

from vae.report.runs import GAP, METRICS, Run


def rows(runs: list[Run], swept: list[str]) -> tuple[list[str], list[dict]]:
    """The table's columns and one dict per run."""
    metrics = [m for m in METRICS if any(m in run.metrics for run in runs)]
    samples = ["samples"] if any(run.samples_kind for run in runs) else []
    columns = ["run", "status", *swept, *metrics, *samples, "n_params", "wall_time_s", "epoch", "error"]
    table = []
    for run in runs:
        row = {"run": run.folder.name, "status": run.status, **{k: run.overrides.get(k, "") for k in swept}}
        row |= {m: run.metrics.get(m) for m in metrics} | dict.fromkeys(samples, run.samples_kind)
        row |= {"n_params": run.n_params, "wall_time_s": run.wall_time_s, "epoch": run.epoch, "error": run.error}
        table.append(row)
    return columns, table


def write_csv(path: Path, columns: list[str], table: list[dict]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in table)


def _cell(value) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, str) and len(value) > 8:  # a long swept number, e.g. a learning rate Optuna sampled
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(sweep: Path, runs: list[Run], columns: list[str], table: list[dict], figures: list[str]) -> str:
    counts = {status: sum(run.status == status for run in runs) for status in ("completed", "failed", "unfinished")}
    # errors get their own section (they are long); epochs matter only while runs are unfinished
    shown = [c for c in columns if c != "error" and (c != "epoch" or counts["unfinished"])]
    lines = [
        f"# Sweep report: {sweep.name}",
        "",
        f"{len(runs)} runs: {counts['completed']} completed, {counts['failed']} failed, "
        f"{counts['unfinished']} unfinished. Losses, reconstruction, KL and NLL are nats per image (summed over "
        "pixels and latent dims, averaged over the test images); test/nll and test/eval_elbo are measured on the "
        "evaluation's images (Bernoulli models: the data module's fixed test binarization) in [0, 1] pixel units, "
        f"and {GAP} = -test/eval_elbo - test/nll is what the importance samples tighten; FID is in the reference "
        "classifier's feature space (FID-MNIST) and `samples` says what it measured; unfinished runs show their "
        "last logged validation values.",
        "",
        "| " + " | ".join(shown) + " |",
        "|" + "---|" * len(shown),
        *("| " + " | ".join(_cell(row[c]) for c in shown) + " |" for row in table),
    ]
    failed = [row for row in table if row["status"] == "failed"]
    if failed:
        lines += ["", "## Failed runs", "", *(f"- `{row['run']}`: {_cell(row['error'])}" for row in failed)]
    lines += ["", "## Figures", "", *(f"![{name}]({name})" for name in figures)]
    return "\n".join(lines) + "\n"
