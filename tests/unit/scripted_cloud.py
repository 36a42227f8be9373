"""A scripted Tuya cloud in-process (httpx's MockTransport): the real client, no socket."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from fwwatch.tuya import RetryPolicy, TuyaClient, TuyaSettings

SECRET = "unit-secret-3f9a0c7d2b1e4f5a6b7c8d9e"


def envelope(
    result: Any = None, *, code: int | None = None, msg: str = "", t: int | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": code is None,
        "t": t or int(time.time() * 1000),
        "tid": "tid-1",
    }
    if code is None:
        body["result"] = result
    else:
        body.update(code=code, msg=msg or f"error {code}")
    return body


Answer = Callable[[httpx.Request], httpx.Response | dict[str, Any]]


class ScriptedCloud:
    """Grants tokens and answers business calls from a queue of scripted answers."""

    def __init__(self, *answers: Answer | httpx.Response | dict[str, Any]) -> None:
        self.answers = list(answers)
        self.grants = 0
        self.refreshes = 0
        self.business: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1.0/token":
            self.grants += 1
            return httpx.Response(200, json=envelope(self._token(f"at-{self.grants}")))
        if path.startswith("/v1.0/token/"):
            self.refreshes += 1
            return httpx.Response(200, json=envelope(self._token(f"rt-{self.refreshes}")))
        self.business.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, httpx.Response):
            return answer
        produced = answer(request) if callable(answer) else answer
        if isinstance(produced, httpx.Response):
            return produced
        return httpx.Response(200, json=produced)

    @staticmethod
    def _token(name: str) -> dict[str, Any]:
        return {
            "access_token": name,
            "refresh_token": f"refresh-{name}",
            "expire_time": 7200,
            "uid": "u",
        }


def unit_settings() -> TuyaSettings:
    return TuyaSettings(
        access_id="unit-id", access_secret=SECRET, endpoint="https://openapi.tuyaeu.com", qps=1000
    )


def make_client(cloud: ScriptedCloud, **kwargs: Any) -> TuyaClient:
    kwargs.setdefault("retry", RetryPolicy(base_s=0.001))
    return TuyaClient(unit_settings(), transport=httpx.MockTransport(cloud), **kwargs)
