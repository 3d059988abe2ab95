"""The option space of a run and a pairwise covering set of it: ``python -m tests.matrix`` prints the set.

Every pair of option values that some valid run can hold appears in at least one run of the set.
A run is valid when it composes (an option that does not exist for a model, such as
``model.mc_samples`` for an auto-encoder, cannot be asked for) and validation accepts it; the
combinations validation refuses are listed apart (``REFUSED``) and tested to be refused.
Multi-process runs cost several times a single-process one, so the greedy choice counts each of
their new pairs for less and the set holds no more of them than it needs.
"""

import itertools
from collections.abc import Iterator

# option: values. The first value of each is the default of train.py.
FACTORS: dict[str, list] = {
    "model": ["vae", "ae", "gan"],
    "backbone": ["mlp", "conv"],
    "likelihood": ["bernoulli", "gaussian", "gaussian_sigmoid"],
    "binarize": ["none", "static", "dynamic"],
    "normalize": [False, True],
    "image_size": [28, 32],
    "loader": ["tensor", "torchvision"],
    "precision": ["32-true", "bf16-mixed", "bf16-true"],
    "processes": [1, 2],
    "evaluation": ["none", "cheap", "all"],
    "sampling": ["single", "mc2_warmup"],  # mc2_warmup: 2 samples of z per image, KL warm-up over half an epoch
}

# Each option value as train.py overrides.
OVERRIDES = {
    "model": lambda v: [f"model={v}"],
    "backbone": lambda v: [f"backbone={v}"],
    "likelihood": lambda v: (
        ["likelihood=gaussian", "likelihood.sigmoid_mean=true"] if v == "gaussian_sigmoid" else [f"likelihood={v}"]
    ),
    "binarize": lambda v: [f"data.binarize={v}"],
    "normalize": lambda v: [f"data.normalize={str(v).lower()}"],
    "image_size": lambda v: [f"data.image_size={v}"],
    "loader": lambda v: [f"data.loader={v}"],
    "precision": lambda v: [f"trainer.precision={v}"],
    "processes": lambda v: ["trainer=ddp", "trainer.devices=2"] if v > 1 else [],
    "evaluation": lambda v: [f"evaluation.metrics={v}"],
    "sampling": lambda v: ["model.mc_samples=2", "model.kl_warmup_epochs=0.5"] if v == "mc2_warmup" else [],
}

# Combinations that validation refuses, each with a word of the reason its message must contain.
REFUSED: list[tuple[dict, str]] = [
    ({"likelihood": "bernoulli", "normalize": True}, "data.normalize"),
    ({"likelihood": "gaussian_sigmoid", "normalize": True}, "likelihood.sigmoid_mean"),
    ({"model": "gan", "normalize": True}, "model=gan"),
]


def composes(run: dict) -> bool:
    """Whether the run can be asked for, and means what it says: mc_samples and warm-up exist only for
    the VAE, and a GAN has no likelihood (it ignores the group: only the default stands for it)."""
    sampling = run["sampling"] == "single" or run["model"] == "vae"
    return sampling and (run["model"] != "gan" or run["likelihood"] == "bernoulli")


def refused(run: dict) -> bool:
    """Whether validation refuses the run (one of ``REFUSED`` is part of it)."""
    return any(all(run[key] == value for key, value in combination.items()) for combination, _ in REFUSED)


def valid_runs() -> Iterator[dict]:
    """Every run that composes and that validation accepts."""
    for values in itertools.product(*FACTORS.values()):
        run = dict(zip(FACTORS, values, strict=True))
        if composes(run) and not refused(run):
            yield run


def pairs(run: dict) -> set[tuple]:
    """The pairs of option values ``run`` holds, as ((option, value), (option, value))."""
    return set(itertools.combinations(run.items(), 2))


def covering_set(multi_process_cost: float = 3.0) -> list[dict]:
    """A pairwise covering set of the valid runs, chosen greedily (deterministic: ties go to the first run)."""
    candidates = [(run, pairs(run)) for run in valid_runs()]
    uncovered = set().union(*(held for _, held in candidates))
    chosen = []
    while uncovered:
        run, held = max(
            candidates, key=lambda c: len(c[1] & uncovered) / (multi_process_cost if c[0]["processes"] > 1 else 1)
        )
        chosen.append(run)
        uncovered -= held
    return chosen


def overrides(run: dict) -> list[str]:
    """train.py overrides of ``run``."""
    return [o for option, value in run.items() for o in OVERRIDES[option](value)]


def name(run: dict) -> str:
    """A short id: the values that differ from the defaults."""
    changed = [f"{key}={value}" for key, value in run.items() if value != FACTORS[key][0]]
    return " ".join(changed) or "defaults"


if __name__ == "__main__":
    runs = covering_set()
    required = set().union(*(pairs(run) for run in valid_runs()))
    print(f"{len(runs)} runs ({sum(r['processes'] > 1 for r in runs)} multi-process), {len(required)} pairs covered")
    for run in runs:
        print(" ".join(overrides(run)))
