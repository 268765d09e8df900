"""Offline metrics; each registers itself under its name (see ``base.register``)."""

from __future__ import annotations

from gates.metrics.base import Metric, MetricCase, Score, get_metric, metric_names

__all__ = ["Metric", "MetricCase", "Score", "get_metric", "metric_names"]
