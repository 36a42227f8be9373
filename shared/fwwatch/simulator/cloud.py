"""The simulated Tuya Cloud: authentication, tokens, rate limits and the firmware APIs.

No HTTP here: `SimulatedCloud.handle` takes a decoded request and returns the status, body
and delay to answer with, so the rules can be tested without sockets and served by any
server (see server.py).
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fwwatch.simulator import codes
from fwwatch.simulator.faults import Faults, gzip_bomb
from fwwatch.simulator.fleet import Fleet, FleetChannel, FleetDevice
from fwwatch.simulator.signing import (
    canonical_url,
    compute_sign,
    is_token_path,
    signed_header_lines,
    string_to_sign,
)

DEFAULT_ACCESS_ID = "fwwatch-sim-access-id"
# A published, simulator-only credential: it protects nothing.
DEFAULT_ACCESS_SECRET = "fwwatch-sim-access-secret-0000000"  # noqa: S105

# Tuya rejects a `t` more than about five minutes away from its own clock.
MAX_CLOCK_SKEW_S = 300.0
SIGN_METHOD = "HMAC-SHA256"
V2_MAX_PAGE_SIZE = 20
V13_MAX_PAGE_SIZE = 200
V13_SOURCE_TYPES = frozenset({"asset", "homeApp", "tuyaUser", "product"})
FINISHED_STATUS = 3

ErrorFields = Literal["code", "error_code"]
#: How the /v2.0 listing spells its fields: Tuya has documented (and sent) both.
ListingFields = Literal["camelCase", "snake_case"]
JSON = "application/json"


class UnknownDeviceError(LookupError):
    """An admin action named a device the fleet does not have."""


@dataclass(frozen=True, slots=True)
class SimResponse:
    """What to answer: HTTP status, body bytes, and how long to wait before answering."""

    status: int
    body: bytes
    delay_s: float = 0.0
    content_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)
    # Seconds between the body's bytes when it is sent a byte at a time (0: all at once).
    drip_interval_s: float = 0.0


@dataclass
class TokenPair:
    """An access token and its refresh token; `expires_at` is on the simulator's clock."""

    access_token: str
    refresh_token: str
    expires_at: float


