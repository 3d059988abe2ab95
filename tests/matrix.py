"""The option space of a run and a pairwise covering set of it: ``python -m tests.matrix`` prints the set.

Every pair of option values that some run can hold appears in at least one run of the set. Whether a run
can hold a pair is not written here: the real config decides. A run is asked of Hydra (it composes, or a
key does not exist for that model, such as ``model.mc_samples`` for an auto-encoder), then of
``vae.config.validate`` (it accepts the run, or refuses it with a message), and each option is read back
from the composed config (a GAN has no likelihood and no optimizer group of its own: those options do not
apply to it, and it holds no pair of them). The pairs validation refuses are kept apart, with its message,
and tested to be refused.

Every option of every config group, every choice of the schemas and every switch of the composed configs
is either a factor below or excluded with its reason (``EXCLUDED``); ``tests/test_matrix.py`` fails on one
that is neither. Multi-process runs cost several in-process ones, so a run has several processes only where
it is started from a pair that needs them, and then covers all it can. The set's cost is estimated with the
seconds measured for each kind of run and kept within ``BUDGET_S``.
"""

import copy
import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf, open_dict

from vae.config import ConfigError, validate
from vae.config.schema import SCHEMAS
from vae.utils.compose import CONF_DIR

ABSENT = object()


def _get(cfg: DictConfig, key: str):
    """The value of ``key``, or None where the composed config has no such key (the option does not apply)."""
    value = OmegaConf.select(cfg, key, default=ABSENT)
    return None if value is ABSENT else value


@dataclass(frozen=True)
class Factor:
    """One option of a run: its values (the first is train.py's default), how a run asks for each, how each
    is read back from the composed config (None: the option does not apply), and what of the config's
    options, choices and switches it covers."""

    name: str
    values: tuple
    ask: Callable[[object, dict], list[str]]  # (value, the run's other values) -> overrides
    read: Callable[[DictConfig, dict], object]  # (config, Hydra's group choices) -> value or None
    covers: tuple[str, ...] = field(default=())


def _sampling(value, run) -> list[str]:
    """The model's own samples of z (a VAE's one, an IWAE's k=5), or other counts under a KL warm-up."""
    if run["model"] == "iwae":
        return ["model.k=3", "model.kl_warmup_epochs=0.5"]
    return ["model.mc_samples=2", "model.kl_warmup_epochs=0.5"]  # an AE's or a GAN's: no such key


def _read_sampling(cfg, choices):
    if _get(cfg, "model.kl_warmup_epochs") is None:
        return None
    return "several_warmup" if _get(cfg, "model.kl_warmup_epochs") else "own"


PRIOR_OPTIONS = {  # the VampPrior with a few pseudo-inputs, started from training images or at random
    "standard": [],
    "vamp": ["model.prior=vamp", "model.pseudo_inputs=8"],
    "vamp_random": ["model.prior=vamp", "model.pseudo_inputs=8", "model.pseudo_inputs_init=random"],
}


def _read_prior(cfg, choices):
    prior = _get(cfg, "model.prior")
    if prior is None or prior == "standard":
        return prior
    return "vamp" if _get(cfg, "model.pseudo_inputs_init") == "data" else "vamp_random"


def _read_likelihood(cfg, choices):
    target = _get(cfg, "model.likelihood._target_")
    if target is None:
        return None
    if target.endswith("Bernoulli"):
        return "bernoulli"
    return "gaussian_sigmoid" if _get(cfg, "model.likelihood.sigmoid_mean") else "gaussian"


EVALUATIONS = {  # evaluation.metrics, sample_pixels, noise_relative
    "none": ("none", "mean", False),
    "cheap": ("cheap", "mean", False),
    "all": ("all", "mean", False),
    "all_sampled_relative": ("all", "sampled", True),
}
OPTIMIZERS = {"torch.optim.Adam": "adam", "torch.optim.AdamW": "adamw", "torch.optim.SGD": "sgd"}
SCHEDULERS = {None: "none", "torch.optim.lr_scheduler.ReduceLROnPlateau": "plateau"}
SCHEDULERS["torch.optim.lr_scheduler.CosineAnnealingLR"] = "cosine"


def _optimizer(value, run) -> list[str]:
    """SGD's step is not scaled to the gradient, as Adam's is: on the tests' images of uniform random pixels
    (binarized and normalized: half of them at 2.8) its default lr diverges, on MNIST it trains (2 epochs of
    likelihood=gaussian data.binarize=static data.normalize=true trainer.precision=bf16-true optimizer=sgd)."""
    return ["optimizer=sgd", "optimizer.lr=1e-4"] if value == "sgd" else [f"optimizer={value}"]


