"""dplpaper: differentiable parameter learning (dPL) for hydrological models, as a reproducible paper package."""
__version__ = "0.1.0"
