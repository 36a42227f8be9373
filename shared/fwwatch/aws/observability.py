"""The one place that owns the functions' Logger and Metrics.

No Tracer: Powertools' Tracer needs the X-Ray SDK, in maintenance since 2026-02-25 and out
of support from 2027-02-25, and was the largest single cost of a cold start. Lambda's active
tracing (``Tracing: Active`` in template.yaml) still records every invocation's segments
without an SDK in the function.
"""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics

__all__ = ["logger", "metrics"]

logger = Logger(service="fwwatch")
metrics = Metrics(namespace="fwwatch", service="fwwatch")

# botocore's wire logs hold request and answer bodies (secret values, the shared token) and
# its signer the session token: never let them through, whatever the root logger's level.
for _wire in ("botocore.endpoint", "botocore.parsers", "botocore.auth", "botocore.hooks"):
    logging.getLogger(_wire).setLevel(logging.INFO)
