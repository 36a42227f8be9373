"""Secrets Manager, read through Powertools Parameters: the one way functions read secrets."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["SecretReader", "powertools_secret"]

SecretReader = Callable[[str], Any]


def powertools_secret(name: str) -> Any:
    """A secret's value through Powertools Parameters (JSON decoded, cached five minutes)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(name, max_age=300)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
