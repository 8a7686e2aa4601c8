"""The registry of differentiable process models: one name per model, found by the contract tests.

A model module registers its class with ``@register_model("name")``; :func:`model_names` imports
every module of :mod:`dplpaper.models` first (``pkgutil``), so a new model is one new file (plus its
test) and is picked up by ``tests/test_model_contract.py`` without touching any list.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

__all__ = ["register_model", "model_names", "get_model", "model_class"]

_MODELS: dict[str, type] = {}


def register_model(name: str) -> Callable[[type], type]:
    """Class decorator: register a :class:`~dplpaper.models.base.ProcessModel` under ``name``."""
    def deco(cls: type) -> type:
        from dplpaper.models.base import ProcessModel
        if not (isinstance(cls, type) and issubclass(cls, ProcessModel)):
            raise TypeError(f"register_model({name!r}): {cls!r} is not a ProcessModel subclass")
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"a model named {name!r} is already registered ({_MODELS[name].__name__})")
        _MODELS[name] = cls
        cls.registry_name = name
        return cls
    return deco


def _discover() -> None:
    import dplpaper.models as pkg
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_") and info.name != "registry":
            importlib.import_module(f"dplpaper.models.{info.name}")


def model_names() -> list[str]:
    """Names of every registered differentiable model (all model modules imported first)."""
    _discover()
    return sorted(_MODELS)


def model_class(name: str) -> type:
    _discover()
    if name not in _MODELS:
        raise KeyError(f"no process model named {name!r}; registered: {sorted(_MODELS)}")
    return _MODELS[name]


def get_model(name: str, **kwargs):
    """An instance of the model registered as ``name`` (``kwargs`` go to its constructor)."""
    return model_class(name)(**kwargs)
