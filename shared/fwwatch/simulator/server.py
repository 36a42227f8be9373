"""An aiohttp server in front of a SimulatedCloud, with an admin API under /_sim/.

Delays are awaited with asyncio.sleep, so thousands of slow requests in flight cost only
their sockets. Binds to loopback by default; the admin API refuses non-loopback peers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fwwatch.simulator.cloud import SimulatedCloud, UnknownDeviceError
from fwwatch.simulator.faults import CallKind, MalformedKind

_JSON_TYPE = "application/json;charset=UTF-8"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Release(_Body):
    product_id: str
    channel: int
    version: str


class _Install(_Body):
    device_id: str
    channel: int | None = None


class _Failed(_Body):
    device_id: str
    channel: int | None = None
    status: int = 4


class _DeviceError(_Body):
    device_id: str
    code: int | None


class _ErrorFault(_Body):
    code: int
    count: int | None = Field(default=1, ge=1)
    path_contains: str | None = None
    msg: str | None = None
    every: int = Field(default=1, ge=1)
    for_s: float | None = Field(default=None, gt=0)
    calls: CallKind = "business"


class _HttpFault(_Body):
    status: int = Field(ge=100, le=599)
    count: int | None = Field(default=1, ge=1)
    path_contains: str | None = None
    retry_after: float | str | None = None
    every: int = Field(default=1, ge=1)
    for_s: float | None = Field(default=None, gt=0)


class _DripFault(_Body):
    interval_s: float = Field(default=0.1, gt=0)
    count: int = Field(default=1, ge=1)
    path_contains: str | None = None


class _BombFault(_Body):
    inflated_bytes: int = Field(default=2**30, ge=1024, le=8 * 2**30)
    count: int = Field(default=1, ge=1)
    path_contains: str | None = None


class _MalformedFault(_Body):
    kind: MalformedKind = "truncated"
    count: int = Field(default=1, ge=1)
    path_contains: str | None = None


class _HangFault(_Body):
    seconds: float = Field(ge=0)
    count: int = Field(default=1, ge=1)
    path_contains: str | None = None


class _FaultsRequest(_Body):
    """Body of POST /_sim/faults; every key is optional and `clear` is applied first."""

    clear: bool = False
    latency_s: float | None = Field(default=None, ge=0)
    jitter_s: float | None = Field(default=None, ge=0)
    clock_offset_s: float | None = None
    error: _ErrorFault | None = None
    http_status: _HttpFault | None = None
    malformed: _MalformedFault | None = None
    hang: _HangFault | None = None
    drip: _DripFault | None = None
    bomb: _BombFault | None = None
    revoke_tokens: bool = False
    expire_tokens: bool = False
    revoke_tokens_after: int | None = Field(default=None, ge=0)
    revoke_tokens_every: int | None = Field(default=None, ge=1)
    listing_fields: Literal["camelCase", "snake_case"] | None = None
    # null means "no limit", so whether the key was sent is read from model_fields_set.
    rate_limit_rps: float | None = Field(default=None, gt=0)
    rate_limit_code: int | None = None
    error_fields: Literal["code", "error_code"] | None = None


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def _parse[M: BaseModel](request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in err['loc']) or '<body>'}: {err['msg']}"
            for err in e.errors()
        )
        raise web.HTTPBadRequest(
            text=_dump_error(f"invalid body: {problems}"), content_type="application/json"
        ) from None


def _dump_error(message: str) -> str:
    return json.dumps({"error": message})


@web.middleware
async def _loopback_only(request: web.Request, handler: _Handler) -> web.StreamResponse:
    if request.path.startswith("/_sim/"):
        remote = request.remote or ""
        try:
            loopback = ipaddress.ip_address(remote.split("%")[0]).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return _json({"error": "the admin API answers loopback clients only"}, 403)
    return await handler(request)


class SimulatorServer:
    """Serves a SimulatedCloud over HTTP: the Tuya OpenAPI paths plus the /_sim/ admin API."""

    def __init__(self, cloud: SimulatedCloud) -> None:
        self.cloud = cloud
        self._runner: web.AppRunner | None = None
        self._host = ""
        self._port = 0
        self.app = self._build_app()

    @property
    def url(self) -> str:
        """Base URL to give a client, e.g. "http://127.0.0.1:38211"."""
        if self._runner is None:
            raise RuntimeError("the simulator server is not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful when started with port 0)."""
        return self._port

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind and start serving; returns the base URL."""
        if self._runner is not None:
            raise RuntimeError("the simulator server is already started")
        # access_log=None: logging every request would cost more than answering it.
        # A short shutdown_timeout: requests held back by a hang fault must not stall stop().
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        # A deep backlog so a burst of thousands of new connections is not refused.
        site = web.TCPSite(runner, host, port, backlog=4096)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._host = host
        address = runner.addresses[0]
        self._port = int(address[1])
        return self.url

    async def stop(self) -> None:
        """Stop serving and close every connection; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # ------------------------------------------------------------------ app

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[_loopback_only])
        r = app.router
        r.add_post("/_sim/releases", self._releases)
        r.add_post("/_sim/install", self._install)
        r.add_post("/_sim/fail", self._fail)
        r.add_post("/_sim/device-error", self._device_error)
        r.add_get("/_sim/faults", self._get_faults)
        r.add_post("/_sim/faults", self._post_faults)
        r.add_get("/_sim/stats", self._stats)
        r.add_post("/_sim/stats/reset", self._stats_reset)
        r.add_get("/_sim/fleet", self._fleet)
        r.add_route("*", "/{tail:.*}", self._cloud_request)
        return app

    async def _cloud_request(self, request: web.Request) -> web.StreamResponse:
        body = await request.read() if request.body_exists else b""
        answer = self.cloud.handle(
            request.method, request.path, request.query, request.headers, body
        )
        if answer.delay_s > 0:
            await asyncio.sleep(answer.delay_s)
        content_type = (
            _JSON_TYPE if answer.content_type == "application/json" else answer.content_type
        )
        headers = {"Content-Type": content_type, **answer.headers}
        if answer.drip_interval_s > 0:
            return await self._drip(request, answer.status, headers, answer)
        return web.Response(status=answer.status, body=answer.body, headers=headers)

    @staticmethod
    async def _drip(
        request: web.Request, status: int, headers: dict[str, str], answer: Any
    ) -> web.StreamResponse:
        # A byte at a time: every read gets data well within a read timeout, and the whole
        # answer takes len(body) * interval seconds.
        stream = web.StreamResponse(status=status, headers=headers)
        stream.content_length = len(answer.body)
        await stream.prepare(request)
        for index in range(len(answer.body)):
            await stream.write(answer.body[index : index + 1])
            await asyncio.sleep(answer.drip_interval_s)
        await stream.write_eof()
        return stream

    async def _releases(self, request: web.Request) -> web.Response:
        b = await _parse(request, _Release)
        return _json({"updated": self.cloud.publish_release(b.product_id, b.channel, b.version)})

    async def _install(self, request: web.Request) -> web.Response:
        b = await _parse(request, _Install)
        return self._on_device(
            b.device_id, lambda: self.cloud.mark_installed(b.device_id, b.channel)
        )

    async def _fail(self, request: web.Request) -> web.Response:
        b = await _parse(request, _Failed)
        return self._on_device(
            b.device_id, lambda: self.cloud.mark_failed(b.device_id, b.channel, b.status)
        )

    async def _device_error(self, request: web.Request) -> web.Response:
        b = await _parse(request, _DeviceError)

        def apply() -> int:
            self.cloud.set_device_error(b.device_id, b.code)
            return 1

        return self._on_device(b.device_id, apply)

    def _on_device(self, device_id: str, action: Callable[[], int]) -> web.Response:
        try:
            return _json({"updated": action()})
        except UnknownDeviceError:
            return _json({"error": f"unknown device {device_id!r}"}, 404)

    def _faults_state(self) -> dict[str, Any]:
        cloud = self.cloud
        return {
            **cloud.faults.snapshot(),
            "rate_limit_rps": cloud.rate_limit_rps,
            "rate_limit_code": cloud.rate_limit_code,
            "error_fields": cloud.error_fields,
            "listing_fields": cloud.listing_fields,
            "live_tokens": len(cloud.live_tokens()),
        }

    async def _get_faults(self, request: web.Request) -> web.Response:
        return _json(self._faults_state())

    async def _post_faults(self, request: web.Request) -> web.Response:
        b = await _parse(request, _FaultsRequest)
        cloud, faults = self.cloud, self.cloud.faults
        try:
            if b.clear:
                faults.clear()
            if b.latency_s is not None or b.jitter_s is not None:
                faults.set_latency(
                    b.latency_s if b.latency_s is not None else faults.latency_s,
                    b.jitter_s if b.jitter_s is not None else faults.jitter_s,
                )
            if b.clock_offset_s is not None:
                faults.clock_offset_s = b.clock_offset_s
            if b.error is not None:
                e = b.error
                faults.inject_error(
                    e.code,
                    e.count,
                    e.path_contains,
                    e.msg,
                    every=e.every,
                    for_s=e.for_s,
                    calls=e.calls,
                )
            if b.http_status is not None:
                h = b.http_status
                faults.inject_http_status(
                    h.status, h.count, h.path_contains, h.retry_after, every=h.every, for_s=h.for_s
                )
            if b.drip is not None:
                faults.inject_drip(b.drip.interval_s, b.drip.count, b.drip.path_contains)
            if b.bomb is not None:
                faults.inject_bomb(b.bomb.inflated_bytes, b.bomb.count, b.bomb.path_contains)
            if "revoke_tokens_every" in b.model_fields_set:
                cloud.revoke_tokens_every(b.revoke_tokens_every)
            if b.listing_fields is not None:
                cloud.set_listing_fields(b.listing_fields)
            if b.malformed is not None:
                faults.inject_malformed(
                    b.malformed.count, b.malformed.kind, b.malformed.path_contains
                )
            if b.hang is not None:
                faults.inject_hang(b.hang.seconds, b.hang.count, b.hang.path_contains)
            if b.revoke_tokens:
                cloud.revoke_tokens()
            if b.expire_tokens:
                cloud.expire_tokens()
            if b.revoke_tokens_after is not None:
                cloud.revoke_tokens_after(b.revoke_tokens_after)
            if "rate_limit_rps" in b.model_fields_set or b.rate_limit_code is not None:
                rps = (
                    b.rate_limit_rps
                    if "rate_limit_rps" in b.model_fields_set
                    else cloud.rate_limit_rps
                )
                cloud.set_rate_limit(rps, b.rate_limit_code)
            if b.error_fields is not None:
                cloud.error_fields = b.error_fields
        except ValueError as e:
            return _json({"error": str(e)}, 400)
        return _json(self._faults_state())

    async def _stats(self, request: web.Request) -> web.Response:
        return _json(self.cloud.stats.snapshot())

    async def _stats_reset(self, request: web.Request) -> web.Response:
        self.cloud.reset_stats()
        return _json(self.cloud.stats.snapshot())

    async def _fleet(self, request: web.Request) -> web.Response:
        return _json(self.cloud.fleet_snapshot())


