"""What a client did, counted by each of its parts as it goes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["ClientStats"]


@dataclass
class ClientStats:
    """What the client did: requests sent, tokens taken, retries by reason."""

    requests: int = 0
    grants: int = 0
    refreshes: int = 0
    clock_corrections: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    error_codes: Counter[int] = field(default_factory=Counter)
