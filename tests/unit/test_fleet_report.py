"""The fleet report's data from stored states, and its page: figures, order, escaping."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from fwwatch.aws.dynamo import to_dynamo
from fwwatch.aws.store_dynamodb import DynamoStateStore
from fwwatch.fleet_report import (
    AdoptionPoint,
    DeviceStatus,
    FleetReport,
    VersionTally,
    build_fleet_report,
    render_page,
)
from fwwatch.fleet_report.markup import html, json_for_script
from fwwatch.fleet_report.model import version_order
from fwwatch.ignored import IgnoredVersion, IgnoredVersions
from fwwatch.local.store_sqlite import SqliteStore
from fwwatch.state import DEVICE_LEVEL_CHANNEL, ChannelState, StoredError

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
PLUG = "plugproduct01"
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)"></script><!--'


def channel(
    device_id: str,
    current: str | None,
    *,
    target: str | None = None,
    status: int = 0,
    product_id: str = PLUG,
    product_name: str = "Smart plug",
    number: int = 0,
    name: str | None = None,
    changed: datetime = T0,
) -> ChannelState:
    return ChannelState(
        device_id=device_id,
        channel=number,
        channel_name="Main module",
        device_name=name or f"Plug {device_id}",
        product_id=product_id,
        product_name=product_name,
        current_version=current,
        target_version=target,
        upgrade_status=status,
        update_available=target is not None and target != current and status == 1,
        first_seen=T0,
        last_changed=changed,
    )


def device(device_id: str, error: StoredError | None = None, **names: Any) -> ChannelState:
    return ChannelState(
        device_id=device_id,
        channel=DEVICE_LEVEL_CHANNEL,
        channel_name="device",
        first_seen=T0,
        last_changed=T0,
        last_error=error,
        **names,
    )


def local_report(states: list[ChannelState], **kwargs: Any) -> FleetReport:
    checks = kwargs.pop("last_checks", {s.device_id: T0 for s in states})
    return build_fleet_report(
        states, mode="local", source="local state test", last_checks=checks, now=T0, **kwargs
    )


# ------------------------------------------------------------------ statuses and summary


def test_each_device_channel_gets_its_status_and_those_needing_attention_come_first() -> None:
    # Given a fleet with one device channel of each kind
    states = [
        channel("d-uptodate", "1.0.0"),
        device("d-uptodate"),
        channel("d-offer", "1.0.0", target="1.1.0", status=1),
        device("d-offer"),
        channel("d-running", "1.0.0", target="1.1.0", status=2),
        device("d-running"),
        channel("d-failed", "1.0.0", target="1.1.0", status=4),
        device("d-failed"),
        channel("d-offline", "1.0.0"),
        device("d-offline", StoredError(code=2001, msg="device is offline")),
        channel("d-busy", "1.0.0"),
        device("d-busy", StoredError(code=None, msg="HTTP 503; gave up after 8 attempts")),
        device("d-gone", StoredError(code=2010, msg="no such device"), product_id=PLUG),
    ]
    # When the report is built
    report = local_report(states)
    # Then every row has the status its facts give, in attention order
    assert [(row.device_id, row.status) for row in report.devices] == [
        ("d-failed", DeviceStatus.FAILED),
        ("d-offline", DeviceStatus.OFFLINE),
        ("d-busy", DeviceStatus.NOT_CHECKED),
        ("d-gone", DeviceStatus.DEVICE_ERROR),
        ("d-running", DeviceStatus.UPDATING),
        ("d-offer", DeviceStatus.ON_OFFER),
        ("d-uptodate", DeviceStatus.UP_TO_DATE),
    ]
    assert report.devices[1].error == "[2001] device is offline"
    assert report.devices[3].channel is None  # no check gave a channel of it
    # and the summary counts them: updates per device channel, the rest per device
    summary = report.summary
    assert (summary.devices, summary.products, summary.up_to_date) == (7, 1, 1)
    assert (summary.on_offer, summary.updating, summary.failed) == (1, 1, 1)
    assert (summary.offline, summary.not_checked, summary.device_errors) == (1, 1, 1)
    assert summary.up_to_date_share == pytest.approx(1 / 7)
    assert summary.last_check == T0


def test_a_device_checked_but_never_settled_is_listed_as_not_checked() -> None:
    report = local_report([], last_checks={"d-waiting": T0})
    assert [(row.device_id, row.status) for row in report.devices] == [
        ("d-waiting", DeviceStatus.NOT_CHECKED)
    ]


def test_an_offer_of_an_ignored_version_is_marked_ignored() -> None:
    ignored = IgnoredVersions((IgnoredVersion(PLUG, "1.1.0", None, T0),))
    report = local_report(
        [channel("d1", "1.0.0", target="1.1.0", status=1), device("d1")], ignored=ignored
    )
    assert report.devices[0].ignored


# ------------------------------------------------------------------ versions per product


def test_versions_are_listed_newest_first_with_numbers_compared_as_numbers() -> None:
    # Given devices on 1.9.2 and 1.10.0, and one offered 1.11.0 that nobody has yet
    states = [
        channel("d1", "1.9.2"),
        channel("d2", "1.10.0"),
        channel("d3", "1.9.2", target="1.11.0", status=1),
    ]
    # When the report is built
    (product,) = local_report(states).products
    # Then each version has its devices, the offer is listed, and 1.10.0 is above 1.9.2
    assert [(s.version, s.installed, s.offered) for s in product.versions] == [
        ("1.11.0", 0, 1),
        ("1.10.0", 1, 0),
        ("1.9.2", 2, 0),
    ]
    assert product.device_channels == 3
    assert [offer.version for offer in product.offers] == ["1.11.0"]
    assert version_order("1.10.0") > version_order("1.9.2") > version_order("1.9")


def test_devices_are_listed_as_people_sort_names_whatever_the_names_hold() -> None:
    # Given names with numbers, a superscript digit and a run of digits too long for int()
    names = ["Plug 10", "plug 9", "Plug x²", "Plug " + "9" * 5000, "Plug 1.5"]
    states = [channel(f"d{n}", "1.0.0", name=name) for n, name in enumerate(names)]
    # When the report is built
    rows = local_report(states).devices
    # Then Plug 9 comes before Plug 10, case aside, and no name breaks the order
    assert [row.device_name for row in rows] == [
        "Plug 1.5",
        "plug 9",
        "Plug 10",
        "Plug " + "9" * 5000,
        "Plug x²",
    ]


# ------------------------------------------------------------------ adoption over time


def at(run: int) -> datetime:
    return T0 + timedelta(hours=6 * run)


def tally(run: int, version: str, installed: int, offered: int) -> VersionTally:
    return VersionTally(
        run_id=f"run{run}",
        at=at(run),
        product_id=PLUG,
        channel=0,
        version=version,
        installed=installed,
        offered=offered,
    )


def test_a_release_adoption_comes_from_the_runs_and_keeps_only_the_changes() -> None:
    # Given five runs: 1.1.0 offered to 3 devices in run 1, installed on one in run 3,
    # on two in run 4
    history = [
        tally(0, "1.0.0", 3, 0),
        tally(1, "1.0.0", 3, 0),
        tally(1, "1.1.0", 0, 3),
        tally(2, "1.0.0", 3, 0),
        tally(2, "1.1.0", 0, 3),
        tally(3, "1.0.0", 2, 0),
        tally(3, "1.1.0", 1, 2),
        tally(4, "1.0.0", 1, 0),
        tally(4, "1.1.0", 2, 1),
    ]
    states = [
        channel("d1", "1.1.0", status=3),
        channel("d2", "1.1.0", status=3),
        channel("d3", "1.0.0", target="1.1.0", status=1),
    ]
    # When the report is built with that history
    report = local_report(states, history=history)
    # Then the one release is 1.1.0 (1.0.0 was never offered), from its first sighting,
    # with the runs where its figures changed (run 2 repeats run 1)
    (release,) = report.releases
    assert (release.version, release.first_seen, release.estimated) == ("1.1.0", at(1), False)
    assert [(p.at, p.installed, p.offered) for p in release.points] == [
        (at(1), 0, 3),
        (at(3), 1, 2),
        (at(4), 2, 1),
    ]
    assert (release.installed, release.offered, release.device_channels) == (2, 1, 3)
    assert report.history_since == T0


def test_a_release_on_offer_that_no_run_counted_yet_has_one_point_now() -> None:
    states = [channel("d1", "1.0.0", target="1.2.0", status=1)]
    (release,) = local_report(states, history=[tally(0, "1.0.0", 1, 0)]).releases
    assert release.points == [AdoptionPoint(at=T0, installed=0, offered=1)]


def test_without_a_history_adoption_is_estimated_from_each_device_s_last_change() -> None:
    # Given the AWS state: two devices got 1.1.0 by an update (status 3), an hour apart,
    # and a third is offered it
    states = [
        channel("d1", "1.1.0", status=3, changed=T0 + timedelta(hours=1)),
        channel("d2", "1.1.0", status=3, changed=T0 + timedelta(hours=2)),
        channel("d3", "1.0.0", target="1.1.0", status=1, changed=T0),
    ]
    # When the report is built without history or check times
    report = build_fleet_report(states, mode="aws", source="AWS table t (eu-central-1)", now=T0)
    # Then 1.1.0's adoption counts each device from its last change, and ends with now
    (release,) = report.releases
    assert release.estimated
    assert [(p.at, p.installed, p.offered) for p in release.points] == [
        (T0 + timedelta(hours=1), 1, None),
        (T0 + timedelta(hours=2), 2, 1),
    ]
    assert not report.checks_known
    assert report.summary.last_check == T0 + timedelta(hours=2)  # the latest change


# ------------------------------------------------------------------ the SQLite history


def test_each_finished_run_records_the_versions_the_fleet_is_on(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        # Given a stored fleet: two devices on 1.0.0, one of them offered 1.1.0
        store.save_batch(
            states=[channel("d1", "1.0.0", target="1.1.0", status=1), channel("d2", "1.0.0")],
            events=[],
            checks=[("d1", True, None), ("d2", True, None)],
            notifiers=[],
            run_id="r1",
            now=T0,
        )
        # When a run finishes
        store.start_run("r1", T0)
        store.finish_run("r1", {})
        # Then the history holds its tally per version
        history = store.version_history()
    assert [(t.run_id, t.product_id, t.version, t.installed, t.offered) for t in history] == [
        ("r1", PLUG, "1.0.0", 2, 0),
        ("r1", PLUG, "1.1.0", 0, 1),
    ]


def test_a_state_file_from_before_the_history_gets_it_when_opened(tmp_path: Path) -> None:
    # Given a state file without the run_versions table
    path = tmp_path / "old.sqlite3"
    SqliteStore(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("DROP TABLE run_versions")
        db.commit()
    # When it is opened and a run of a one-device fleet finishes
    with SqliteStore(path) as store:
        store.save_batch(
            states=[channel("d1", "1.0.0")],
            events=[],
            checks=[("d1", True, None)],
            notifiers=[],
            run_id="r1",
            now=T0,
        )
        store.start_run("r1", T0)
        store.finish_run("r1", {})
        # Then its history starts with that run
        history = store.version_history()
    assert [(t.run_id, t.version, t.installed) for t in history] == [("r1", "1.0.0", 1)]


# ------------------------------------------------------------------ the page


class _Elements(HTMLParser):
    """Every start tag, with its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.data: dict[str, str] = {}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.data.setdefault(self.tags[-1][1].get("id") or "script", data)


