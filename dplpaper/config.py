"""Experiment configs: overrides from the command line and the resolved config as plain data.

A case's config is a dataclass (e.g. :class:`dplpaper.experiments.streamflow.Case2Config`) whose
sections are dataclasses too (``dpl``, ``dynamic``, ``lstm``, ``vic``). Two helpers make every
config one schema:

- :func:`apply_overrides` sets fields from ``"key=value"`` strings, dotted for sections
  (``dpl.nmul=4``, ``regionalization_refine_max_steps=6000``) — ``dplpaper run ... --set KEY=VALUE``;
- :func:`config_dict` turns a config into JSON-ready data, written beside every run's results
  (``provenance_*.json`` key ``"config"``), so a run can be read back and repeated.
"""
from __future__ import annotations

import ast
import dataclasses
from typing import Any, Iterable

__all__ = ["apply_overrides", "config_dict", "parse_value"]


def parse_value(text: str, current: Any, key: str) -> Any:
    """``text`` as the type of the field's ``current`` value.

    Numbers, booleans (``true``/``false``), ``none`` and Python literals (``(0, 1)``, ``[1, 2]``,
    ``{'8': ('a', 'b')}``) are read with :func:`ast.literal_eval`; a bare word is a string. An int
    is accepted for a float field; a list or a comma-separated text for a tuple field (whose items stay
    strings where the field's are, e.g. attribute-set labels ``8,27``). Anything
    else that does not match the field's type raises ``ValueError`` naming ``key``.
    """
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if isinstance(current, bool) or low in ("true", "false"):
        if low in ("true", "1", "yes"):
            value = True
        elif low in ("false", "0", "no"):
            value = False
        else:
            raise ValueError(f"--set {key}: expected true or false, got {text!r}")
        if current is not None and not isinstance(current, bool):
            raise ValueError(f"--set {key}: a boolean given for a {type(current).__name__} field")
        return value
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        value = text.strip()  # a bare word: a string
    if current is None:
        return tuple(value) if isinstance(value, list) else value
    if isinstance(current, tuple):
        if isinstance(value, str):
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        if current and all(isinstance(c, str) for c in current):  # a tuple of names stays names ("8,27")
            value = tuple(str(v) for v in value)
        return value
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, (int, float, str, dict)) and not isinstance(value, type(current)):
        raise ValueError(f"--set {key}: expected a {type(current).__name__}, got {text!r}")
    return value


def _fields(obj) -> list[str]:
    return [f.name for f in dataclasses.fields(obj)]


def apply_overrides(cfg, assignments: Iterable[str]):
    """Set fields of the dataclass ``cfg`` from ``"key=value"`` strings (dotted keys reach into
    sections: ``dpl.epochs=50``); returns ``cfg`` (changed in place; section dataclasses are
    replaced, so their checks in ``__post_init__`` run again).

    Raises ``ValueError`` naming the key and listing the valid ones for an unknown key, a section
    that is ``None`` in this mode, or a value of the wrong type.
    """
    for item in assignments:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        path = key.split(".")
        # walk down to the section that holds the last name
        chain = [cfg]
        for name in path[:-1]:
            obj = chain[-1]
            if not dataclasses.is_dataclass(obj) or name not in _fields(obj):
                raise ValueError(f"--set {key}: {name!r} is not a section of {type(obj).__name__}; "
                                 f"valid: {', '.join(_fields(obj))}")
            sub = getattr(obj, name)
            if not dataclasses.is_dataclass(sub):
                raise ValueError(f"--set {key}: section {name!r} is {sub!r} in this mode (nothing to set)")
            chain.append(sub)
        obj, name = chain[-1], path[-1]
        if name not in _fields(obj):
            raise ValueError(f"--set {key}: {type(obj).__name__} has no field {name!r}; "
                             f"valid: {', '.join(_fields(obj))}")
        if dataclasses.is_dataclass(getattr(obj, name)):
            raise ValueError(f"--set {key}: {name!r} is a section; set its fields ({name}.FIELD=VALUE)")
        new = parse_value(text, getattr(obj, name), key)
        # rebuild the sections from the bottom up (dataclasses.replace runs __post_init__'s checks)
        for parent, pname in zip(reversed(chain[:-1]), reversed(path[:-1])):
            obj = dataclasses.replace(obj, **{name: new})
            new, name, obj = obj, pname, parent
        setattr(obj, name, new)
    return cfg


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def config_dict(cfg) -> dict:
    """The config ``cfg`` (a dataclass with dataclass sections) as JSON-ready nested dicts, with its
    class name under ``"_class"``."""
    if not dataclasses.is_dataclass(cfg):
        raise TypeError(f"config_dict expects a dataclass config, got {type(cfg).__name__}")
    return {"_class": type(cfg).__name__, **_plain(cfg)}
