"""The report's table: one row per run, as CSV and as Markdown."""

import contextlib
import csv
from pathlib import Path

from vae.report.history import continued, launches_line
from vae.report.runs import GAP, METRICS, STATUSES, STOPPED, UNFINISHED, Run
from vae.runs.record import FAILED, INTERRUPTED, PRUNED


def rows(runs: list[Run], swept: list[str]) -> tuple[list[str], list[dict]]:
    """The table's columns and one dict per run."""
    metrics = [m for m in METRICS if any(m in run.metrics for run in runs)]
    samples = ["samples"] if any(run.samples_kind for run in runs) else []
    # how a continued sweep's runs got here; left out where every run simply ran once (new, or an older sweep)
    history = ["continued"] if any(continued(run) not in ("", "new") for run in runs) else []
    history += ["earlier_attempts"] if any(run.attempts for run in runs) else []
    columns = ["run", "status", *history, *swept, *metrics, *samples, "n_params", "wall_time_s", "epoch", "error"]
    table = []
    for run in runs:
        row = {"run": run.folder.name, "status": run.status, **{k: run.overrides.get(k, "") for k in swept}}
        row |= {"continued": continued(run), "earlier_attempts": run.attempts} if history else {}
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


def markdown(
    sweep: Path,
    runs: list[Run],
    columns: list[str],
    table: list[dict],
    figures: list[str],
    not_drawn: dict[str, str],
    launches: list[dict],
) -> str:
    """``report.md``: what the runs measured and how far they got, the table, the failed runs' errors, the
    figures and why any figure was not drawn (``not_drawn``: file name -> reason)."""
    counts = {status: sum(run.status == status for run in runs) for status in STATUSES}
    # errors get their own section (they are long); epochs matter only while runs stopped before their test
    shown = [c for c in columns if c != "error" and (c != "epoch" or any(counts[s] for s in STOPPED))]
    # completed, failed and unfinished always counted, as before; interrupted and pruned where there are some
    tally = ", ".join(f"{n} {status}" for status, n in counts.items() if n or status in STATUSES[:3])
    lines = [
        f"# Sweep report: {sweep.name}",
        "",
        f"{len(runs)} runs on {', '.join(sorted({run.dataset for run in runs}))}: {tally}. Losses, reconstruction, "
        "KL and NLL are nats per image (summed over "
        "pixels and latent dims, averaged over the test images); test/nll and test/eval_elbo are measured on the "
        "evaluation's images (Bernoulli models: the data module's fixed test binarization) in [0, 1] pixel units, "
        f"and {GAP} = -test/eval_elbo - test/nll is what the importance samples tighten; FID is in the reference "
        "classifier's feature space (that of the runs' dataset) and `samples` says what it measured; runs stopped "
        "before their "
        "test (unfinished, interrupted, pruned) show validation values only: their best epoch's where recorded, "
        "else their last.",
        *_continuing(sweep, runs, counts, columns, launches),
        "",
        "| " + " | ".join(shown) + " |",
        "|" + "---|" * len(shown),
        *("| " + " | ".join(_cell(row[c]) for c in shown) + " |" for row in table),
    ]
    failed = [row for row in table if row["status"] == FAILED]
    if failed:
        lines += ["", "## Failed runs", "", *(f"- `{row['run']}`: {_cell(row['error'])}" for row in failed)]
    lines += ["", "## Figures", "", *(f"![{name}]({name})" for name in figures)]
    if not_drawn:
        lines += ["", "Not drawn:", "", *(f"- `{name}`: {why}" for name, why in not_drawn.items())]
    return "\n".join(lines) + "\n"


def _continuing(
    sweep: Path, runs: list[Run], counts: dict[str, int], columns: list[str], launches: list[dict]
) -> list[str]:
    """Paragraphs on the runs left to continue and on how the runs of a continued sweep got here."""
    paragraphs = []
    if counts[UNFINISHED] or counts[INTERRUPTED] or counts[FAILED]:
        paragraphs.append(
            f"`python train.py resume={sweep}` continues the sweep in this folder: unfinished (killed, or still "
            "running) and interrupted runs resume from their `checkpoints/last.ckpt` (or start again without one), "
            "failed runs run again (their files moved to `<run>/attempts/`; not with hydra.sweeper.failed=keep), "
            "completed and pruned runs are kept as they are."
        )
    if counts[PRUNED]:
        paragraphs.append(
            "Pruned runs were stopped by the search after an epoch whose optimized value trailed the other "
            "trials': they have validation values but no test values."
        )
    notes = [launches_line(launches)]
    if "continued" in columns:
        notes.append(
            "`continued`: what the latest launch of the sweep into this folder did with the run (new, resumed, "
            "skipped, rerun, kept failed) and how many times in all it was resumed from a checkpoint."
        )
    if any(run.resumed for run in runs):
        notes.append("The wall_time_s of a resumed run is that of its last part only.")
    if "earlier_attempts" in columns:
        notes.append("`earlier_attempts`: attempts moved aside to `<run>/attempts/` before the run ran again.")
    if any(notes):
        paragraphs.append(" ".join(note for note in notes if note))
    return [line for paragraph in paragraphs for line in ("", paragraph)]