def _value(key: str) -> Callable:
    return lambda cfg, choices: _get(cfg, key)


def _switch(key: str) -> Factor:
    return Factor(
        key.rsplit(".", 1)[-1], (False, True), lambda v, run: [f"{key}={str(v).lower()}"], _value(key), (key,)
    )


def _choice(group: str, values: tuple, extra: tuple[str, ...] = ()) -> Factor:
    return Factor(
        group, values, lambda v, run: [f"{group}={v}"], lambda cfg, choices: choices.get(group),
        tuple(f"{group}={v}" for v in values) + extra,
    )  # fmt: skip


def _backbone(value, run) -> list[str]:
    """The conv backbone at its default depth and strides, narrower: a tiny run's cost is its convolutions, bf16
    ones on a CPU above all (one VampPrior run of conv, bf16-mixed, 32-pixel images on a 2-vCPU EPYC: 6.4 s at the
    default widths, 3.5 s at these), while what the matrix tests (that the options combine) does not depend on the
    widths. The default widths train in tests/test_train.py (experiment=linear_vs_conv_bce backbone=conv) and
    tests/test_nets.py."""
    return ["backbone=conv", "backbone.channels=[8,16,16,16]"] if value == "conv" else [f"backbone={value}"]


def _scheduler(cfg, choices):
    scheduler = _get(cfg, "model.scheduler") if "scheduler" in cfg.model else ABSENT
    if scheduler is ABSENT:
        return None  # a GAN has no schedule
    return SCHEDULERS.get(scheduler["_target_"] if scheduler else None)


FACTORS: list[Factor] = [
    _choice("model", ("vae", "iwae", "hvae", "ae", "gan")),
    Factor("sampling", ("own", "several_warmup"), _sampling, _read_sampling),
    Factor("prior", tuple(PRIOR_OPTIONS), lambda v, run: PRIOR_OPTIONS[v], _read_prior,
           ("model.prior=standard", "model.prior=vamp", "model.pseudo_inputs_init=data",
            "model.pseudo_inputs_init=random")),
    _choice("data", ("mnist", "fashion_mnist")),
    Factor("backbone", ("mlp", "conv"), _backbone, lambda cfg, choices: choices.get("backbone"),
           ("backbone=mlp", "backbone=conv")),
    Factor(
        "likelihood", ("bernoulli", "gaussian", "gaussian_sigmoid"),
        lambda v, run: ["likelihood=gaussian", "likelihood.sigmoid_mean=true"] if v == "gaussian_sigmoid"
        else [f"likelihood={v}"],
        _read_likelihood, ("likelihood=bernoulli", "likelihood=gaussian", "likelihood.sigmoid_mean"),
    ),
    Factor("binarize", ("none", "static", "dynamic"), lambda v, run: [f"data.binarize={v}"], _value("data.binarize"),
           tuple(f"data.binarize={v}" for v in ("none", "static", "dynamic"))),
    _switch("data.normalize"),
    Factor("image_size", (28, 32), lambda v, run: [f"data.image_size={v}"], _value("data.image_size")),
    Factor("loader", ("tensor", "torchvision"), lambda v, run: [f"data.loader={v}"], _value("data.loader"),
           ("data.loader=tensor", "data.loader=torchvision")),
    Factor("precision", ("32-true", "bf16-mixed", "bf16-true"), lambda v, run: [f"trainer.precision={v}"],
           _value("trainer.precision")),
    Factor("processes", (1, 2), lambda v, run: ["trainer=ddp", "trainer.devices=2"] if v > 1 else [],
           lambda cfg, choices: 2 if choices.get("trainer") == "ddp" else 1, ("trainer=default", "trainer=ddp")),
    Factor(
        "evaluation", tuple(EVALUATIONS),
        lambda v, run: [f"evaluation.metrics={EVALUATIONS[v][0]}", f"evaluation.sample_pixels={EVALUATIONS[v][1]}",
                        f"evaluation.noise_relative={str(EVALUATIONS[v][2]).lower()}"],
        lambda cfg, choices: {s: n for n, s in EVALUATIONS.items()}.get(
            (cfg.evaluation.metrics, cfg.evaluation.sample_pixels, cfg.evaluation.noise_relative)),
        ("evaluation=default", "evaluation.noise_relative",
         *(f"evaluation.metrics={m}" for m in ("none", "cheap", "all")),
         *(f"evaluation.sample_pixels={p}" for p in ("mean", "sampled"))),
    ),
    _switch("model.init_output_bias"),
    _switch("model.channels_last"),
    Factor("optimizer", ("adam", "adamw", "sgd"), _optimizer,
           lambda cfg, choices: OPTIMIZERS.get(_get(cfg, "model.optimizer._target_")),
           ("optimizer=adam", "optimizer=adamw", "optimizer=sgd")),
    Factor("scheduler", ("none", "plateau", "cosine"), lambda v, run: [] if v == "none" else [f"scheduler={v}"],
           _scheduler, ("scheduler=plateau", "scheduler=cosine")),
    _choice("logger", ("tensorboard", "csv", "mlflow", "wandb", "many")),
    Factor("test", (True, False), lambda v, run: [f"test={str(v).lower()}"], _value("test"), ("test",)),
    _switch("trainer.deterministic"),
]  # fmt: skip

