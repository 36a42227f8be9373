"""The one event-loop rule of every function.

A handler is synchronous. Its async work runs on the container's event loop, the rule
Powertools' batch processor follows: under Lambda (``LAMBDA_TASK_ROOT`` set) one loop is made
on first use and kept from one invocation to the next (Lambda freezes and thaws it; a loop
closed by ``asyncio.run`` would break the next invocation); elsewhere (tests, scripts) each
call gets a fresh loop, as ``asyncio.run`` gives it. Nothing async outlives an invocation:
whatever it started is finished or cancelled before the handler returns.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Coroutine
from typing import Any

__all__ = ["container_loop", "on_lambda", "run_async"]


def on_lambda() -> bool:
    """Whether this process is a Lambda container (the runtime sets ``LAMBDA_TASK_ROOT``)."""
    return bool(os.environ.get("LAMBDA_TASK_ROOT"))


def container_loop() -> asyncio.AbstractEventLoop:
    """The container's event loop: the thread's current one, or a new one made current."""
    with warnings.catch_warnings():
        # Python warns when get_event_loop() has to make the loop: that is the cold start.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_event_loop()
        except RuntimeError:
            loop = None
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    return loop


def run_async[T](work: Coroutine[Any, Any, T]) -> T:
    """Run one invocation's async work to its end, by the rule above."""
    if not on_lambda():
        return asyncio.run(work)
    return container_loop().run_until_complete(work)
