"""llp (LossLandscapeProbe): multi-fidelity hyperparameter search for PyTorch models.

The public entry points live in submodules so that ``import llp`` stays fast:

- :mod:`llp.space` -- search spaces (float, int, categorical, conditional).
- :mod:`llp.data` -- nested, stratified fidelity subsets and a held-out validation split.
- :mod:`llp.training` -- training one configuration at one fidelity, with learning curves.
- :mod:`llp.landscape` -- loss-landscape sharpness and curvature probes.
- :mod:`llp.search` -- ask/tell schedulers: random search, successive halving, Hyperband.
- :mod:`llp.runner` -- drives a scheduler, reports progress.
- :mod:`llp.two_tier_probing` -- :class:`TwoTierProbing`, successive halving for PyTorch.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