# What the matrix leaves out, each with the reason: config group options ("group=option"), the schemas'
# choices ("key=value") and the composed configs' switches ("key"), as tests/test_matrix.py lists them.
EXCLUDED: dict[str, str] = {
    "trainer=gpu": "no GPU here (tests/test_gpu.py runs on a GPU machine)",
    "trainer=cpu": "the default trainer on a machine without a GPU",
    "model.compile": "torch.compile builds C++ for several seconds a model on this CPU; compiled and eager runs give "
    "the same numbers in tests/test_speed_options.py",
    "paths=default": "where files go, not what runs",
    "model/parts=networks": "a part of every model config but the GAN's, not an option of its own",
    "callbacks=default": "every run has it",
    **{f"callbacks={part}": "a part of callbacks=default, which every run has" for part in (
        "early_stopping", "epoch_timer", "model_checkpoint", "model_summary", "progress_bar", "rng_state",
        "training_checks", "visuals")},
    **{f"debug={name}": "a preset of trainer limits; each runs in tests/test_train.py::test_debug_configs_run"
       for name in ("default", "fdr", "limit", "overfit")},
    "hparams_search=optuna": "a search, not a run: tests/test_search.py",
    "hparams_search=optuna_gan": "a search, not a run: tests/test_search.py",
    "hydra=default": "Hydra's folders and logging, the same for every run",
    "hydra/launcher=parallel": "a launcher of sweeps: tests/test_sweeps.py, tests/test_train.py",
    "hydra/launcher=slurm": "a launcher of sweeps on a cluster: tests/test_launchers.py",
    "hydra/sweeper=grid": "the sweeper of every sweep: tests/test_sweeps.py",
    "hydra/sweeper=optuna_search": "the search's sweeper: tests/test_search.py",
    "data.verify=md5": "the tests' tiny generated files are not the official ones; tests/test_integrity.py checks md5",
    "data.verify=header": "what every test run uses (TINY)",
    "data.pin_memory": "pins host memory for a GPU; nothing to pin on this CPU",
    "callbacks.draw_in_background": "the pictures drawn on a thread are byte for byte those drawn inline "
    "(tests/test_drawing.py); a kill with it on resumes exactly (tests/test_resume.py)",
    "callbacks.latent_scatter.plot_3d": "drawn for 3-D codes: tests/test_callbacks.py",
    "callbacks.last_checkpoint.enable_version_counter": "Lightning's file naming, fixed: a resumed run overwrites "
    "last.ckpt, never adds last-v1.ckpt",
    "callbacks.last_checkpoint.save_on_sigterm": "on in every run; SIGTERM at every moment: tests/test_sigterm.py",
    "callbacks.model_checkpoint.auto_insert_metric_name": "Lightning's file naming, fixed (epoch_NNN.ckpt)",
    "logger.mlflow.log_model": "Lightning's upload of checkpoints to MLflow; the project keeps them in the run folder",
    "logger.tensorboard.default_hp_metric": "fixed off: train.py writes the HPARAMS entry itself",
    "logger.wandb.log_model": "Lightning's upload of checkpoints to W&B; the project keeps them in the run folder",
    "logger.wandb.offline": "false logs online, which needs a W&B account and the network; this project's machines "
    "have neither",
    "trainer.enable_model_summary": "fixed off: the callbacks group has the project's own summary",
    **{f"backbone.activation={name}": "one nn.Module for another; each trains both backbones in "
       "tests/test_nets.py::test_every_activation_builds_both_backbones_and_trains_them"
       for name in ("relu", "leaky_relu", "elu", "gelu", "silu", "tanh")},
    **{f"model.link_activation={name}": "one nn.Module for another between the HVAE's layers, as for "
       "backbone.activation" for name in ("relu", "leaky_relu", "elu", "gelu", "silu", "tanh")},
    **{f"experiment={name}": "a study of several runs; each runs at tiny size in "
       "tests/test_train.py::test_every_experiment_config_runs_a_tiny_fit" for name in (
        "ae_vs_vae_kingma", "beta_sweep", "latent_sweep_conv_mse", "linear_vs_conv_bce", "recipe_conv_vae",
        "recipe_hvae", "recipe_hvae_vamp", "recipe_mlp_iwae", "recipe_mlp_vae", "recipe_mlp_vamp", "small_mlp_mse",
        "vae_vs_gan_mlp")},
}  # fmt: skip

