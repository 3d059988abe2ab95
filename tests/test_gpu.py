"""What only a GPU can check: no host sync in a training step, bf16-mixed, compile and channels_last on the conv
model, the tensor data path on the device. Skipped without CUDA; benchmarks/gpu_check.sh runs them."""

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from tests.conftest import compose_train
from vae.nets import ConvDecoder, ConvEncoder
from vae.training import train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
GPU = ["trainer.accelerator=gpu", "trainer.devices=1"]


def run(overrides: list[str], folder, mnist_root) -> None:
    try:
        train(compose_train([*GPU, *overrides], folder, mnist_root))
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.parametrize("warmup", [0, 2])
def test_a_training_step_makes_no_host_sync(warmup, mnist_root, tmp_path):
    # Between steps that reach the loggers (log_every_n_steps apart), a step must not wait for the GPU:
    # tests.helpers.ErrorOnSync turns CUDA's sync check to "error" around every step from the third on.
    sync = ["+callbacks.sync._target_=tests.helpers.ErrorOnSync", "+callbacks.sync.from_step=2"]
    run([f"model.kl_warmup_epochs={warmup}", "trainer.log_every_n_steps=1000", *sync], tmp_path, mnist_root)


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.precision=bf16-mixed"],
        ["backbone=conv", "model.compile=true", "model.channels_last=true"],
        ["backbone=conv", "trainer.precision=bf16-mixed", "model.channels_last=true"],
        ["data.loader=tensor", "data.binarize=dynamic"],
    ],
    ids=" ".join,
)
def test_a_run_completes_on_the_gpu(overrides, mnist_root, tmp_path):
    run(overrides, tmp_path, mnist_root)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_conv_nets_keep_their_shapes_in_channels_last():
    encoder = ConvEncoder(in_shape=(1, 28, 28), out_dim=16).cuda().to(memory_format=torch.channels_last)
    decoder = ConvDecoder(latent_dim=8, out_shape=(1, 28, 28)).cuda().to(memory_format=torch.channels_last)
    x = torch.rand(4, 1, 28, 28, device="cuda").to(memory_format=torch.channels_last)
    assert encoder(x).shape == (4, 16) and decoder(torch.randn(4, 8, device="cuda")).shape == (4, 1, 28, 28)