class Stats:
    """Request counters of a SimulatedCloud.

    `by_api` counts every request by route key (`GET /v2.0/cloud/thing/{device_id}/firmware`),
    whatever its outcome; `by_code` counts outcomes: "success", a Tuya code such as "1010",
    or "http_503" for an injected HTTP status. `rejected` counts rate-limited requests.
    """

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.requests = 0
        self.grants = 0
        self.refreshes = 0
        self.rejected = 0
        self.by_api: Counter[str] = Counter()
        self.by_code: Counter[str] = Counter()

    def reset(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self.requests = self.grants = self.refreshes = self.rejected = 0
            self.by_api.clear()
            self.by_code.clear()

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of the counters."""
        with self._lock:
            return {
                "requests": self.requests,
                "grants": self.grants,
                "refreshes": self.refreshes,
                "rejected": self.rejected,
                "by_api": dict(self.by_api),
                "by_code": dict(self.by_code),
            }


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    template: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


_R_TOKEN = _Route("GET", "/v1.0/token", "grant")
_R_REFRESH = _Route("GET", "/v1.0/token/{refresh_token}", "refresh")
_R_V2_LIST = _Route("GET", "/v2.0/cloud/thing/device", "v2_list")
_R_V13_LIST = _Route("GET", "/v1.3/iot-03/devices", "v13_list")
_R_FIRMWARE = _Route("GET", "/v2.0/cloud/thing/{device_id}/firmware", "firmware")
_R_START = _Route("POST", "/v2.0/cloud/thing/{device_id}/firmware/{channel}", "start")
_R_PROGRESS = _Route("GET", "/v2.0/cloud/thing/{device_id}/firmware/{channel}/progress", "progress")

_EXACT: dict[tuple[str, str], _Route] = {
    (r.method, r.template): r for r in (_R_TOKEN, _R_V2_LIST, _R_V13_LIST)
}
_PATTERNS: tuple[tuple[re.Pattern[str], _Route], ...] = (
    (re.compile(r"/v2\.0/cloud/thing/([^/]+)/firmware"), _R_FIRMWARE),
    (re.compile(r"/v1\.0/token/([^/]+)"), _R_REFRESH),
    (re.compile(r"/v2\.0/cloud/thing/([^/]+)/firmware/([^/]+)"), _R_START),
    (re.compile(r"/v2\.0/cloud/thing/([^/]+)/firmware/([^/]+)/progress"), _R_PROGRESS),
)


def _match(method: str, path: str) -> tuple[_Route, tuple[str, ...]] | None:
    route = _EXACT.get((method, path))
    if route is not None:
        return route, ()
    for pattern, route in _PATTERNS:
        if route.method == method:
            m = pattern.fullmatch(path)
            if m is not None:
                return route, m.groups()
    return None


class _Fail(Exception):
    """Raised inside a route handler to answer with a Tuya error envelope."""

    def __init__(self, code: int, msg: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.msg = msg if msg is not None else codes.message_for(code)


_NOT_JSON_BODY = b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"


class SimulatedCloud:
    """A Tuya Cloud project holding `fleet`, answering the OpenAPI calls fwwatch makes.

    Checks each request in this order: client_id (1005), `t` within five minutes of the
    simulator's clock (1013), the HMAC-SHA256 signature (1004), a live access token for
    business calls (1010), then the per-API rate limit (`rate_limit_code`, 1110 by default).

    The cloud owns `fleet` and changes it in place (releases, installs, failures). Every
    public method may be called from any thread.
    """

    def __init__(
        self,
        fleet: Fleet,
        *,
        access_id: str = DEFAULT_ACCESS_ID,
        access_secret: str = DEFAULT_ACCESS_SECRET,
        token_ttl_s: int = 7200,
        rate_limit_rps: float | None = None,
        rate_limit_code: int = codes.CONCURRENT_OVER_LIMIT,
        revoke_on_grant: bool = True,
        error_fields: ErrorFields = "code",
        listing_fields: ListingFields = "camelCase",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fleet = fleet
        self.access_id = access_id
        self.access_secret = access_secret
        self.token_ttl_s = token_ttl_s
        self.rate_limit_rps = rate_limit_rps
        self.rate_limit_code = rate_limit_code
        self.revoke_on_grant = revoke_on_grant
        self.error_fields: ErrorFields = error_fields
        self.listing_fields: ListingFields = listing_fields
        self.clock = clock
        self.faults = Faults()
        # Re-entrant: admin helpers that take the lock also run inside handle().
        self._lock = threading.RLock()
        self.stats = Stats(self._lock)
        self.uid = "ay" + hashlib.sha256(access_id.encode()).hexdigest()[:18]
        self._access: dict[str, TokenPair] = {}
        self._refresh: dict[str, TokenPair] = {}
        self._revoke_after: int | None = None
        self._revoke_every: int | None = None
        self._business_accepted = 0
        self._windows: dict[str, deque[float]] = {}
        self._devices: dict[str, FleetDevice] = {d.device_id: d for d in fleet.devices}
        self._ids: list[str] = sorted(self._devices)
        self._ids_by_product: dict[str, list[str]] = {}
        # Answers are cached per device as JSON bytes so a request costs a dict lookup, not a
        # serialisation; any change to a device drops its entries.
        self._firmware_cache: dict[str, bytes] = {}
        self._v2_cache: dict[str, bytes] = {}
        self._v13_cache: dict[str, bytes] = {}

    # ------------------------------------------------------------------ requests

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> SimResponse:
        """Answer one decoded HTTP request (query decoded, headers matched case-insensitively)."""
        method = method.upper()
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            return self._handle(method, path, query, lowered, body)

    def _handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> SimResponse:
        stats = self.stats
        matched = _match(method, path)
        route = matched[0] if matched else None
        stats.requests += 1
        stats.by_api[route.key if route else f"{method} (unknown path)"] += 1
        delay = self.faults.delay_for(path)

        injected_status = self.faults.take_http_status(path)
        if injected_status is not None:
            stats.by_code[f"http_{injected_status.status}"] += 1
            extra = {}
            if injected_status.retry_after is not None:
                extra["Retry-After"] = injected_status.retry_after
            return SimResponse(
                injected_status.status,
                f"{injected_status.status} injected by the simulator".encode(),
                delay,
                "text/plain",
                extra,
            )

        bomb = self.faults.take_bomb(path)
        if bomb is not None:
            stats.by_code["bomb"] += 1
            return SimResponse(
                200, gzip_bomb(bomb.inflated_bytes), delay, JSON, {"Content-Encoding": "gzip"}
            )

        now = self.clock() + self.faults.clock_offset_s
        token_call = is_token_path(path)
        try:
            self._authenticate(method, path, query, headers, body, now, token_call)
            if route is None:
                raise _Fail(codes.URI_PATH_INVALID)
            self._rate_limit(route)
            if not token_call:
                self._count_towards_revocation()
            injected = self.faults.take_error(path, token_call=token_call)
            if injected is not None:
                raise _Fail(injected.code, injected.msg)
            assert matched is not None
            result = self._dispatch(route, matched[1], query, now)
        except _Fail as fail:
            stats.by_code[str(fail.code)] += 1
            payload = self._error_body(fail.code, fail.msg, now)
            return self._shaped(path, SimResponse(200, payload, delay), error=True)
        stats.by_code["success"] += 1
        return self._shaped(path, SimResponse(200, self._ok_body(result, now), delay))

    def _shaped(self, path: str, response: SimResponse, *, error: bool = False) -> SimResponse:
        response = self._maybe_malform(path, response, error=error)
        drip = self.faults.take_drip(path)
        if drip is None:
            return response
        return SimResponse(
            response.status,
            response.body,
            response.delay_s,
            response.content_type,
            response.headers,
            drip_interval_s=drip.interval_s,
        )

    def _authenticate(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: dict[str, str],
        body: bytes,
        now: float,
        token_call: bool,
    ) -> None:
        client_id = headers.get("client_id", "")
        if client_id != self.access_id:
            raise _Fail(codes.CLIENT_ID_INVALID)
        t = headers.get("t", "")
        if not (len(t) == 13 and t.isascii() and t.isdigit()):
            raise _Fail(codes.REQUEST_TIME_INVALID)
        if abs(int(t) / 1000.0 - now) > MAX_CLOCK_SKEW_S:
            raise _Fail(codes.REQUEST_TIME_INVALID)
        if headers.get("sign_method", "") != SIGN_METHOD:
            raise _Fail(codes.SIGN_INVALID)
        access_token = "" if token_call else headers.get("access_token", "")
        expected = compute_sign(
            self.access_secret,
            client_id=client_id,
            t=t,
            access_token=access_token,
            nonce=headers.get("nonce", ""),
            string_to_sign=string_to_sign(
                method,
                body,
                signed_header_lines(headers.get("signature-headers", ""), headers),
                canonical_url(path, query.items()),
            ),
        )
        given = headers.get("sign", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(expected.encode(), given):
            raise _Fail(codes.SIGN_INVALID)
        if token_call:
            return
        pair = self._access.get(access_token)
        if pair is None:
            raise _Fail(codes.TOKEN_INVALID)
        if now >= pair.expires_at:
            raise _Fail(codes.TOKEN_INVALID, codes.TOKEN_EXPIRED_MSG)

    def _rate_limit(self, route: _Route) -> None:
        limit = self.rate_limit_rps
        if limit is None:
            return
        now = self.clock()
        window = self._windows.setdefault(route.key, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= limit:
            self.stats.rejected += 1
            raise _Fail(self.rate_limit_code)
        window.append(now)

    def _count_towards_revocation(self) -> None:
        self._business_accepted += 1
        if self._revoke_every is not None and self._business_accepted % self._revoke_every == 0:
            # This request was already authenticated and is answered; the next ones are not.
            self._drop_all_tokens()
        if self._revoke_after is None:
            return
        self._revoke_after -= 1
        if self._revoke_after <= 0:
            self._revoke_after = None
            # This request was already authenticated and is answered; the next ones are not.
            self._drop_all_tokens()

    def _dispatch(
        self, route: _Route, args: tuple[str, ...], query: Mapping[str, str], now: float
    ) -> bytes:
        match route.name:
            case "grant":
                return self._grant(query, now)
            case "refresh":
                return self._refresh_pair(args[0], now)
            case "firmware":
                return self._firmware(args[0])
            case "v2_list":
                return self._v2_list(query)
            case "v13_list":
                return self._v13_list(query)
            case "start":
                return self._start_update(args[0], args[1])
            case "progress":
                return self._progress(args[0], args[1])
        raise _Fail(codes.URI_PATH_INVALID)  # pragma: no cover - every route is dispatched

    # ------------------------------------------------------------------ envelopes

    def _ok_body(self, result: bytes, now: float) -> bytes:
        return b"".join(
            (
                b'{"success":true,"result":',
                result,
                b',"t":',
                str(int(now * 1000)).encode(),
                b',"tid":"',
                uuid.uuid4().hex.encode(),
                b'"}',
            )
        )

    def _error_body(self, code: int, msg: str, now: float) -> bytes:
        code_key, msg_key = (
            ("code", "msg")
            if self.error_fields == "code"
            else (
                "error_code",
                "error_msg",
            )
        )
        return _dumps(
            {
                "success": False,
                code_key: code,
                msg_key: msg,
                "t": int(now * 1000),
                "tid": uuid.uuid4().hex,
            }
        )

    def _maybe_malform(
        self, path: str, response: SimResponse, *, error: bool = False
    ) -> SimResponse:
        fault = self.faults.take_malformed(path)
        if fault is None:
            return response
        body = response.body
        content_type = JSON
        if fault.kind == "truncated":
            body = body[: len(body) // 2]
        elif fault.kind == "not_json":
            body, content_type = _NOT_JSON_BODY, "text/html"
        elif not error:
            parsed = json.loads(body)
            parsed.pop("result", None)
            body = _dumps(parsed)
        return SimResponse(response.status, body, response.delay_s, content_type)

    # ------------------------------------------------------------------ tokens

    def _grant(self, query: Mapping[str, str], now: float) -> bytes:
        if query.get("grant_type") != "1":
            raise _Fail(codes.GRANT_TYPE_INVALID)
        if self.revoke_on_grant:
            self._drop_all_tokens()
        pair = self._new_pair(now, None, None, None)
        self.stats.grants += 1
        return self._token_result(pair)

    def _refresh_pair(self, refresh_token: str, now: float) -> bytes:
        old = self._refresh.pop(refresh_token, None)
        if old is None:
            raise _Fail(codes.TOKEN_STATUS_INVALID)
        self._access.pop(old.access_token, None)
        pair = self._new_pair(now, None, None, None)
        self.stats.refreshes += 1
        return self._token_result(pair)

    def _new_pair(
        self, now: float, access_token: str | None, refresh_token: str | None, ttl_s: float | None
    ) -> TokenPair:
        pair = TokenPair(
            access_token or secrets.token_hex(16),
            refresh_token or secrets.token_hex(16),
            now + (self.token_ttl_s if ttl_s is None else ttl_s),
        )
        self._access[pair.access_token] = pair
        self._refresh[pair.refresh_token] = pair
        return pair

    def _token_result(self, pair: TokenPair) -> bytes:
        return _dumps(
            {
                "access_token": pair.access_token,
                "expire_time": self.token_ttl_s,
                "refresh_token": pair.refresh_token,
                "uid": self.uid,
            }
        )

    def _drop_all_tokens(self) -> None:
        self._access.clear()
        self._refresh.clear()

    def issue_token(
        self,
        access_token: str | None = None,
        refresh_token: str | None = None,
        ttl_s: float | None = None,
    ) -> TokenPair:
        """Make a live token pair without a request (for tests), e.g. a known vector token.

        Unlike a grant this never revokes other tokens and is not counted in stats.
        """
        with self._lock:
            return self._new_pair(self.now(), access_token, refresh_token, ttl_s)

    def revoke_tokens(self) -> None:
        """Kill every access and refresh token now, as Tuya does when another grant happens."""
        with self._lock:
            self._drop_all_tokens()

    def revoke_tokens_after(self, n: int) -> None:
        """Kill every token once `n` more business requests have been accepted (0: now)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            if n == 0:
                self._revoke_after = None
                self._drop_all_tokens()
            else:
                self._revoke_after = n

    def revoke_tokens_every(self, n: int | None) -> None:
        """Kill every token after each `n`-th accepted business request (None: stop)."""
        if n is not None and n < 1:
            raise ValueError("n must be >= 1")
        with self._lock:
            self._revoke_every = n
            self._business_accepted = 0

    def expire_tokens(self) -> None:
        """Make every live access token expired (answered 1010 "token is expired")."""
        with self._lock:
            past = self.now() - 1.0
            for pair in self._access.values():
                pair.expires_at = past

    def live_tokens(self) -> list[TokenPair]:
        """The access tokens that would currently be accepted."""
        with self._lock:
            now = self.now()
            return [p for p in self._access.values() if p.expires_at > now]

    def now(self) -> float:
        """The simulator's clock in seconds: `clock()` plus the injected clock offset."""
        return self.clock() + self.faults.clock_offset_s

    # ------------------------------------------------------------------ firmware

    def _device_or_fail(self, device_id: str) -> FleetDevice:
        device = self._devices.get(device_id)
        if device is None:
            raise _Fail(codes.PERMISSION_DENY)
        if device.error is not None:
            raise _Fail(device.error)
        return device

    def _firmware(self, device_id: str) -> bytes:
        device = self._device_or_fail(device_id)
        cached = self._firmware_cache.get(device_id)
        if cached is None:
            items = [_channel_json(c, device.channel_key) for c in device.channels]
            cached = _dumps(items if device.shape == "list" else items[0])
            self._firmware_cache[device_id] = cached
        return cached

    def _channel_arg(self, device: FleetDevice, channel: str) -> FleetChannel:
        found = device.find_channel(int(channel)) if channel.isdigit() else None
        if found is None:
            raise _Fail(codes.PARAM_ILLEGAL)
        return found

    def _start_update(self, device_id: str, channel: str) -> bytes:
        device = self._device_or_fail(device_id)
        ch = self._channel_arg(device, channel)
        if not ch.has_update:
            raise _Fail(codes.PARAM_ILLEGAL)
        ch.upgrade_status = 2
        self._touch(device_id)
        return b"true"

    def _progress(self, device_id: str, channel: str) -> bytes:
        ch = self._channel_arg(self._device_or_fail(device_id), channel)
        progress = 100 if ch.upgrade_status == FINISHED_STATUS else 0
        return _dumps({"upgrade_status": ch.upgrade_status, "progress": progress})

    # ------------------------------------------------------------------ listings

    def _v2_list(self, query: Mapping[str, str]) -> bytes:
        size = _page_size(query, V2_MAX_PAGE_SIZE)
        last_id = query.get("last_id", "")
        start = bisect.bisect_right(self._ids, last_id) if last_id else 0
        page = self._ids[start : start + size]
        return b"[" + b",".join(self._v2_item(i) for i in page) + b"]"

    def _v13_list(self, query: Mapping[str, str]) -> bytes:
        size = _page_size(query, V13_MAX_PAGE_SIZE)
        ids = self._ids
        source_type = query.get("source_type")
        if source_type is not None:
            if source_type not in V13_SOURCE_TYPES:
                raise _Fail(codes.PARAM_ILLEGAL)
            source_id = query.get("source_id")
            if source_type == "product" and source_id:
                ids = self._product_ids(source_id)
        key = query.get("last_row_key", "")
        start = bisect.bisect_right(ids, _decode_row_key(key)) if key else 0
        page = ids[start : start + size]
        has_more = start + size < len(ids)
        return b"".join(
            (
                b'{"has_more":',
                b"true" if has_more else b"false",
                b',"last_row_key":',
                _dumps(_encode_row_key(page[-1]) if page else ""),
                b',"list":[',
                b",".join(self._v13_item(i) for i in page),
                b'],"total":',
                str(len(ids)).encode(),
                b"}",
            )
        )

    def _product_ids(self, product_id: str) -> list[str]:
        ids = self._ids_by_product.get(product_id)
        if ids is None:
            ids = [i for i in self._ids if self._devices[i].product_id == product_id]
            self._ids_by_product[product_id] = ids
        return ids

    def _v2_item(self, device_id: str) -> bytes:
        cached = self._v2_cache.get(device_id)
        if cached is None:
            d = self._devices[device_id]
            item = {
                "id": d.device_id,
                "name": d.name,
                "customName": d.custom_name,
                "productId": d.product_id,
                "productName": d.product_name,
                "category": d.category,
                "isOnline": d.online,
                "sub": d.sub,
                "model": d.model,
                "ip": d.ip,
                "timeZone": d.time_zone,
                "uuid": _uuid_for(d.device_id),
                "activeTime": d.active_time,
                "createTime": d.create_time,
                "updateTime": d.update_time,
            }
            if self.listing_fields == "snake_case":
                item = {_snake(key): value for key, value in item.items()}
            cached = _dumps(item)
            self._v2_cache[device_id] = cached
        return cached

    def _v13_item(self, device_id: str) -> bytes:
        cached = self._v13_cache.get(device_id)
        if cached is None:
            d = self._devices[device_id]
            cached = _dumps(
                {
                    "id": d.device_id,
                    "name": d.custom_name or d.name,
                    "product_id": d.product_id,
                    "product_name": d.product_name,
                    "category": d.category,
                    "online": d.online,
                    "sub": d.sub,
                    "model": d.model,
                    "ip": d.ip,
                    "time_zone": d.time_zone,
                    "uid": self.uid,
                    "uuid": _uuid_for(d.device_id),
                    "active_time": d.active_time,
                    "create_time": d.create_time,
                    "update_time": d.update_time,
                }
            )
            self._v13_cache[device_id] = cached
        return cached

    # ------------------------------------------------------------------ admin

    def _device(self, device_id: str) -> FleetDevice:
        device = self._devices.get(device_id)
        if device is None:
            raise UnknownDeviceError(device_id)
        return device

    def _touch(self, device_id: str) -> None:
        self._firmware_cache.pop(device_id, None)
        self._v2_cache.pop(device_id, None)
        self._v13_cache.pop(device_id, None)

    def publish_release(self, product_id: str, channel: int, version: str) -> int:
        """Offer `version` on `channel` to every device of `product_id`; return how many.

        Offered devices get target_version=version and upgrade_status 1; devices already on
        that version are left alone.
        """
        changed = 0
        with self._lock:
            for device in self.fleet.devices:
                if device.product_id != product_id:
                    continue
                ch = device.find_channel(channel)
                if ch is None or ch.current_version == version:
                    continue
                ch.target_version = version
                ch.upgrade_status = 1
                ch.firmware_deploy_time = int(self.now() * 1000)
                self._touch(device.device_id)
                changed += 1
        return changed

    def mark_installed(self, device_id: str, channel: int | None = None) -> int:
        """Finish the offered update(s) of a device; return how many channels changed.

        The installed version becomes the target, the target is cleared and upgrade_status
        becomes 3 (update finished), as Tuya reports after an update, so a client must not
        read status 3 as "update pending". `channel` None means every channel with an offer.
        """
        changed = 0
        with self._lock:
            device = self._device(device_id)
            for ch in device.channels:
                if channel is not None and ch.channel != channel:
                    continue
                if not ch.has_update:
                    continue
                assert ch.target_version is not None
                ch.current_version = ch.target_version
                ch.target_version = None
                ch.upgrade_status = FINISHED_STATUS
                ch.last_upgrade_time = int(self.now() * 1000)
                changed += 1
            self._touch(device_id)
        return changed

    def mark_failed(self, device_id: str, channel: int | None = None, status: int = 4) -> int:
        """Mark the offered update(s) of a device as failed (4) or timed out (7).

        The offer stays: versions are unchanged, only upgrade_status moves to `status`.
        """
        changed = 0
        with self._lock:
            device = self._device(device_id)
            for ch in device.channels:
                if (channel is None or ch.channel == channel) and ch.has_update:
                    ch.upgrade_status = status
                    ch.last_upgrade_time = int(self.now() * 1000)
                    changed += 1
            self._touch(device_id)
        return changed

    def roll_back(self, device_id: str, channel: int, version: str) -> None:
        """Put a channel back on an older ``version``: no offer, status idle, as after a
        rollback."""
        with self._lock:
            ch = self._device(device_id).find_channel(channel)
            if ch is None:
                raise KeyError(f"{device_id} has no channel {channel}")
            ch.current_version = version
            ch.target_version = None
            ch.upgrade_status = 0
            ch.last_upgrade_time = int(self.now() * 1000)
            self._touch(device_id)

    def remove_device(self, device_id: str) -> None:
        """Take a device out of the project: the listings stop showing it, and its firmware
        endpoints answer 1106 (permission deny), as Tuya does for another project's device."""
        with self._lock:
            device = self._device(device_id)
            self.fleet.devices.remove(device)
            del self._devices[device_id]
            self._ids.remove(device_id)
            self._ids_by_product.clear()
            self._touch(device_id)

    def set_device_error(self, device_id: str, code: int | None) -> None:
        """Make the firmware endpoints answer Tuya error `code` for this device (None: clear)."""
        with self._lock:
            self._device(device_id).error = code
            self._touch(device_id)

    def set_listing_fields(self, spelling: ListingFields) -> None:
        """Spell the /v2.0 listing's fields in camelCase (2024 docs) or snake_case (2023)."""
        if spelling not in ("camelCase", "snake_case"):
            raise ValueError("listing fields are camelCase or snake_case")
        with self._lock:
            self.listing_fields = spelling
            self._v2_cache.clear()

    def set_rate_limit(self, rps: float | None, code: int | None = None) -> None:
        """Limit each API to `rps` requests per sliding second (None: no limit)."""
        if rps is not None and rps <= 0:
            raise ValueError("rps must be > 0 or None")
        with self._lock:
            self.rate_limit_rps = rps
            if code is not None:
                self.rate_limit_code = code
            self._windows.clear()

    def fleet_snapshot(self) -> dict[str, Any]:
        """The fleet as it stands now, JSON-ready (the format fleet files use)."""
        with self._lock:
            return self.fleet.model_dump(mode="json", exclude_none=True)

    def reset_stats(self) -> None:
        """Set every stats counter back to zero."""
        self.stats.reset()


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _channel_json(ch: FleetChannel, key: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "upgrade_status": ch.upgrade_status,
        "current_version": ch.current_version,
        "version": ch.target_version or ch.current_version,
        key: ch.channel,
        "type_desc": ch.type_desc,
        "desc": ch.desc if ch.desc is not None else ("Firmware update" if ch.has_update else ""),
        "upgrade_type": ch.upgrade_type if ch.upgrade_type is not None else 0,
        "control_type": ch.control_type if ch.control_type is not None else 0,
        "timeout": ch.timeout if ch.timeout is not None else 300,
        "dev_type": ch.dev_type if ch.dev_type is not None else 0,
        "can_upgrade": ch.can_upgrade if ch.can_upgrade is not None else True,
    }
    for name in ("remind", "file_size", "firmware_deploy_time", "last_upgrade_time"):
        value = getattr(ch, name)
        if value is not None:
            item[name] = value
    return item


def _page_size(query: Mapping[str, str], maximum: int) -> int:
    raw = query.get("page_size")
    if raw is None:
        return maximum
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise _Fail(codes.PARAM_ILLEGAL)
    return int(raw)


# The v1.3 cursor is opaque to clients, as Tuya's is; hex keeps it URL-safe and reversible.
def _encode_row_key(device_id: str) -> str:
    return device_id.encode().hex().upper()


def _decode_row_key(key: str) -> str:
    try:
        return bytes.fromhex(key).decode()
    except (ValueError, UnicodeDecodeError):
        raise _Fail(codes.PARAM_ILLEGAL) from None


def _uuid_for(device_id: str) -> str:
    return hashlib.md5(device_id.encode(), usedforsecurity=False).hexdigest()[:16]
