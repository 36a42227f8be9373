"""The one place that owns the functions' Logger, Metrics and Tracer."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer

__all__ = ["logger", "metrics", "tracer"]

logger = Logger(service="fwwatch")
metrics = Metrics(namespace="fwwatch", service="fwwatch")
tracer = Tracer(service="fwwatch")

# botocore's wire logs hold request and answer bodies (secret values, the shared token) and
# its signer the session token: never let them through, whatever the root logger's level.
for _wire in ("botocore.endpoint", "botocore.parsers", "botocore.auth", "botocore.hooks"):
    logging.getLogger(_wire).setLevel(logging.INFO)
