"""Methods behind one interface (`methods.base.SkeletonMethod`) and a name -> factory registry.

    >>> import methods
    >>> methods.available()
    ['crossclr', 'hitrs', 'mcc']
    >>> model = methods.create("hitrs", profile="ci", stream="joint", levels="F+C+V")

A factory takes ``(profile, **overrides)`` and returns a ``SkeletonMethod`` whose ``config``
is the resolved frozen dataclass. Importing a method's module registers it.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from .base import SkeletonMethod

_FACTORIES: dict[str, Callable[..., SkeletonMethod]] = {}
_CONFIGS: dict[str, Callable[..., Any]] = {}
_BUILTIN = ("hitrs", "mcc", "crossclr")


def register(name: str, config_factory: Callable[..., Any]):
    """Decorator: ``@register("name", config_factory)`` on a ``config -> SkeletonMethod`` class.

    ``config_factory(profile, **overrides)`` returns the resolved frozen config.
    """
    def wrap(cls):
        old = _FACTORIES.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"method name {name!r} is already registered by {old.__module__}.{old.__qualname__}; "
                             f"give {cls.__module__}.{cls.__qualname__} another name")
        cls.name = name
        _FACTORIES[name] = cls
        _CONFIGS[name] = config_factory
        return cls
    return wrap


def unregister(name: str) -> None:
    """Remove a registered method (tests and plugins that register one for a while)."""
    _FACTORIES.pop(name, None)
    _CONFIGS.pop(name, None)


def _load_builtins() -> None:
    for mod in _BUILTIN:
        if mod not in _FACTORIES:
            try:
                importlib.import_module(f"methods.{mod}")
            except ModuleNotFoundError as err:  # a method still being written
                if err.name != f"methods.{mod}":
                    raise


def available() -> list[str]:
    """Registered method names."""
    _load_builtins()
    return sorted(_FACTORIES)


def classes() -> list[type]:
    """The registered classes, in the order of ``available()``."""
    return [_FACTORIES[n] for n in available()]


def make_config(name: str, profile: str = "ci", **overrides: Any) -> Any:
    """The resolved frozen config of method ``name`` (profile + overrides)."""
    _load_builtins()
    if name not in _CONFIGS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(available())}")
    return _CONFIGS[name](profile, **overrides)


def method_class(name: str) -> type[SkeletonMethod]:
    """The registered class of ``name`` (its declared variant axes, without building a model)."""
    _load_builtins()
    if name not in _FACTORIES:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(available())}")
    return _FACTORIES[name]


def create(name: str, profile: str = "ci", config: Any = None, **overrides: Any) -> SkeletonMethod:
    """Build method ``name`` from a profile and overrides, or from a resolved ``config``."""
    _load_builtins()
    if name not in _FACTORIES:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(available())}")
    if config is None:
        config = make_config(name, profile, **overrides)
    return _FACTORIES[name](config)


__all__ = ["SkeletonMethod", "available", "classes", "create", "make_config", "method_class", "register", "unregister"]
