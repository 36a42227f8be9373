"""The wire under the client: one httpx transport per connection, handed out idle-first.

The client never has more requests in flight than ``max_connections`` (its own semaphore),
so it needs no pool that queues requests and searches for a free connection: httpcore's pool
re-examines every connection it holds on each request and each answer. Here every
connection is a transport of its own (an httpcore pool of one) and the idle ones wait in a
stack: taking one and giving it back are a list pop and append, and the most recently used,
warm connection goes first.

Requests go through the transport API (:meth:`httpx.AsyncBaseTransport.handle_async_request`)
rather than :class:`httpx.AsyncClient`, whose URL merging, cookie jar and redirect and auth
steps have nothing to do for Tuya's API. What the client would have done that matters is done
here: the proxy from the environment (``HTTPS_PROXY``/``ALL_PROXY``, ``NO_PROXY``), the CA
bundle from ``SSL_CERT_FILE``/``SSL_CERT_DIR``, timeouts, reading and closing the answer.
Together this took the client's CPU per check from 0.80 to 0.60 ms at 64 connections
(``bench/throughput_vs_sdk.py``).
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import urllib.request
import zlib
from collections.abc import Mapping

import certifi
import httpx

__all__ = ["AnswerTooLargeError", "Connections", "environment_proxy", "tls_context"]

#: The default cap on an answer's decoded size: a firmware answer is about 1 KB and a page of
#: 200 listed devices about 100 KB.
DEFAULT_MAX_ANSWER_BYTES = 8 * 2**20

#: What every request carries besides the signature (an AsyncClient's defaults, in short).
DEFAULT_HEADERS = {
    "User-Agent": "fwwatch",
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
}


def environment_proxy(url: httpx.URL) -> str | None:
    """The proxy the environment asks for to reach ``url``, if any.

    ``HTTPS_PROXY``/``HTTP_PROXY`` by the URL's scheme, else ``ALL_PROXY``; none when
    ``NO_PROXY`` lists the host (a suffix, an address, ``host:port``, or ``*``).
    """
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy:
        return None
    no_proxy = {entry.strip() for entry in proxies.get("no", "").split(",")}
    host = f"{url.host}:{url.port}" if url.port else url.host
    if "*" in no_proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def tls_context() -> ssl.SSLContext:
    """The verifying TLS context for the CA bundle the environment names (certifi's if none).

    ``SSL_CERT_FILE`` wins over ``SSL_CERT_DIR``, as in httpx. Loading a bundle takes about
    20 ms of CPU and a client is made per Lambda invocation and per ``watch`` cycle, so the
    context is made once per bundle and shared: by path, and by the file's identity and
    modification time, so a bundle rewritten in place (``update-ca-certificates``) is loaded
    again. Shared by every client of the process: do not change it.
    """
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = None if cafile else os.environ.get("SSL_CERT_DIR") or None
    if not cafile and not capath:
        cafile = certifi.where()
    bundle = cafile or capath or ""
    try:
        stat = os.stat(bundle)
    except OSError:
        # Not cached: a missing bundle fails on every attempt, naming the path.
        return _verifying_context(cafile, capath)
    return _cached_context(cafile, capath, (stat.st_ino, stat.st_size, stat.st_mtime_ns))


def _verifying_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile, capath=capath)
    # httpcore sets the same value on every connection it opens: set it once, before sharing.
    context.set_alpn_protocols(["http/1.1"])
    return context


@functools.lru_cache(maxsize=4)
def _cached_context(
    cafile: str | None, capath: str | None, identity: tuple[int, int, int]
) -> ssl.SSLContext:
    return _verifying_context(cafile, capath)


class AnswerTooLargeError(httpx.DecodingError):
    """An answer that decodes to more than the cap (a decompression bomb, or a broken server)."""


class _Inflater:
    """Decodes a body as it arrives, never producing more than the room left under the cap."""

    def __init__(self, encoding: str, request: httpx.Request) -> None:
        self._request = request
        self._identity = encoding in ("", "identity")
        if self._identity:
            self._decoder = None
        elif encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._decoder = None
            self._deflate_raw: bool | None = None
        else:
            raise httpx.DecodingError(f"unsupported Content-Encoding {encoding!r}", request=request)
        self._deflate = encoding == "deflate"

    def feed(self, data: bytes, room: int) -> bytes:
        """The decoded bytes of ``data``; raises :class:`AnswerTooLargeError` past ``room``."""
        if self._identity:
            out = data
        else:
            try:
                out = self._decompress(data, room + 1)
            except zlib.error as exc:
                raise httpx.DecodingError(f"corrupt compressed answer: {exc}") from None
        if len(out) > room:
            raise AnswerTooLargeError("the answer is larger than the cap", request=self._request)
        return out

    def _decompress(self, data: bytes, limit: int) -> bytes:
        if self._deflate and self._decoder is None:
            # "deflate" is zlib-wrapped by the standard, raw in practice: accept both.
            wrapped = (
                len(data) >= 2 and (data[0] & 0x0F) == 8 and (data[0] << 8 | data[1]) % 31 == 0
            )
            self._decoder = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        assert self._decoder is not None
        # At most ``limit`` bytes: whatever does not fit stays compressed in unconsumed_tail.
        return self._decoder.decompress(data, limit)


async def read_bounded(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body of a streamed answer, refused once it passes ``max_bytes``."""
    if response.is_stream_consumed:  # an in-memory answer (tests' MockTransport): decoded
        if len(response.content) > max_bytes:
            raise AnswerTooLargeError("the answer is larger than the cap", request=response.request)
        return response.content
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    inflater = _Inflater(encoding, response.request)
    chunks: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        piece = inflater.feed(raw, max_bytes - size)
        size += len(piece)
        chunks.append(piece)
    return b"".join(chunks)


class Connections:
    """``size`` keep-alive connections to one origin; at most ``size`` requests at a time.

    The caller bounds concurrency (the client's semaphore); sending more than ``size``
    requests at once is a programming error and raises ``RuntimeError``.
    """

    def __init__(
        self,
        base_url: str,
        size: int,
        *,
        timeout_s: float,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # No pool timeout: a connection is always free for a caller within its bound.
        self._timeout = httpx.Timeout(timeout_s, pool=None).as_dict()
        self.timeout_s = timeout_s
        self.max_answer_bytes = max_answer_bytes
        self._closed = False
        if transport is not None:
            self._transports = [transport]
            self._idle = [transport] * size
        else:
            tls = tls_context()
            proxy = environment_proxy(httpx.URL(self.base_url))
            one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            self._transports = [
                httpx.AsyncHTTPTransport(verify=tls, limits=one, proxy=proxy) for _ in range(size)
            ]
            self._idle = list(self._transports)

    @property
    def transports(self) -> list[httpx.AsyncBaseTransport]:
        """Every transport (one per connection, or the single injected one)."""
        return list(self._transports)

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: dict[str, str],
        content: bytes = b"",
        deadline_s: float | None = None,
    ) -> httpx.Response:
        """Send one request and read its whole answer; httpx's exceptions pass through.

        The whole exchange, from connecting to the answer's last byte, must end within
        ``deadline_s`` (the timeout by default): httpx's timeouts bound each read, so an
        answer dripping in a byte at a time would otherwise never time out. An answer that
        decodes to more than ``max_answer_bytes`` raises :class:`AnswerTooLargeError`.
        """
        if self._closed:
            raise RuntimeError("the connections are closed; no request can be sent")
        headers.update(DEFAULT_HEADERS)
        request = httpx.Request(
            method,
            self.base_url + path,
            params=params,
            headers=headers,
            content=content or None,
            extensions={"timeout": self._timeout},
        )
        if not self._idle:
            raise RuntimeError("more requests at once than connections; bound the concurrency")
        transport = self._idle.pop()
        deadline = self.timeout_s if deadline_s is None else deadline_s
        try:
            async with asyncio.timeout(deadline):
                response = await transport.handle_async_request(request)
                response.request = request
                try:
                    body = await read_bounded(response, self.max_answer_bytes)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise httpx.ReadTimeout(
                f"no whole answer within {deadline:g} s", request=request
            ) from None
        except httpx.RequestError as exc:
            exc.request = request  # as an AsyncClient's errors carry it
            raise
        finally:
            self._idle.append(transport)
        kept = [
            (name, value)
            for name, value in response.headers.raw
            if name.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")
        ]
        return httpx.Response(
            response.status_code,
            headers=kept,
            content=body,
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close every connection; sending afterwards raises ``RuntimeError``."""
        self._closed = True
        for transport in self._transports:
            await transport.aclose()