# Seconds a run of each kind takes in the suite (2-core CPU, measured with tests/test_matrix.py): an
# in-process run trains, tests, evaluates, then resumes for a second epoch; a 2-process one does not resume
# (DDP runs resume in tests/test_ddp_data.py). The set is chosen to stay within BUDGET_S.
SECONDS = {1: 3.3, 2: 20.0}
BUDGET_S = 215.0  # 200 until data=fashion_mnist joined the factors: it added 3 in-process runs


@dataclass
class Asked:
    """What the config made of a run: the values it holds (read back), or why it cannot be run."""

    held: dict = field(default_factory=dict)
    refusal: str | None = None  # validate's message
    unavailable: str | None = None  # it does not compose, or asks for an option that does not apply


def overrides(run: dict) -> list[str]:
    """train.py overrides of ``run``: of the values other than the defaults (``model`` first)."""
    full = {factor.name: factor.values[0] for factor in FACTORS} | run
    asked = [f for f in FACTORS if full[f.name] not in (None, f.values[0])]  # None: does not apply to the run
    return [o for factor in asked for o in factor.ask(full[factor.name], full)]


def read_back(cfg: DictConfig, choices: dict) -> dict:
    """Each factor's value in a composed config; None where the option does not apply."""
    return {factor.name: factor.read(cfg, choices) for factor in FACTORS}


# Config groups a model reads through interpolations in its own config (``likelihood: ${likelihood}``): an
# option of one of them applies to a model whose config reads it (a GAN reads neither likelihood, optimizer
# nor scheduler), and of the others to every run.
READ_BY_THE_MODEL = ("backbone", "likelihood", "optimizer", "scheduler")


