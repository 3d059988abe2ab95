"""The project's Hydra sweepers: a grid and an Optuna search that both continue a sweep run again into its
folder (``hydra.sweep.dir``) instead of starting it over. Hydra finds plugins in the ``hydra_plugins``
namespace; ``conf/hydra/sweeper/`` selects them."""
