"""News printed on the terminal (always on in local mode)."""

from __future__ import annotations

import sys
from typing import TextIO

from ..events import EventGroup
from ..render import TEST_SUBJECT, render_subject, summary_sentence
from ..safe_text import strip_controls

__all__ = ["ConsoleNotifier"]


class ConsoleNotifier:
    """Prints a headline and the devices of each group.

    Nothing from outside moves the cursor: names come without control characters or
    escape sequences, each on its own line.
    """

    name = "console"

    def __init__(self, stream: TextIO | None = None, *, max_devices: int = 10) -> None:
        self._stream = stream
        self._max_devices = max_devices

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    async def send(self, group: EventGroup) -> None:
        lines = [f"[{group.type.value}] {render_subject(group)}", f"  {summary_sentence(group)}"]
        for event in group.events[: self._max_devices]:
            name = strip_controls(event.device_name or "")
            lines.append(f"    {strip_controls(event.device_id)}" + (f" ({name})" if name else ""))
        if group.device_count > self._max_devices:
            lines.append(f"    ... and {group.device_count - self._max_devices} more")
        self.stream.write(strip_controls("\n".join(lines), keep_newlines=True) + "\n")
        self.stream.flush()

    async def send_test(self) -> None:
        self.stream.write(f"[test] {TEST_SUBJECT}: the console notifier works.\n")
        self.stream.flush()
