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

import urllib.request
from collections.abc import Mapping

import httpx

__all__ = ["Connections", "environment_proxy"]

USER_AGENT = "fwwatch"


def environment_proxy(url: httpx.URL) -> str | None:
    """The proxy the environment asks for to reach ``url``, if any (as httpx would use it)."""
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(url.host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = httpx.Timeout(timeout_s).as_dict()
        if transport is not None:
            self._transports = [transport]
            self._idle = [transport] * size
        else:
            tls = httpx.create_ssl_context()  # one CA bundle load, shared by every connection
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
    ) -> httpx.Response:
        """Send one request and read its whole answer; httpx's exceptions pass through."""
        headers["User-Agent"] = USER_AGENT
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
        try:
            response = await transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        finally:
            self._idle.append(transport)
        response.request = request
        return response

    async def aclose(self) -> None:
        """Close every connection."""
        for transport in self._transports:
            await transport.aclose()
