"""Downstream tasks: one module each, all driven through the SkeletonMethod interface.

Every task takes a ``TaskContext`` and returns a ``TaskOutput`` (metrics, outputs kept for the
three-stream combination, artifacts to write).
"""
from .common import TaskContext, TaskOutput  # noqa: F401

TASKS = ("recognition", "detection", "prediction")
ENSEMBLE_TASKS = ("recognition", "detection")   # tasks whose module has combine_streams (the '-3s' rows)
