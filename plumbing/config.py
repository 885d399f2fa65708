"""Frozen-dataclass configuration with named profiles (`paper`, `small`, `ci`).

Every method and task declares one frozen dataclass and a dict of profiles; a run resolves a
profile, applies `key=value` overrides, and stores the result (``to_dict``) with its record,
identified by ``config_hash``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from typing import Any, Mapping, TypeVar

T = TypeVar("T")

PROFILES = ("paper", "small", "ci")


def to_dict(config: Any) -> dict:
    """JSON-ready dict of a (nested) config dataclass."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def config_hash(config: Any) -> str:
    """Stable sha256 of a config dataclass or a JSON-ready dict (key order independent)."""
    data = to_dict(config) if dataclasses.is_dataclass(config) else config
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def _coerce(value: Any, target_type: Any, where: str) -> Any:
    """Turn an override (often a CLI string) into the field's declared type."""
    origin = typing.get_origin(target_type)
    if isinstance(value, str):
        if target_type is bool:
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{where}: expected a boolean, got {value!r}")
        if target_type in (int, float):
            try:
                return target_type(value)
            except ValueError:
                raise ValueError(f"{where}: expected {target_type.__name__}, got {value!r}") from None
        if origin is tuple or target_type is tuple:
            parts = [p for p in value.replace("+", ",").split(",") if p]
            args = typing.get_args(target_type)
            elem = args[0] if args else str
            return tuple(_coerce(p, elem, where) for p in parts)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


# Range rules for overridden numbers, by field name (profiles are trusted, overrides are not).
# Everything numeric must be finite; most must be >= 0 (a learning rate of 0 is allowed: it
# freezes the weights, which the regression tests use).
UNIT_INTERVAL = ("dropout", "prob", "theta", "aug_p", "cross_start", "crop_min", "pad_ratio")
POSITIVE = {"batch_size", "accumulation", "window", "dilation", "stride", "max_frames", "log_every",
            "checkpoint_every", "nhead", "d_model", "d_att", "layers", "hidden", "hidden_channels", "frames",
            "observe", "predict", "max_clips", "schedule_horizon", "nce_temperature", "eps", "topk",
            "speed_min", "speed_max", "regression_scale", "crops_per_sequence", "broken_segments",
            "train_frame_stride", "horizons", "steps"}
SIGNED = {"mask_value"}
SEED_MAX = 2**32 - 1


def check_value(key: str, value: Any, where: str) -> None:
    """Raise ValueError when an overridden number is non-finite or outside its field's range."""
    if isinstance(value, tuple):
        for v in value:
            check_value(key, v, where)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not math.isfinite(value):
        raise ValueError(f"{where}: {value!r} is not a finite number")
    if key == "seed" and not 0 <= value <= SEED_MAX:
        raise ValueError(f"{where}: a seed must lie in 0..{SEED_MAX}, got {value!r}")
    if any(part in key for part in UNIT_INTERVAL) and not 0 <= value <= 1:
        raise ValueError(f"{where}: must lie in [0, 1], got {value!r}")
    if key in POSITIVE and value <= 0:
        raise ValueError(f"{where}: must be > 0, got {value!r}")
    if key not in SIGNED and value < 0:
        raise ValueError(f"{where}: must be >= 0, got {value!r}")


def apply_overrides(config: T, overrides: Mapping[str, Any]) -> T:
    """`dataclasses.replace` with dotted keys into nested dataclasses and type coercion.

    Unknown keys raise ValueError naming the key and the valid ones.
    """
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    hints = typing.get_type_hints(type(config))
    fields = {f.name for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for key, value in flat.items():
        if key not in fields:
            raise ValueError(
                f"unknown setting {key!r} for {type(config).__name__}; valid: {', '.join(sorted(fields))}")
        where = f"{type(config).__name__}.{key}"
        if dataclasses.is_dataclass(getattr(config, key)):
            raise ValueError(f"{where} is a group of settings, not one value; set its keys one by one, "
                             f"e.g. {key}.{dataclasses.fields(getattr(config, key))[0].name}=...")
        changes[key] = _coerce(value, hints[key], where)
        check_value(key, changes[key], where)
    for head, sub in nested.items():
        if head not in fields or not dataclasses.is_dataclass(getattr(config, head)):
            raise ValueError(f"unknown setting group {head!r} for {type(config).__name__}")
        changes[head] = apply_overrides(getattr(config, head), sub)
    return dataclasses.replace(config, **changes)


def resolve_profile(profiles: Mapping[str, T], profile: str, overrides: Mapping[str, Any] | None = None) -> T:
    """Pick a named profile and apply overrides."""
    if profile not in profiles:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(profiles)}")
    return apply_overrides(profiles[profile], overrides or {})