def hostile_report() -> FleetReport:
    states = [
        channel(
            "d1",
            "1.0.0" + HOSTILE,
            target="1.1.0<b>",
            status=1,
            name=HOSTILE,
            product_name=HOSTILE,
            product_id="prod\x1b[2J<i>",
        ),
        device("d1", StoredError(code=2001, msg=HOSTILE), device_name=HOSTILE),
    ]
    return local_report(states, history=[tally(0, "1.1.0<b>", 0, 1)])


def test_no_text_from_tuya_becomes_markup_on_the_page() -> None:
    # Given names, versions and an error message that are markup, and a control sequence
    page = render_page(hostile_report())
    # When the page is parsed as a browser does
    parser = _Elements()
    parser.feed(page)
    # Then its only tags are its own: two scripts (the data and the code), no img, no b, i
    tags = [tag for tag, _ in parser.tags]
    assert tags.count("script") == 2
    assert not {"img", "b", "i"} & set(tags)
    assert not any(name.startswith("on") for _, attrs in parser.tags for name in attrs)
    assert "\x1b" not in page
    # and the embedded data reads back as the same text, whole
    data = json.loads(parser.data["fleet-data"])
    assert data["rows"][0][1] == HOSTILE
    assert "</" not in parser.data["fleet-data"]
    assert "<!--" not in parser.data["fleet-data"]
    # and the text is shown escaped where the page says it
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_page_allows_only_its_own_script_and_style_and_loads_nothing() -> None:
    page = render_page(hostile_report())
    (policy,) = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    policy = unescape(policy)
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert script is not None
    assert style is not None

    def digest(text: str) -> str:
        return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    assert "default-src 'none'" in policy
    assert f"script-src 'sha256-{digest(script.group(1))}'" in policy
    assert f"style-src 'sha256-{digest(style.group(1))}'" in policy
    # nothing is loaded from elsewhere: no src or href but the page's own anchors
    assert not re.search(r"\b(src|href)=\"(?!#)", page)