class Oracle:
    """Asks the real config about runs: Hydra composes each (once for each choice of config group options;
    the values are then set as Hydra sets a command line's values, with OmegaConf), validation checks it,
    and every option is read back."""

    def __init__(self, base: list[str]) -> None:
        self.base, self.asked, self.composed, self.parsed, self.current = base, {}, {}, {}, None
        self.parser = OverridesParser.create()
        self.defaults = {factor.name: factor.values[0] for factor in FACTORS}

    def __call__(self, run: dict) -> Asked:
        full = self.defaults | run
        key = tuple(sorted(full.items(), key=str))
        if key not in self.asked:
            self.asked[key] = self._ask(full)
        return self.asked[key]

    def applies(self, model: str, name: str) -> bool:
        """Whether option ``name`` means something for ``model``: the model's config reads the group, and the
        option reads back from the config (a key of the model's schema, such as model.k for an IWAE)."""
        key = ("applies", model, name)
        if key not in self.asked:
            config = self._config(model)
            unresolved = str(OmegaConf.to_container(config.model, resolve=False))
            read = name not in READ_BY_THE_MODEL or "${" + name in unresolved
            self.asked[key] = read and self({"model": model}).held[name] is not None
        return self.asked[key]

    def _parsed(self, full: dict) -> tuple[tuple[str, ...], list]:
        """The run's overrides that choose config group options, and its other overrides, parsed."""
        parsed = []
        for line in overrides(full):
            if line not in self.parsed:
                self.parsed[line] = self.parser.parse_overrides([line])[0]
            parsed.append(self.parsed[line])
        groups = tuple(o.input_line for o in parsed if (CONF_DIR / o.key_or_group).is_dir())
        return groups, [o for o in parsed if o.input_line not in groups]

    def _composed(self, groups: tuple[str, ...]) -> tuple[DictConfig, DictConfig, dict]:
        """The config Hydra composes with these group options (and the base overrides): without its
        ``hydra`` node, with it, and the group choices."""
        if groups not in self.composed:
            whole = compose(config_name="train", return_hydra_config=True, overrides=[*self.base, *groups])
            with open_dict(whole):
                whole.paths.output_dir = whole.hydra.runtime.output_dir = "/nonexistent/run"
            task = copy.deepcopy(whole)
            with open_dict(task):
                del task["hydra"]
            self.composed[groups] = (task, whole, dict(whole.hydra.runtime.choices))
        return self.composed[groups]

    def _config(self, model: str) -> DictConfig:
        return self._composed(self._parsed(self.defaults | {"model": model})[0])[0]

    def _ask(self, full: dict) -> Asked:
        groups, values = self._parsed(full)
        task, whole, choices = self._composed(groups)
        try:
            config = with_values(task, values)
        except Exception as err:  # a key that does not exist for this model: Hydra refuses the override too
            return Asked(unavailable=f"does not compose: {str(err).splitlines()[0]}")
        if self.current is not whole:  # ${hydra:...} values read it
            HydraConfig.instance().set_config(whole)
            self.current = whole
        held = read_back(config, choices)
        ignored = [
            name for name, value in full.items()
            if (held[name] is None and value != self.defaults[name]) or held[name] not in (None, value)
        ]  # fmt: skip
        if ignored:
            return Asked(held, unavailable=f"{', '.join(ignored)} does not apply (reads {[held[n] for n in ignored]})")
        try:
            validate(config)
        except ConfigError as err:
            return Asked(held, refusal="; ".join(err.problems))
        return Asked(held)


def with_values(cfg: DictConfig, values: list[Override]) -> DictConfig:
    """A copy of ``cfg`` with ``values`` (parsed overrides of values, not of config groups) set as Hydra sets a
    command line's: each merged with OmegaConf. A second composition for values alone would cost half a second."""
    config = copy.deepcopy(cfg)
    for override in values:
        OmegaConf.update(config, override.key_or_group, override.value(), merge=True)
    return config


def pairs(held: dict) -> set[tuple]:
    """The pairs of option values a run holds (options that do not apply to it left out)."""
    return set(itertools.combinations(((k, v) for k, v in held.items() if v is not None), 2))


def covering_set(oracle: Oracle) -> tuple[list[dict], dict[tuple, str], dict[tuple, str]]:
    """A pairwise covering set of the runs the config accepts, built a run at a time (deterministic): each from
    the first pair not yet covered, its other options chosen among those that apply to its model to cover
    the most new pairs, then mended one option at a time until validation accepts it.

    Returns:
        The runs (each option's value as read back, None where it does not apply); the pairs validation
        refuses in every run, each with its message; the pairs no run can hold, each with the reason.
    """
    values = {factor.name: factor.values for factor in FACTORS}
    order = {(f.name, v): i for i, (f, v) in enumerate((f, v) for f in FACTORS for v in f.values)}
    uncovered = {
        ((a, va), (b, vb)) for a, b in itertools.combinations(values, 2) for va in values[a] for vb in values[b]
    }
    runs, refused, impossible = [], {}, {}
    while uncovered:
        seed = min(uncovered, key=lambda pair: (order[pair[0]], order[pair[1]]))
        models = [m for m in values["model"] if dict(seed).get("model", m) == m]
        models = [m for m in models if all(name == "model" or oracle.applies(m, name) for name, _ in seed)]
        run = asked = None
        if models:
            model = max(models, key=lambda m: (_worth(uncovered, dict(seed), "model", m), -models.index(m)))
            run = _complete({**dict(seed), "model": model}, values, uncovered, oracle)
            asked = oracle(run)
            if asked.refusal or asked.unavailable:
                run, asked = _mend(run, seed, values, oracle)
        if run is None:  # no run holds the seed: why, as the seed alone with the defaults says
            alone = oracle(dict(seed))
            why = alone.refusal or alone.unavailable or "no model reads both options"
            (refused if alone.refusal else impossible)[seed] = why
            uncovered.discard(seed)
            continue
        if seed not in pairs(asked.held):  # the default of an option that does not apply (a GAN's likelihood)
            impossible[seed] = f"{dict(seed)}: an option that does not apply to the model"
            uncovered.discard(seed)
            continue
        runs.append(asked.held)
        uncovered -= pairs(asked.held)
    return runs, refused, impossible