async def serve(
    cloud: SimulatedCloud,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_ready: Callable[[str], object] | None = None,
) -> None:
    """Serve `cloud` until cancelled; `on_ready` is called with the base URL once listening."""
    server = SimulatorServer(cloud)
    await server.start(host, port)
    try:
        if on_ready is not None:
            on_ready(server.url)
        await asyncio.Event().wait()
    finally:
        await server.stop()


@dataclass(frozen=True)
class RunningSimulator:
    """A simulator served from a background thread, as yielded by `running_simulator`."""

    url: str
    cloud: SimulatedCloud
    server: SimulatorServer

    @property
    def access_id(self) -> str:
        """The Access ID the simulated project accepts."""
        return self.cloud.access_id

    @property
    def access_secret(self) -> str:
        """The Access Secret requests must be signed with."""
        return self.cloud.access_secret

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self.server.port


@contextmanager
def running_simulator(
    cloud: SimulatedCloud, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningSimulator]:
    """Run a simulator server on its own event loop in a daemon thread, for sync code.

    The server is listening when the block starts and fully stopped when it ends.
    """
    loop = asyncio.new_event_loop()
    server = SimulatorServer(cloud)
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start(host, port))
        except BaseException as e:
            failure.append(e)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(server.stop())
            _cancel_leftovers(loop)
            loop.close()

    thread = threading.Thread(target=run, name="fwwatch-simulator", daemon=True)
    thread.start()
    if not ready.wait(timeout=30):
        raise RuntimeError("the simulator server did not start within 30 s")
    if failure:
        thread.join()
        raise failure[0]
    try:
        yield RunningSimulator(url=server.url, cloud=cloud, server=server)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    # Requests still held back by a hang fault outlive the server's shutdown grace period;
    # cancel them so closing the loop does not warn about destroyed pending tasks.
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
