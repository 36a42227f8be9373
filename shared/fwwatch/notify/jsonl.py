"""News appended to a JSON-lines file, one group per line (for scripts and log shippers)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from ..events import EventGroup
from ..render import render_json
from .base import NotifyError

__all__ = ["JsonLinesNotifier"]


class JsonLinesNotifier:
    """Appends ``render_json(group)`` as one line, flushed to disk."""

    name = "jsonl"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def send(self, group: EventGroup) -> None:
        await asyncio.to_thread(self._append, render_json(group))

    async def send_test(self) -> None:
        await asyncio.to_thread(self._append, {"type": "test", "summary": "fwwatch test"})

    def _append(self, record: dict[str, Any]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(record, ensure_ascii=False) + "\n")
                file.flush()
                os.fsync(file.fileno())
        except OSError as exc:
            raise NotifyError(f"cannot append to {self.path}: {exc.strerror}") from None
