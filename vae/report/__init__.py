"""A sweep's results as a table and plots: ``python -m vae.report <multirun folder>`` (or ``vae-report``).

Reads what every run of the sweep has written so far (``metrics.json``, the ``eval.json`` of its
checkpoints, its TensorBoard scalars and PNGs) and writes into the sweep folder:

- ``report.md`` and ``report.csv``: one row per run, the swept settings and the metrics; failed,
  unfinished (killed, or still running), interrupted and pruned runs are listed as such (so a sweep still
  in progress can be reported too), with how to continue them; for a sweep run again into its folder, what
  its latest launch did with each run, how often the run was resumed and its earlier attempts;
- ``metrics_vs_latent_dim.png``, ``kl_vs_recon.png``, ``training_curves.png``, ``noise_robustness.png``
  (evaluated runs);
- contact sheets of the runs' last pictures: ``sheet_prior_samples.png``, ``sheet_reconstructions.png``,
  ``sheet_latent_scatter.png``.

A figure with nothing to draw is not written; ``report.md`` and the command say which and why.
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

from vae.report.figures import (
    SHEETS,
    contact_sheet,
    curves_figure,
    metrics_figure,
    robustness,
    tradeoff_figure,
    why_not_drawn,
)
from vae.report.history import last_actions
from vae.report.runs import Run, find_runs, read_run, sort_key, swept_keys
from vae.report.tables import markdown, rows, write_csv
from vae.runs.launches import read_launches


@dataclass
class Report:
    """What ``report`` read and wrote."""

    runs: list[Run]
    figures: list[str]  # the figure files written
    not_drawn: dict[str, str]  # figure file name -> why it could not be drawn


def report(sweep: Path) -> Report:
    """Writes the report files into ``sweep``."""
    sweep = Path(sweep)
    folders = find_runs(sweep)
    if not folders:
        raise FileNotFoundError(f"{sweep}: no run folders (<run>/.hydra/overrides.yaml) found; pass a multirun folder")
    runs = [read_run(folder) for folder in folders]
    launches = read_launches(sweep)
    actions = last_actions(launches)
    for run in runs:
        run.launch = actions.get(run.folder.name, "")
    swept = swept_keys(runs)
    runs.sort(key=lambda run: [sort_key(run.overrides.get(key, "")) for key in swept])  # e.g. by model, then dim
    columns, table = rows(runs, swept)
    write_csv(sweep / "report.csv", columns, table)

    figures = {
        "metrics_vs_latent_dim.png": metrics_figure(runs, swept),
        "kl_vs_recon.png": tradeoff_figure(runs, swept),
        "training_curves.png": curves_figure(runs, swept),
        "noise_robustness.png": robustness(runs, swept),
        **{f"sheet_{name}.png": contact_sheet(runs, swept, name) for name in SHEETS},
    }
    written, not_drawn = [], {}
    for file_name, figure in figures.items():
        if figure is not None:
            figure.savefig(sweep / file_name, dpi=100)
            written.append(file_name)
        else:  # an earlier report's file would show what the runs no longer hold (e.g. an attempt moved aside)
            (sweep / file_name).unlink(missing_ok=True)
            not_drawn[file_name] = why_not_drawn(file_name, runs)
    (sweep / "report.md").write_text(markdown(sweep, runs, columns, table, written, not_drawn, launches))
    return Report(runs, written, not_drawn)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vae-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="a multirun folder, e.g. logs/multirun/<time>")
    args = parser.parse_args(argv)
    try:
        written = report(args.sweep)
    except FileNotFoundError as err:
        parser.exit(1, f"vae-report: {err}\n")
    print(f"{len(written.runs)} runs -> {args.sweep / 'report.md'}, {args.sweep / 'report.csv'}")
    for file_name, why in written.not_drawn.items():
        print(f"{file_name} not drawn: {why}")
