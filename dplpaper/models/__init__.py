"""Process-based models: differentiable HBV, a VIC-style legacy model and its LSTM surrogate."""
from dplpaper.models.base import ParameterTable, ParamSpec, ProcessModel
from dplpaper.models.hbv import HBV
from dplpaper.models.vicwb import VICStyleModel
from dplpaper.models.surrogate import LSTMSurrogate

__all__ = ["ParameterTable", "ParamSpec", "ProcessModel", "HBV", "VICStyleModel", "LSTMSurrogate"]