def test_json_for_a_script_element_cannot_end_it_or_open_a_comment() -> None:
    encoded = json_for_script({"name": "</script><!--<script>", "line": "a\u2028b"})
    assert "<" not in encoded
    assert ">" not in encoded
    assert "\u2028" not in encoded
    assert json.loads(encoded) == {"name": "</script><!--<script>", "line": "a\u2028b"}


def test_the_template_escapes_values_and_strips_control_characters() -> None:
    assert html("<td>{name}</td>", name='<b a="1">\x07x\ny') == (
        "<td>&lt;b a=&quot;1&quot;&gt;x y</td>"
    )


def test_the_page_of_an_empty_state_says_so() -> None:
    page = render_page(local_report([], last_checks={}))
    assert "No device in the state yet" in page
    assert "No release has been seen on offer yet" in page


# ------------------------------------------------------------------ the AWS table, read


class PagedTable:
    """A DynamoDB client's Scan over items, ``page`` at a time, as DynamoDB pages."""

    def __init__(self, items: list[dict[str, Any]], page: int) -> None:
        self.items, self.page = items, page
        self.calls: list[dict[str, Any]] = []

    def scan(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        start = int(request.get("ExclusiveStartKey", {}).get("n", {}).get("N", 0))
        answer: dict[str, Any] = {"Items": self.items[start : start + self.page]}
        if start + self.page < len(self.items):
            answer["LastEvaluatedKey"] = {"n": {"N": str(start + self.page)}}
        return answer


def test_the_state_table_is_read_page_by_page_to_its_end() -> None:
    # Given a table of five states that DynamoDB answers two items at a time
    states = [channel(f"d{n}", "1.0.0") for n in range(5)]
    client = PagedTable([to_dynamo(state.to_item()) for state in states], page=2)
    # When every state is read
    found = list(DynamoStateStore(client, "fwwatch-StateTable").scan())
    # Then all five come back, in three Scans of that table, each going on from the last
    assert found == states
    assert [call.get("ExclusiveStartKey") for call in client.calls] == [
        None,
        {"n": {"N": "2"}},
        {"n": {"N": "4"}},
    ]
    assert {call["TableName"] for call in client.calls} == {"fwwatch-StateTable"}
