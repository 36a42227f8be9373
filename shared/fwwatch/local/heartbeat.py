"""A heartbeat after each cycle, in the healthchecks.io convention.

``GET <URL>`` says a cycle succeeded, ``GET <URL>/fail`` that it failed or could not check
some devices; a monitor that hears nothing for too long alarms by itself, which no exit
status of a cron job that never ran can do. healthchecks.io, its self-hosted version,
Uptime Kuma's push monitors and Cronitor take such requests.

The URL is a credential (it embeds the check's key): logs and errors name only its scheme
and host. A heartbeat that fails is logged as a warning and never changes a run's outcome.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from .. import __version__
from ..redaction import Redaction
from ..tuya import is_loopback_host

__all__ = ["HEARTBEAT_TIMEOUT_S", "Heartbeat", "validate_heartbeat_url"]

logger = logging.getLogger("fwwatch.local.heartbeat")

#: Seconds a heartbeat may take, from connecting to the answer's last byte.
HEARTBEAT_TIMEOUT_S = 10.0


def validate_heartbeat_url(url: str) -> str:
    """An https URL (plain http only to a loopback address), else ``ValueError``."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    try:
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        host = ""
    if (parts.scheme == "https" and host) or (parts.scheme == "http" and is_loopback_host(host)):
        return url.strip()
    raise ValueError(
        "FWWATCH_HEARTBEAT_URL must be an https URL (https://hc-ping.com/<uuid>); plain "
        "http only to 127.0.0.1/localhost"
    )


# One filter for the process, however many heartbeats (a `watch` makes one per cycle).
_hide_heartbeats = Redaction()
logging.getLogger("httpx").addFilter(_hide_heartbeats)


class Heartbeat:
    """Tells a monitor how each cycle went: :meth:`send` after every one."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = HEARTBEAT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._success_url = validate_heartbeat_url(url)
        self._failure_url = failure_url(self._success_url)
        self._timeout_s = timeout_s
        self._transport = transport
        #: Where the heartbeats go, as logs may show it (scheme and host).
        self.where = _public_part(urlsplit(self._success_url))
        for url in (self._success_url, self._failure_url):
            for spelling in _spellings(url):
                shown_as = _public_part(urlsplit(spelling)) + "/<hidden heartbeat>"
                _hide_heartbeats.add(spelling, shown_as)

    def __repr__(self) -> str:
        return f"Heartbeat({self.where}/<hidden>)"

    async def send(self, *, ok: bool) -> bool:
        """GET the URL (``ok``) or ``<URL>/fail``; ``False``, with a warning, if that failed."""
        url = self._success_url if ok else self._failure_url
        problem: str | None = None
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                httpx.AsyncClient(
                    timeout=self._timeout_s,
                    transport=self._transport,
                    headers={"User-Agent": f"fwwatch/{__version__}"},
                ) as http,
            ):
                response = await http.get(url)
        except TimeoutError:
            problem = f"no answer within {self._timeout_s:g} s"
        except (httpx.HTTPError, OSError) as exc:
            # The type only: an error's text may repeat the URL.
            problem = f"cannot reach it ({type(exc).__name__})"
        else:
            if not response.is_success:
                problem = f"it answered HTTP {response.status_code}"
        if problem is None:
            return True
        logger.warning(
            "the heartbeat to %s was not received: %s; the run's outcome is unchanged",
            self.where,
            problem,
        )
        return False


def failure_url(url: str) -> str:
    """``<URL>/fail``: the same URL with ``/fail`` after its path (its query kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/fail"))


def _spellings(url: str) -> set[str]:
    """``url`` as given and as httpx logs it: it lowers the host, drops a default port and
    escapes what needs it (``https://HC-PING.com:443/a b`` is ``https://hc-ping.com/a%20b``)."""
    try:
        return {url, str(httpx.URL(url))}
    except httpx.InvalidURL:  # then httpx cannot request it either
        return {url}


def _public_part(parts: SplitResult) -> str:
    """``scheme://host[:port]``: never the path, query or user info, which hold the key."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"
