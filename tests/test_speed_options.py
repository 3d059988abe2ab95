"""The speed options change how fast a run goes, never its results."""

import collections
import json
import traceback

import hydra
import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import compose_train
from tests.idx import write_mnist
from vae.callbacks import EpochTimer
from vae.callbacks.hooks import BATCH_HOOKS
from vae.models import compile as compile_module
from vae.training import build, train
from vae.utils import load_model


def fit(cfg):
    """Fits without logger, checkpoints or pictures; returns the model and its final metrics."""
    L.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model, img_shape=datamodule.img_shape, _convert_="all")
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=[], logger=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=datamodule)
    return model, {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_compile_falls_back_to_eager_with_a_warning(make_cfg, monkeypatch):
    monkeypatch.setattr(compile_module, "compile_problem", lambda device: "no compiler in this test")
    with pytest.warns(UserWarning, match="model.compile=true is ignored.*no compiler in this test"):
        model, metrics = fit(make_cfg("model.compile=true"))
    assert model.encoder._compiled_call_impl is None  # nn.Module.compile() sets it
    assert metrics["val/loss"] > 0


@pytest.mark.slow
def test_compiled_backbones_give_the_eager_numbers(make_cfg):
    eager_model, eager = fit(make_cfg("trainer.max_epochs=2"))
    compiled_model, compiled = fit(make_cfg("trainer.max_epochs=2", "model.compile=true"))
    assert compiled_model.encoder._compiled_call_impl is not None
    assert eager_model.encoder._compiled_call_impl is None
    assert compiled["val/loss"] == pytest.approx(eager["val/loss"], rel=1e-4)
    # compiling in place keeps the parameter names, so checkpoints stay interchangeable
    assert set(compiled_model.state_dict()) == set(eager_model.state_dict())


def test_channels_last_changes_the_layout_not_the_numbers(make_cfg):
    _, plain = fit(make_cfg("backbone=conv"))
    model, fast = fit(make_cfg("backbone=conv", "model.channels_last=true"))
    assert model.encoder.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert fast["val/loss"] == pytest.approx(plain["val/loss"], rel=1e-4)


def test_a_channels_last_model_comes_back_from_its_checkpoint_in_that_layout(make_cfg, tmp_path):
    """The evaluation after training runs in the layout training ran in: on a CPU the conv decoder
    decodes about twice as fast in it, and the NLL is mostly decoding."""
    cfg = make_cfg("backbone=conv", "model.channels_last=true")
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")  # as @hydra.main does for every run
    train(cfg)
    model = load_model(tmp_path / "checkpoints" / "last.ckpt")
    assert model.decoder.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert model.encoder.net[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_no_host_reads_of_tensors_in_the_training_steps(tmp_path):
    """A GPU run must not wait for the device every step: nothing may read a tensor's value
    (.item(), float(), bool(), ...) per step. Counted over fits of 20 and 40 steps: a per-step read
    shows as a difference. Adam's own step counters are left out: PyTorch keeps them on the CPU."""
    write_mnist(tmp_path / "data", n_train=700)
    reads = collections.Counter()
    originals = {name: getattr(torch.Tensor, name) for name in ("item", "tolist", "__float__", "__int__", "__bool__")}

    def counting(name):
        def read(self, *args, **kwargs):
            if "torch/optim/" not in traceback.extract_stack(limit=2)[0].filename:
                reads[name] += 1
            return originals[name](self, *args, **kwargs)

        return read

    totals = {}
    try:
        for name in originals:
            setattr(torch.Tensor, name, counting(name))
        for steps in (20, 40):
            overrides = ["data.val_size=40", f"trainer.limit_train_batches={steps}", "trainer.log_every_n_steps=50"]
            reads.clear()
            train(compose_train(overrides, tmp_path / str(steps), tmp_path / "data"))
            totals[steps] = dict(reads)
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
    assert totals[40] == totals[20]
    assert json.loads((tmp_path / "40" / "metrics.json").read_text())["status"] == "completed"


def test_no_gpu_check_per_step_goes_through_nvml(tmp_path, monkeypatch):
    """Adam asks ``torch.cuda.is_available()`` at every step; with the variable Lightning sets on import, torch
    asks NVML each time (its library looked for again, 37 us on a CPU without one). Counted over
    fits of 10 and 20 steps: a per-step NVML query shows as a difference."""
    write_mnist(tmp_path / "data", n_train=400)
    queries = collections.Counter()
    nvml_count = torch.cuda._raw_device_count_nvml

    def counted() -> int:
        queries["nvml"] += 1
        return nvml_count()

    monkeypatch.setattr(torch.cuda, "_raw_device_count_nvml", counted)
    totals = {}
    for steps in (10, 20):
        monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # as importing Lightning leaves it, for each run
        queries.clear()
        overrides = ["data.val_size=40", f"trainer.limit_train_batches={steps}", "test=false", "logger=csv"]
        train(compose_train(overrides, tmp_path / str(steps), tmp_path / "data"))
        totals[steps] = queries["nvml"]
    assert totals[20] == totals[10]


def test_callbacks_are_dispatched_only_the_batch_hooks_they_define(make_cfg):
    """Lightning calls every per-batch hook on every callback; the empty ones are taken out of its loop
    (vae.callbacks.hooks), Lightning's own callbacks' too, and the hooks a callback defines stay."""
    datamodule, model, trainer = build(make_cfg("+trainer.profiler=simple"))
    trainer.fit(model, datamodule=datamodule)
    called = {action.removeprefix("[Callback]") for action in trainer.profiler.recorded_durations}
    for defined in ("TrainingChecks.on_train_batch_start", "TrainingChecks.on_train_batch_end"):
        assert defined in called
    assert "EpochTimer.on_train_batch_end" in called and "TQDMProgressBar.on_train_batch_end" in called
    assert "Reconstructions.on_validation_end" in called  # the epoch hooks are untouched
    for callback in ("Reconstructions", "ModelSummary", "ValidationScores"):  # they define no batch hook
        assert not {f"{callback}.{hook}" for hook in BATCH_HOOKS} & called
    assert not {f"EpochTimer.{hook}" for hook in BATCH_HOOKS if hook != "on_train_batch_end"} & called


def test_epoch_timer_counts_the_training_images_of_each_epoch(make_cfg, tmp_path):
    cfg = make_cfg("trainer.max_epochs=2")
    train(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert metrics["perf/images_per_s"] > 0 and metrics["perf/train_epoch_s"] > 0
    datamodule, model, trainer = build(cfg)
    timer = next(cb for cb in trainer.callbacks if isinstance(cb, EpochTimer))
    trainer.fit(model, datamodule=datamodule)
    assert [epoch["images"] for epoch in timer.epochs] == [48.0, 48.0]  # 3 batches of 16 each epoch
    for epoch in timer.epochs:
        assert epoch["images_per_s"] == pytest.approx(48 / epoch["train_epoch_s"])