def _worth(uncovered: set, run: dict, name: str, value) -> int:
    """How many uncovered pairs ``name=value`` adds to ``run``."""
    return sum(((name, value), other) in uncovered or (other, (name, value)) in uncovered for other in run.items())


def _complete(run: dict, values: dict, uncovered: set, oracle: Oracle) -> dict:
    """``run`` with every other option chosen to cover the most uncovered pairs (ties: the earlier value, the
    default first); an option that does not apply to its model keeps its default. Several processes only
    where the seed asks for them: a multi-process run costs several others, so each covers all it can."""
    for name, options in values.items():
        if name in run:
            continue
        applying = options if oracle.applies(run["model"], name) else options[:1]
        if name == "processes":
            applying = options[:1]
        run[name] = max(applying, key=lambda v: (_worth(uncovered, run, name, v), -applying.index(v)))
    return run


def _mend(run: dict, seed: tuple, values: dict, oracle: Oracle) -> tuple[dict | None, Asked | None]:
    """The first run validation accepts that differs from ``run`` in one option other than the seed's
    (options set by value first: they cost no composition); None when there is none."""
    fixed = {name for name, _ in seed} | {"model"}
    free = sorted((n for n in values if n not in fixed), key=lambda n: (CONF_DIR / n).is_dir())
    for name in free:
        for value in values[name]:
            if value != run[name] and oracle.applies(run["model"], name):
                asked = oracle({**run, name: value})
                if not (asked.refusal or asked.unavailable):
                    return {**run, name: value}, asked
    return None, None


def estimated_seconds(runs: list[dict]) -> float:
    return sum(SECONDS[run["processes"]] for run in runs)


def build(base: list[str]) -> tuple[list[dict], dict[tuple, str], dict[tuple, str]]:
    """The covering set, the refused pairs and the impossible ones, asked of the config in ``conf/`` with
    ``base`` overrides."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            return covering_set(Oracle(base))
    finally:
        GlobalHydra.instance().clear()


def name(run: dict) -> str:
    """A short id: the values that differ from the defaults."""
    defaults = {factor.name: factor.values[0] for factor in FACTORS}
    changed = [f"{key}={value}" for key, value in run.items() if value is not None and value != defaults[key]]
    return " ".join(changed) or "defaults"


def config_options() -> set[str]:
    """Every option of every config group (``group=option``, ``hydra/launcher=...`` included)."""
    options = set()
    for folder in sorted(p for p in CONF_DIR.rglob("*") if p.is_dir()):
        group = folder.relative_to(CONF_DIR).as_posix()
        options |= {f"{group}={path.stem}" for path in folder.glob("*.yaml")}
    return options


def schema_choices() -> set[str]:
    """Every value of every choice the schemas declare (``key=value``): enums, and strings with ``choices``."""
    choices = set()
    for group, options in SCHEMAS.items():
        for schema in options.values():
            for f in dataclasses.fields(schema):
                if isinstance(f.type, type) and issubclass(f.type, Enum):
                    choices |= {f"{group}.{f.name}={member.value}" for member in f.type}
                choices |= {f"{group}.{f.name}={value}" for value in f.metadata.get("choices", ())}
    return choices


def switches(cfg: dict, prefix: str = "") -> set[str]:
    """Every key of a composed config whose value is true or false (Hydra's ``_partial_`` left out)."""
    found = set()
    for key, value in cfg.items():
        if isinstance(value, dict):
            found |= switches(value, f"{prefix}{key}.")
        elif isinstance(value, bool) and key != "_partial_":
            found.add(f"{prefix}{key}")
    return found


if __name__ == "__main__":
    from tests.conftest import TINY

    runs, refused, impossible = build([f"data.root={Path('/nonexistent')}", *TINY])
    multi = sum(run["processes"] > 1 for run in runs)
    covered = len(set().union(*map(pairs, runs)))
    print(f"{len(runs)} runs ({multi} multi-process) cover {covered} pairs, about {estimated_seconds(runs):.0f} s")
    print(f"{len(impossible)} pairs no run can hold; refused pairs:")
    for pair, message in refused.items():
        print(f"  {dict(pair)}: {message}")
    for run in runs:
        print(name(run))
