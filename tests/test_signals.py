"""A run stopped by SIGTERM (as SLURM stops a job) saves where it was mid-epoch and continues as if unbroken."""

import torch

from vae.data.tensors import ImageTensors, TensorLoader


def ids(n: int) -> ImageTensors:
    """Images whose pixels all hold their own index, so a served batch tells which images it holds."""
    return ImageTensors(torch.arange(n, dtype=torch.uint8).view(n, 1, 1).expand(n, 28, 28), torch.arange(n))


def served(batches) -> list[list[int]]:
    return [[int(i) for i in (x[:, 0, 0, 0] * 255).round()] for x, _ in batches]


def test_a_restored_loader_skips_the_batches_its_epoch_had_served_then_serves_whole_epochs():
    def loader() -> TensorLoader:
        return TensorLoader(ids(50), batch_size=8, shuffle=True, seed=3)

    stopped, unbroken = loader(), loader()
    stopped.sampler.set_epoch(2)  # as Lightning does at the start of each epoch
    unbroken.sampler.set_epoch(2)
    whole = served(unbroken)
    batches = iter(stopped)
    first = served([next(batches), next(batches), next(batches)])
    state = stopped.state_dict()
    assert first == whole[:3] and state == {"served": 3}

    resumed = loader()
    resumed.load_state_dict(state)
    # Lightning makes the iterator before it sets the epoch: the order must be drawn lazily
    batches = iter(resumed)
    resumed.sampler.set_epoch(2)
    assert served(batches) == whole[3:]
    assert len(resumed) == 7 and resumed.state_dict() == {"served": 7}  # ceil(50 / 8): the whole epoch
    for loader_ in (resumed, unbroken):
        loader_.sampler.set_epoch(3)
    assert served(resumed) == served(unbroken) and len(served(resumed)) == 7  # the next epoch is whole


def test_a_state_restored_but_not_iterated_is_not_carried_into_the_next_epoch():
    # A checkpoint saved at validation end (check_val_every_n_epoch > 1) holds a finished epoch that
    # Lightning restores but does not iterate: the iterator it made then is dropped, and the next one
    # serves the next epoch whole.
    resumed = TensorLoader(ids(20), batch_size=8)
    resumed.load_state_dict({"served": 3})
    iter(resumed)
    assert len(served(resumed)) == 3
