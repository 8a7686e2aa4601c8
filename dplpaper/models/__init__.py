"""Process-based models: differentiable HBV, a VIC-style legacy model and its LSTM surrogate."""
from dplpaper.models.base import ParameterTable, ParamSpec, ProcessModel

__all__ = ["ParameterTable", "ParamSpec", "ProcessModel"]
