"""Checks of ``data.dataset``: a dataset described in config alone must be one the framework can serve and measure."""

from omegaconf import DictConfig, OmegaConf


def dataset_problems(cfg: DictConfig) -> list[str]:
    """Class names, pixel statistics, and the reference classifier where a metric or the GAN reads the images."""
    dataset = OmegaConf.select(cfg, "data.dataset")
    if dataset is None:
        return []
    problems = []
    classes = list(dataset.classes)
    if not 2 <= len(classes) <= 10 or len(set(classes)) != len(classes) or not all(classes):
        # tab10 colours the classes in the latent pictures, one colour each
        problems.append(f"data.dataset.classes={classes}: must be 2 to 10 distinct, non-empty class names")
    if not 0 < dataset.mean < 1:
        problems.append(f"data.dataset.mean={dataset.mean}: must be the pixels' mean in (0, 1)")
    if not dataset.std > 0:
        problems.append(f"data.dataset.std={dataset.std}: must be the pixels' deviation, > 0")
    is_gan = str(OmegaConf.select(cfg, "model._target_", default="")).endswith("GAN")
    if is_gan or OmegaConf.select(cfg, "evaluation.metrics", default="none") != "none":
        from vae.metrics.classifier import classifier_problem  # torch-heavy, and only needed here

        if problem := classifier_problem(dataset):
            problems.append(problem)
    return problems
