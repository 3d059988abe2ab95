"""What in-place activations (``vae.nets.activations.IN_PLACE``) do to a VAE's speed on this machine.

For the conv net of ``experiment=recipe_conv_vae`` (channels-last, as the recipe runs it) and the default MLP,
each with its activations in place (as the nets build them) and switched back out of place:
  - decoding: the importance-weighted NLL (``--k`` samples) of the first ``--images`` test images, which is
    nearly all decoding (what the k=5000 evaluation spends its time on);
  - a training step: forward, loss and backward on a batch of 100 images, ``--steps`` of them.
The cases run interleaved, ``--repeats`` times; each speed-up is the median of the ratios within a repeat.

    python -m benchmarks.inplace_activations --out benchmarks/results/cpu-inplace-activations.json
"""

import argparse
import json
import time
from pathlib import Path

import torch
from torchvision import datasets

from benchmarks.channels_last import conv_model, paired_speedups
from benchmarks.options import add_data_options, data_folders
from benchmarks.train_speed import iw_nll_throughput, provenance
from vae.nets.activations import ACTIVATIONS, IN_PLACE

NETS = {  # name -> Hydra overrides
    "recipe_conv_vae's conv net": ["experiment=recipe_conv_vae"],
    "default MLP": [],
}


def with_activations(model: torch.nn.Module, inplace: bool) -> torch.nn.Module:
    for module in model.modules():
        if isinstance(module, tuple(ACTIVATIONS[name] for name in IN_PLACE)):
            module.inplace = inplace
    return model


def step_seconds(model, x: torch.Tensor, steps: int) -> float:
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        model.loss_terms(x)["loss"].backward()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_options(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=500, help="importance samples of the NLL timed")
    parser.add_argument("--images", type=int, default=20, help="test images of the NLL timed")
    parser.add_argument("--steps", type=int, default=20, help="training steps timed")
    parser.add_argument("--out", type=Path, required=True, help="JSON file of the results")
    args = parser.parse_args()

    device = torch.device(args.device)
    _, source = data_folders(args)
    x = datasets.MNIST(source, train=False).data[:100].unsqueeze(1).float().div(255).bernoulli().to(device)
    x = x.contiguous(memory_format=torch.channels_last)  # as the conv recipe's steps feed it; the MLP flattens it
    seconds = {(net, inplace): {"decode": [], "step": []} for net in NETS for inplace in (False, True)}
    for repeat in range(args.repeats):
        for (net, inplace), runs in seconds.items():
            print(f"{net}, in place={inplace}, run {repeat + 1}/{args.repeats} ...", flush=True)
            model = with_activations(conv_model(NETS[net]), inplace).to(device)
            nll = iw_nll_throughput(source, device, args.k, args.images, args.images, 10_000, model)
            runs["decode"].append(nll["seconds"] / (args.images * args.k))
            runs["step"].append(step_seconds(model, x, args.steps))

    results = {}
    rates, sides = {"decode": "decodes_per_s", "step": "steps_per_s"}, ("out_of_place", "in_place")
    for net in NETS:
        results[net] = paired_speedups(seconds[(net, False)], seconds[(net, True)], rates, sides)
        print(f"{net}: decoding {results[net]['decode_speedup']:.2f}x, a step {results[net]['step_speedup']:.2f}x")
    report = provenance(device) | {"repeats": args.repeats, "k": args.k, "steps": args.steps, "nets": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
