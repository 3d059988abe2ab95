# `make help` lists the targets. `make train` and `make test` set everything up on first use.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install train sweep report test lint tensorboard clean slurm-start slurm-stop

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install -e ".[dev,mlflow,wandb]"
	touch $@

install: $(VENV)/.installed ## create .venv and install the package with its dev, mlflow and wandb extras

train: install ## train the default VAE; more overrides with ARGS="model=ae backbone=conv"
	$(PYTHON) train.py $(ARGS)

sweep: install ## a small grid: VAE and AE, MLP and conv, latent dims 2 and 10 (8 runs)
	$(PYTHON) train.py -m model=vae,ae backbone=mlp,conv model.latent_dim=2,10 $(ARGS)

report: install ## tables and plots of a sweep: make report SWEEP=logs/multirun/<time>
	$(PYTHON) -m vae.report $(SWEEP)

test: install ## run the test suite (8.5-9 minutes on a 2-vCPU Intel Xeon, 1-2 more with a SLURM cluster up; 13-15 on a 2-vCPU AMD EPYC Zen 3 at an earlier commit, about 4 more)
	$(PYTHON) -m pytest $(ARGS)

lint: install ## ruff: lint and formatting
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

slurm-start: ## a one-node SLURM cluster of this machine (root: installs slurm-wlm and munge when missing)
	scripts/local_slurm.sh start

slurm-stop: ## stop the daemons slurm-start started
	scripts/local_slurm.sh stop

tensorboard: install ## TensorBoard over every run and sweep under logs/
	$(VENV)/bin/tensorboard --logdir logs

clean: ## remove run outputs and caches (keeps .venv and data/)
	rm -rf logs .cache .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
