"""The benchmark suite runs end to end (speed itself is never asserted in tests)."""

import json
from pathlib import Path

import pytest
import torch

from tests import prestarted
from tests.conftest import TINY

PROJECT = Path(__file__).resolve().parents[1]


def test_the_floor_trains_the_frameworks_default_model():
    """The plain loop (benchmarks/plain_loop.py) is written with torch.nn alone; it must stay the default VAE."""
    from benchmarks.plain_loop import mlp_vae
    from vae.models import VAE

    def layers(net):
        return [(type(m).__name__, tuple(p.shape for p in m.parameters())) for m in net.modules() if not m._modules]

    plain, framework = mlp_vae(), VAE()
    assert layers(plain[0]) == layers(framework.encoder) and layers(plain[1]) == layers(framework.decoder)
    z = torch.zeros(3, framework.latent_dim)
    assert plain[1](z).shape == framework.decoder(z).shape == (3, 1, 28, 28)


def timings(floor: float, training: float, whole: float, fixed: float = 4.0, repeats: int = 5) -> dict:
    """Synthetic (t_1, t_5) of each row: a fixed cost and 1 or 5 epochs of the given seconds, a little noise."""
    rows = {"P": floor, "T": training, "A": whole}
    noise = [0.01 * (i - repeats // 2) for i in range(repeats)]  # centred: the median repeat has none
    return {row: [(fixed + e + n, fixed + 5 * e - n) for n in noise] for row, e in rows.items()}


def test_whole_process_ratios_are_taken_per_repeat_and_consistent_figures_pass():
    from benchmarks.whole_process import consistency_problems, summarize

    rows = summarize(timings(floor=2.0, training=2.1, whole=2.3), short=1, long=5)
    assert rows["P"]["vs_floor"] == 1.0 and rows["T"]["s_per_epoch"] == pytest.approx(2.1)
    assert rows["A"]["vs_floor"] == pytest.approx(1.15) and len(rows["A"]["vs_floor_per_repeat"]) == 5
    assert rows["T"]["fixed_s"] == pytest.approx(4.0, abs=0.05)
    low, high = rows["A"]["vs_floor_range"]
    assert low < 1.15 < high  # the noise of the synthetic repeats shows in the spread
    assert consistency_problems(rows) == []


def test_a_whole_epoch_cheaper_than_its_training_batches_is_refused():
    from benchmarks.whole_process import consistency_problems, summarize

    problems = consistency_problems(summarize(timings(floor=2.0, training=2.4, whole=2.2), short=1, long=5))
    assert len(problems) == 1 and "would cost less than its training batches alone (T, 1.20x)" in problems[0]
    assert "(A, 1.10x the floor)" in problems[0]


def test_a_long_process_no_slower_than_the_short_one_gives_no_epoch():
    from benchmarks.whole_process import consistency_problems, summarize

    times = timings(floor=2.0, training=2.1, whole=2.3)
    times["P"][2] = (9.0, 8.5)  # a slow spell during the short process of the third repeat
    problems = consistency_problems(summarize(times, short=1, long=5))
    assert problems == ["(P): the long process was not slower than the short one in repeat(s) [3]"]


def test_row_d_reads_each_visual_callback_s_seconds_from_the_profiler_table_of_a_real_run(mnist_root, tmp_path):
    """whole_process.py's row (D): the simple profiler's table, as a tiny ``train.py`` prints it, gives every visual
    callback's seconds after validation (the gpu_check dry run leaves row (D) out, as the GPU run does)."""
    from benchmarks.whole_process import picture_command, profiled_picture_seconds
    from vae.callbacks.base import VisualCallback

    command = picture_command([t for t in TINY if not t.startswith("trainer.max_epochs")], mnist_root, tmp_path, 1)
    done = prestarted.run(command, timeout=300, check=True)
    seconds = profiled_picture_seconds(done.stdout + done.stderr)
    # the project's callbacks (this process may hold a test's own subclass too, which the run did not have)
    ours = {cls.__name__ for cls in VisualCallback.__subclasses__() if cls.__module__.startswith("vae.")}
    assert ours <= set(seconds) and all(seconds[name] > 0 for name in ours), seconds  # each after the validation


def test_row_d_gives_the_pictures_seconds_an_epoch_and_their_share_of_the_default_epoch():
    from benchmarks.whole_process import pictures_summary

    # two repeats of a 1-epoch and a 3-epoch process: 0.5 s of pictures an epoch, their first draw 0.2 s more
    pictures = [({"A": 0.4, "B": 0.3}, {"A": 1.2, "B": 0.5}), ({"A": 0.4, "B": 0.3}, {"A": 1.2, "B": 0.5})]
    summary = pictures_summary(pictures, short=1, long=3, epoch_s=5.0)
    assert summary["s_per_epoch"] == pytest.approx(0.5) and summary["share_of_epoch"] == pytest.approx(0.1)
    assert summary["first_draw_extra_s"] == pytest.approx(0.2)
    assert summary["s_per_epoch_by_callback"] == pytest.approx({"A": 0.4, "B": 0.1})


@pytest.mark.slow
def test_the_gpu_check_runs_every_step_dry_on_the_cpu(tmp_path, capsys):
    """``python -m benchmarks.gpu_check --dry-run``: the GPU script's steps, tiny, on this CPU (CUDA parts skipped),
    train_speed.py's four rows among them. The script runs in this process and its steps that are the project's
    scripts are forked from one that has imported the project (tests/prestarted.py: 5 of the 16 interpreters the dry
    run starts, 14 of its 115 s on a 2-core CPU); the processes they time, and the pytest step, start afresh."""
    from benchmarks import gpu_check

    code = gpu_check.main(["--dry-run", "--out", str(tmp_path)], popen=prestarted.popen)
    log = (tmp_path / "gpu_check.log").read_text() if (tmp_path / "gpu_check.log").exists() else ""
    assert code == 0, capsys.readouterr().out + log[-4000:]
    steps = json.loads((tmp_path / "gpu_check.json").read_text())["steps"]
    speed = steps["train_speed"]["results"]
    rows = speed["training"]["mlp"]
    assert set(rows) == {"a", "b", "c", "d"}
    # the framework's rows train the split (80 of the 120 generated images, 40 held out), the plain loops the file
    assert rows["a"]["images_per_epoch"] == rows["b"]["images_per_epoch"] == 80
    assert rows["c"]["images_per_epoch"] == rows["d"]["images_per_epoch"] == 120
    assert rows["d"]["time_vs_d"] == 1.0 and all(r["images_per_s"] > 0 for r in rows.values())
    assert speed["iw_nll"]["finite"] and speed["iw_nll"]["k"] == 20
    assert "| mlp | (a) framework, tensor path |" in log
    whole = steps["whole_process"]["results"]
    assert set(whole["rows"]) == {"P", "T", "A"} and whole["rows"]["P"]["vs_floor"] == 1.0
    assert "pictures" not in whole and steps["nll_k5000"]["results"]
