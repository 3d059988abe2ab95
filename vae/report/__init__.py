"""A sweep's results as a table and plots: ``python -m vae.report <multirun folder>`` (or ``vae-report``).

Reads what every run of the sweep has written so far (``metrics.json``, the ``eval.json`` of its
checkpoints, its TensorBoard scalars and PNGs) and writes into the sweep folder:

- ``report.md`` and ``report.csv``: one row per run, the swept settings and the metrics; failed and
  unfinished runs are listed as such (so a sweep still in progress can be reported too);
- ``metrics_vs_latent_dim.png``, ``kl_vs_recon.png``, ``training_curves.png``, ``noise_robustness.png``
  (evaluated runs);
- contact sheets of the runs' last pictures: ``sheet_prior_samples.png``, ``sheet_reconstructions.png``,
  ``sheet_latent_scatter.png``.
"""

import argparse
from pathlib import Path

from vae.report.figures import SHEETS, contact_sheet, curves_figure, metrics_figure, robustness, tradeoff_figure
from vae.report.runs import Run, find_runs, read_run, sort_key, swept_keys
from vae.report.tables import markdown, rows, write_csv


def report(sweep: Path) -> list[Run]:
    """Writes the report files into ``sweep`` and returns the runs it read."""
    sweep = Path(sweep)
    folders = find_runs(sweep)
    if not folders:
        raise FileNotFoundError(f"{sweep}: no run folders (<run>/.hydra/overrides.yaml) found; pass a multirun folder")
    runs = [read_run(folder) for folder in folders]
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
    written = []
    for file_name, figure in figures.items():
        if figure is not None:
            figure.savefig(sweep / file_name, dpi=100)
            written.append(file_name)
    (sweep / "report.md").write_text(markdown(sweep, runs, columns, table, written))
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vae-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="a multirun folder, e.g. logs/multirun/<time>")
    args = parser.parse_args(argv)
    try:
        runs = report(args.sweep)
    except FileNotFoundError as err:
        parser.exit(1, f"vae-report: {err}\n")
    print(f"{len(runs)} runs -> {args.sweep / 'report.md'}, {args.sweep / 'report.csv'}")
