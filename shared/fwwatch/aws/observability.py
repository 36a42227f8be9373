"""The one place that owns the functions' Logger, Metrics and Tracer."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

__all__ = ["logger", "metrics", "tracer"]

logger = Logger(service="fwwatch")
metrics = Metrics(namespace="fwwatch", service="fwwatch")
tracer = Tracer(service="fwwatch")
