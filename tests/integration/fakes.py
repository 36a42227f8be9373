"""Fakes the integration tests share: a notifier that records, a Slack webhook and a
heartbeat monitor on loopback."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiohttp import web
from botocore import xform_name
from botocore.exceptions import ClientError

from fwwatch.events import EventGroup
from fwwatch.notify import NotifyError


class RecordingNotifier:
    """A notifier that keeps every group it delivered, and fails while told to."""

    def __init__(self, name: str = "recording") -> None:
        self.name = name
        self.groups: list[EventGroup] = []
        self.failures_left = 0

    async def send(self, group: EventGroup) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise NotifyError("failing on purpose")
        self.groups.append(group)

    async def send_test(self) -> None:
        return None

    def delivered(self) -> list[tuple[str, str | None, int, str, list[str]]]:
        """Each group as (type, product, channel, version, device IDs), in delivery order."""
        return [
            (g.type.value, g.product_id, g.channel, g.version, [e.device_id for e in g.events])
            for g in self.groups
        ]


class FakeSlack:
    """An incoming webhook: answers from a script (200 once it runs out), records the posts.

    A post answered 200 is in ``received`` from the moment it arrives, as a message is in a
    Slack channel whether or not its answer reaches the sender: ``delays`` (seconds, one per
    request, in order) make the answers late, ``hold_posts`` (request numbers, from 1) keep
    them open until :meth:`release`; ``holding`` is set once a held request has arrived.
    """

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.received: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.delays: list[float] = []
        self.hold_posts: set[int] = set()
        self.holding = threading.Event()
        self._released = threading.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.times.append(time.monotonic())
        number = len(self.times)
        status, headers = self.script.pop(0) if self.script else (200, {})
        delay = self.delays.pop(0) if self.delays else 0.0
        if status == 200:
            self.received.append(await request.json())
            if number in self.hold_posts:
                self.holding.set()
                await asyncio.get_running_loop().run_in_executor(None, self._released.wait)
            await asyncio.sleep(delay)
            return web.Response(text="ok")
        await asyncio.sleep(delay)
        return web.Response(
            status=status, text="rate_limited" if status == 429 else "oops", headers=headers
        )

    def release(self) -> None:
        """Answer the held requests (and any later one that would be held)."""
        self._released.set()

    def texts(self) -> list[str]:
        """The ``text`` of each post received, in order."""
        return [str(post["text"]) for post in self.received]


@contextmanager
def serving_fake_slack(path: str, port: int = 0) -> Iterator[FakeSlack]:
    """A :class:`FakeSlack` at ``http://127.0.0.1:<port><path>``, served from its own thread.

    Any JSON webhook can be played by it (an Apprise ``json://`` URL's, say); ``port`` 0 is
    a free one.
    """
    fake = FakeSlack()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post(path, fake.handle)
    # No access log: it would hold the path (the webhook's secret) in the tests' logs.
    runner = web.AppRunner(app, access_log=None)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", port)
        loop.run_until_complete(site.start())
        fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(5), "the fake Slack did not start"
    try:
        yield fake
    finally:
        fake.release()
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


class HeartbeatMonitor:
    """A monitor in the healthchecks.io style: records each request, answers ``status``.

    ``requests`` holds ``(method, path)`` in arrival order; ``received`` is set by the first.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.status = 200
        self.received = threading.Event()
        self.url = ""


@contextmanager
def serving_heartbeat_monitor(path: str) -> Iterator[HeartbeatMonitor]:
    """A :class:`HeartbeatMonitor` at ``http://127.0.0.1:<port><path>``, in its own thread."""
    monitor = HeartbeatMonitor()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            monitor.requests.append((self.command, self.path))
            monitor.received.set()
            body = b"OK" if monitor.status == 200 else b"not found"
            self.send_response(monitor.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # the path is the check's key: kept out of the tests' output

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    monitor.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield monitor
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def failing_calls(client: Any, operation: str, code: str, times: int) -> list[int]:
    """Make the next ``times`` calls of ``operation`` fail as AWS would, through botocore.

    Returns a one-item list: how many injected failures are left.
    """
    left = [times]

    def fail(**_: Any) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

    client.meta.events.register(f"before-call.*.{operation}", fail)
    return left


def calls_applied_twice(
    client: Any, operation: str, wanted: Callable[[dict[str, Any]], bool], times: int = 1
) -> list[int]:
    """Make the next ``times`` calls of ``operation`` whose parameters ``wanted`` picks go
    through twice, as when AWS applies a call, its answer is lost on the way back and
    botocore sends it again: the caller sees the second call's answer (or error).

    Returns a one-item list: how many calls are left to repeat.
    """
    left = [times]
    repeating = [False]
    method = getattr(client, xform_name(operation))

    def apply_first(params: dict[str, Any], **_: Any) -> None:
        if repeating[0] or left[0] <= 0 or not wanted(params):
            return
        left[0] -= 1
        repeating[0] = True
        try:
            method(**params)
        finally:
            repeating[0] = False

    client.meta.events.register(f"provide-client-params.*.{operation}", apply_first)
    return left
