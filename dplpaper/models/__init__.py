"""Process-based models: differentiable HBV and GR4J (registered by name, ``model_names()``), a VIC-style
legacy model and its LSTM surrogate."""
from dplpaper.models.base import ParameterTable, ParamSpec, ProcessModel
from dplpaper.models.hbv import HBV
from dplpaper.models.vicwb import VICStyleModel
from dplpaper.models.surrogate import LSTMSurrogate
from dplpaper.models.gr4j import GR4J
from dplpaper.models.registry import get_model, model_names, register_model

__all__ = ["ParameterTable", "ParamSpec", "ProcessModel", "HBV", "GR4J", "VICStyleModel", "LSTMSurrogate",
           "get_model", "model_names", "register_model"]
