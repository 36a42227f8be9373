"""The Slack function under Lambda's retries, against the fake Slack webhook on loopback.

SNS invokes the function asynchronously; Lambda invokes it again when it raises, as often as
the template's ``MaximumRetryAttempts`` says, then hands the event to the failure queue.
These tests play that part and count the posts the webhook received.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from fwwatch.notify import NotifyError
from fwwatch.simulator import Fleet, FleetChannel, FleetDevice
from tests.aws.template import load_template
from tests.integration.fakes import FakeSlack, serving_fake_slack
from tests.integration.pipeline_harness import Pipeline

pytestmark = pytest.mark.integration

PLUG = "plugprod0001"


def fleet(names: list[str] | None = None, product_name: str = "Smart plug") -> Fleet:
    names = names or [f"Plug {i}" for i in range(4)]
    return Fleet(
        devices=[
            FleetDevice(
                device_id=f"plug{i:03d}",
                name=name,
                product_id=PLUG,
                product_name=product_name,
                category="cz",
                channels=[FleetChannel(channel=0, current_version="1.0.0")],
            )
            for i, name in enumerate(names)
        ]
    )


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with serving_fake_slack("/services/T000/B000/functionsecret") as fake:
        yield fake


@pytest.fixture
def news(
    make_simulator: Callable[..., Any], make_aws_stack: Callable[..., Any], slack: FakeSlack
) -> tuple[Pipeline, list[dict[str, Any]]]:
    """A stack whose Slack secret is the fake's URL, and the SNS envelopes of one release."""
    return release_news(make_simulator, make_aws_stack, slack, fleet())


def release_news(
    make_simulator: Callable[..., Any],
    make_aws_stack: Callable[..., Any],
    slack: FakeSlack,
    fleet: Fleet,
) -> tuple[Pipeline, list[dict[str, Any]]]:
    """The pipeline over ``fleet``, and the SNS envelopes of one release of its product."""
    sim = make_simulator(fleet=fleet)
    stack = make_aws_stack(
        parameters={"TuyaEndpoint": sim.url, "DigestDelaySeconds": 0},
        tuya_secret={"access_id": sim.access_id, "access_secret": sim.access_secret},
        slack_webhook_url=slack.url,
    )
    pipeline = Pipeline(stack, overrides={"RETRY_DELAY_S": "0", "TUYA_QPS": "500"})

    assert pipeline.cycle() == []  # the baseline
    sim.cloud.publish_release(PLUG, 0, "1.1.0")
    envelopes = pipeline.cycle()
    assert len(envelopes) == 1
    return pipeline, envelopes


def invoked_as_lambda_does(
    pipeline: Pipeline, envelopes: list[dict[str, Any]], **service: Any
) -> list[Any]:
    """Invoke the function with the SNS event, and again after each exception, as Lambda's
    asynchronous retries do; what each invocation answered or raised."""
    retries = load_template().function_properties("SlackFunction")["EventInvokeConfig"][
        "MaximumRetryAttempts"
    ]
    outcomes: list[Any] = []
    for _ in range(1 + int(retries)):
        try:
            outcomes.append(pipeline.deliver_to_slack(envelopes, pipeline.slack_service(**service)))
            break
        except NotifyError as exc:
            outcomes.append(exc)
    return outcomes


@contextmanager
def function_logs() -> Iterator[io.StringIO]:
    """What the functions' Powertools Logger writes (JSON lines)."""
    from fwwatch.aws.observability import logger

    buffer = io.StringIO()
    handlers = [
        h for h in logging.getLogger(logger.name).handlers if isinstance(h, logging.StreamHandler)
    ]
    assert handlers, "Powertools' stdout handler not found"
    streams = [handler.setStream(buffer) for handler in handlers]
    try:
        yield buffer
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            handler.setStream(stream)


#: Timeouts far under the fake's late answers (1 s): 0.1 s, then 0.3 s for the one retry.
SHORT = {"timeout_s": 0.1, "retry_timeout_s": 0.3, "max_wait_s": 0.05}


def test_a_post_answered_too_late_twice_ends_the_invocation_without_a_retry(
    news: tuple[Pipeline, list[dict[str, Any]]], slack: FakeSlack
) -> None:
    pipeline, envelopes = news
    # Given a webhook that posts each message but answers after every timeout
    slack.delays = [1.0] * 20
    # When SNS delivers the news to the function
    with function_logs() as logs:
        outcomes = invoked_as_lambda_does(pipeline, envelopes, **SHORT)
    # Then it posted twice (the post and its one retry), did not raise, so Lambda did not
    # invoke it again, and it logged an error saying the post may not have been delivered
    assert len(slack.received) == 2
    assert outcomes == [{"posted": 0, "uncertain": 1}]
    (error,) = [json.loads(line) for line in logs.getvalue().splitlines() if '"ERROR"' in line]
    assert error["message"].startswith("the Slack post may not have been delivered")
    assert (error["product_id"], error["version"], error["devices"]) == (PLUG, "1.1.0", 4)
    assert "functionsecret" not in logs.getvalue()


def test_5xx_outlasting_the_retries_still_raise_so_that_lambda_invokes_again(
    news: tuple[Pipeline, list[dict[str, Any]]], slack: FakeSlack
) -> None:
    pipeline, envelopes = news
    # Given a webhook answering 503 to the first invocation's four attempts, then 200
    slack.script = [(503, {})] * 4
    # When SNS delivers the news to the function
    outcomes = invoked_as_lambda_does(pipeline, envelopes, **SHORT)
    # Then the first invocation raised (nothing was posted), Lambda's retry posted it once
    assert [type(o).__name__ for o in outcomes] == ["NotifyError", "dict"]
    assert "gave up after 4 attempts" in str(outcomes[0])
    assert outcomes[1] == {"posted": 1, "uncertain": 0}
    assert (len(slack.times), len(slack.received)) == (5, 1)


def test_hostile_names_reach_slack_escaped_so_that_they_ping_and_link_nobody(
    make_simulator: Callable[..., Any], make_aws_stack: Callable[..., Any], slack: FakeSlack
) -> None:
    # Given devices and a product named to ping a channel, link away and clear a screen
    names = ["<!channel>", "<https://evil.example|click>", "\x1b[2JWiped", "a\nBcc: x@y"]
    pipeline, envelopes = release_news(
        make_simulator, make_aws_stack, slack, fleet(names, product_name="Plug & Co <!here>")
    )
    # When SNS delivers the release's news to the Slack function
    outcomes = invoked_as_lambda_does(pipeline, envelopes)
    # Then the one post shows every name literally: escaped once, on one line, no controls
    assert outcomes == [{"posted": 1, "uncertain": 0}]
    (post,) = slack.received
    texts = list(strings_in(post))
    assert not [text for text in texts if "<" in text or ">" in text]
    assert not [text for text in texts if "\x1b" in text or "\r" in text]
    devices = post["blocks"][3]["text"]
    assert devices["verbatim"] is True
    assert devices["text"].split("\n") == [
        "• `plug000` &lt;!channel&gt;",
        "• `plug001` &lt;https://evil.example|click&gt;",
        "• `plug002` Wiped",
        "• `plug003` a Bcc: x@y",
    ]
    assert "Plug &amp; Co &lt;!here&gt;" in post["text"]


def strings_in(value: Any) -> Iterator[str]:
    """Every string of a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
