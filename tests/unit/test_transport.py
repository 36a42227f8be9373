"""The wire under the client: connections handed out idle-first, and the proxy from the
environment. httpx's MockTransport stands in for the network; no socket is opened."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from pathlib import Path

import certifi
import httpx
import pytest

from fwwatch.tuya.transport import Connections, environment_proxy, tls_context

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_no_proxy_variables_means_a_direct_connection(clean_proxy_env: pytest.MonkeyPatch) -> None:
    assert environment_proxy(httpx.URL("https://openapi.tuyaeu.com")) is None


def test_the_proxy_of_the_endpoint_scheme_is_used(clean_proxy_env: pytest.MonkeyPatch) -> None:
    clean_proxy_env.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    clean_proxy_env.setenv("HTTP_PROXY", "http://other.corp:8080")
    assert environment_proxy(httpx.URL("https://openapi.tuyaeu.com")) == "http://proxy.corp:3128"
    assert environment_proxy(httpx.URL("http://127.0.0.1:8760")) == "http://other.corp:8080"


def test_all_proxy_applies_and_a_bare_host_gets_a_scheme(
    clean_proxy_env: pytest.MonkeyPatch,
) -> None:
    clean_proxy_env.setenv("ALL_PROXY", "proxy.corp:3128")
    assert environment_proxy(httpx.URL("https://openapi.tuyaus.com")) == "http://proxy.corp:3128"


def test_no_proxy_bypasses_the_proxy_for_listed_hosts(clean_proxy_env: pytest.MonkeyPatch) -> None:
    clean_proxy_env.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    clean_proxy_env.setenv("NO_PROXY", "localhost,.tuyaeu.com")
    assert environment_proxy(httpx.URL("https://openapi.tuyaeu.com")) is None
    assert environment_proxy(httpx.URL("https://openapi.tuyaus.com")) == "http://proxy.corp:3128"


def test_no_proxy_star_or_host_and_port_bypass_the_proxy(
    clean_proxy_env: pytest.MonkeyPatch,
) -> None:
    clean_proxy_env.setenv("HTTP_PROXY", "http://proxy.corp:3128")
    clean_proxy_env.setenv("NO_PROXY", "example.org, *")
    assert environment_proxy(httpx.URL("http://openapi.tuyaeu.com")) is None
    clean_proxy_env.setenv("NO_PROXY", "127.0.0.1:8760")
    assert environment_proxy(httpx.URL("http://127.0.0.1:8760")) is None
    assert environment_proxy(httpx.URL("http://127.0.0.1:9999")) == "http://proxy.corp:3128"


class Recorder:
    """A transport that answers after a pause and remembers what it saw, and when."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        return httpx.Response(200, json={"success": True, "result": request.url.path})


async def test_a_request_carries_the_base_url_query_headers_and_timeout() -> None:
    recorder = Recorder()
    connections = Connections(
        "https://openapi.tuyaeu.com/", 2, timeout_s=7.0, transport=httpx.MockTransport(recorder)
    )
    response = await connections.send(
        "GET", "/v1.0/token", params={"grant_type": 1}, headers={"t": "1"}
    )
    assert response.json() == {"success": True, "result": "/v1.0/token"}
    sent = recorder.requests[0]
    assert str(sent.url) == "https://openapi.tuyaeu.com/v1.0/token?grant_type=1"
    assert sent.headers["t"] == "1"
    assert sent.headers["User-Agent"] == "fwwatch"
    assert sent.headers["Accept-Encoding"] == "gzip, deflate"
    assert sent.extensions["timeout"]["read"] == 7.0
    assert response.request is sent


async def test_as_many_requests_as_connections_run_at_once_and_no_more() -> None:
    recorder = Recorder()
    connections = Connections(
        "https://openapi.tuyaeu.com", 3, timeout_s=5.0, transport=httpx.MockTransport(recorder)
    )

    async def one(n: int) -> httpx.Response:
        return await connections.send("GET", f"/d/{n}", headers={})

    answers = await asyncio.gather(*(one(n) for n in range(3)))
    assert [a.json()["result"] for a in answers] == ["/d/0", "/d/1", "/d/2"]
    assert recorder.most_in_flight == 3
    # A fourth at once is the caller's bug (it bounds concurrency), not a silent queue.
    outcomes = await asyncio.gather(*(one(n) for n in range(4)), return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert "bound the concurrency" in str(errors[0])


async def test_real_transports_are_one_per_connection_and_share_one_tls_context(
    clean_proxy_env: pytest.MonkeyPatch,
) -> None:
    connections = Connections("https://openapi.tuyaeu.com", 4, timeout_s=5.0)
    transports = connections.transports
    assert len(transports) == 4
    assert all(isinstance(t, httpx.AsyncHTTPTransport) for t in transports)
    contexts = {id(t._pool._ssl_context) for t in transports}  # type: ignore[attr-defined]
    assert len(contexts) == 1
    assert all(t._pool._max_connections == 1 for t in transports)  # type: ignore[attr-defined]
    await connections.aclose()


async def test_a_proxy_from_the_environment_is_given_to_every_connection(
    clean_proxy_env: pytest.MonkeyPatch,
) -> None:
    clean_proxy_env.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    connections = Connections("https://openapi.tuyaeu.com", 2, timeout_s=5.0)
    pools = [t._pool for t in connections.transports]  # type: ignore[attr-defined]
    assert all(type(pool).__name__ == "AsyncHTTPProxy" for pool in pools)
    await connections.aclose()


async def test_a_compressed_answer_is_read_decompressed() -> None:
    body = gzip.compress(b'{"success": true, "result": 1}')

    def gzipped(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"})

    connections = Connections(
        "https://openapi.tuyaeu.com", 1, timeout_s=5.0, transport=httpx.MockTransport(gzipped)
    )
    response = await connections.send("GET", "/x", headers={})
    assert response.json() == {"success": True, "result": 1}


async def test_a_failed_request_is_named_in_the_error_and_frees_its_connection() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    connections = Connections(
        "https://openapi.tuyaeu.com", 1, timeout_s=5.0, transport=httpx.MockTransport(refuse)
    )
    for _ in range(2):  # the one connection is free again after each failure
        with pytest.raises(httpx.ConnectError) as caught:
            await connections.send("GET", "/v1.0/token", headers={})
        assert caught.value.request.url.path == "/v1.0/token"


async def test_nothing_is_sent_after_close() -> None:
    recorder = Recorder()
    connections = Connections(
        "https://openapi.tuyaeu.com", 1, timeout_s=5.0, transport=httpx.MockTransport(recorder)
    )
    await connections.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await connections.send("GET", "/x", headers={})
    assert recorder.requests == []


def test_the_tls_context_is_made_once_per_ca_bundle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    default = tls_context()
    assert tls_context() is default
    assert default.verify_mode == ssl.CERT_REQUIRED
    assert default.check_hostname
    # Another bundle named in the environment gets its own context
    bundle = tmp_path / "company-ca.pem"
    bundle.write_text(Path(certifi.where()).read_text())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    company = tls_context()
    assert company is not default
    assert tls_context() is company
    # A bundle rewritten in place is loaded again
    bundle.write_text(Path(certifi.where()).read_text() + "\n")
    assert tls_context() is not company
    # And a bundle that is not there fails every time, rather than being remembered
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    for _ in range(2):
        with pytest.raises(FileNotFoundError):
            tls_context()
