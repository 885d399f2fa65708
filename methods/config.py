"""Frozen-dataclass configuration with named profiles (`paper`, `small`, `ci`).

Every method and task declares one frozen dataclass and a dict of profiles; a run resolves a
profile, applies `key=value` overrides, and stores the result (``to_dict``) with its record.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
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
        changes[key] = _coerce(value, hints[key], f"{type(config).__name__}.{key}")
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


@dataclasses.dataclass(frozen=True)
class PretrainLoop:
    """How the generic pre-training engine drives any method (one per method config, field
    name ``loop``). Effective batch = ``batch_size * accumulation`` whatever the world size
    (under DDP each rank takes ``batch_size / world`` of every micro-batch)."""

    steps: int = 30_000          # optimizer steps
    batch_size: int = 64         # samples per micro-batch
    accumulation: int = 4        # micro-batches per optimizer step
    grad_clip: float = 1.0       # max grad norm; 0 disables
    max_frames: int = 300        # longer sequences are cut
    log_every: int = 50          # optimizer steps between log lines
    checkpoint_every: int = 1000 # optimizer steps between resumable checkpoints
    batching: str = "uniform"    # "uniform" random batches (both references) | "bucket" by length

    def __post_init__(self):
        if self.batching not in ("uniform", "bucket"):
            raise ValueError(f"loop.batching: {self.batching!r} unknown; choose uniform (the references' "
                             "shuffled batches) or bucket (length-grouped, less padding)")
