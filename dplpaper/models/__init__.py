"""Process-based models: differentiable HBV, a VIC-style legacy model and its LSTM surrogate."""
from dplpaper.models.base import ParameterTable, ParamSpec

__all__ = ["ParameterTable", "ParamSpec"]
