"""The fleet report opened in a real headless Chromium, built from real runs in both modes.

One browser for the module (on one worker: the xdist group). Each report is made once per
module: three runs against the simulator (local mode), or the stack's functions on moto
(AWS), then ``fwwatch report``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from fwwatch.simulator import DEFAULT_ACCESS_ID, DEFAULT_ACCESS_SECRET, SimulatedCloud
from fwwatch.simulator import running_simulator as serve
from tests.aws.provision import REGION, provision_stack
from tests.integration.chromium import Chromium, Visit
from tests.integration.conftest import point_cli_at
from tests.integration.pipeline_harness import Pipeline
from tests.integration.report_scenarios import (
    EXPECTED_STATUSES,
    HOSTILE_IMG,
    HOSTILE_PRODUCT,
    HOSTILE_SCRIPT,
    LAMP_NAMES,
    RELEASE,
    SENSOR_NAMES,
    report_fleet,
    run_quietly,
    tell_the_story,
    write_report,
)

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("chromium")]

#: What a person reads on the page, as text: the figures, the tables, the device rows.
READ_THE_PAGE = """() => {
  const text = (node) => node ? node.textContent.trim() : null;
  const rows = (scope) => Array.from(scope.querySelectorAll("tbody tr"))
    .map((tr) => Array.from(tr.cells).map((td) => td.textContent.trim()));
  const cards = (section) => Array.from(document.querySelectorAll(section + " .card"))
    .map((card) => ({title: text(card.querySelector("h3")), note: text(card.querySelector(".note")),
                     rows: rows(card), charts: card.querySelectorAll("svg").length}));
  return {
    tiles: Object.fromEntries(Array.from(document.querySelectorAll(".tile"))
      .map((tile) => [tile.id, text(tile.querySelector("dd"))])),
    versions: cards("#versions"),
    releases: cards("#releases"),
    releasesNote: text(document.querySelector("#releases > .note")),
    attention: Array.from(document.querySelectorAll("#attention tbody .id")).map(text),
    devices: Array.from(document.querySelectorAll("#device-table tbody tr")).map((tr) => ({
      name: text(tr.querySelector(".name")), id: text(tr.querySelector(".id")),
      status: text(tr.querySelector(".badge")), product: text(tr.cells[1])})),
    shown: text(document.getElementById("shown")),
    scripts: document.scripts.length,
    images: document.images.length,
    elements: Array.from(new Set(Array.from(document.querySelectorAll("body *"))
      .map((element) => element.localName))).sort(),
  };
}"""

#: The colour of an installed-version bar in the light scheme (--installed).
INSTALLED_BLUE = (0x2F, 0x6F, 0xDB)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    browser = Chromium()
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def local_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the story told by ``fwwatch run`` against the simulator."""
    folder = tmp_path_factory.mktemp("local-report")
    cloud = SimulatedCloud(
        report_fleet(), access_id=DEFAULT_ACCESS_ID, access_secret=DEFAULT_ACCESS_SECRET
    )
    with serve(cloud) as simulator, pytest.MonkeyPatch.context() as monkeypatch:
        point_cli_at(simulator, monkeypatch, folder)
        tell_the_story(cloud, run_quietly)
        write_report("--out", "report.html")
    return folder / "report.html"


@pytest.fixture(scope="module")
def aws_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the same story told by the stack's functions on moto."""
    page = tmp_path_factory.mktemp("aws-report") / "report.html"
    cloud = SimulatedCloud(
        report_fleet(), access_id=DEFAULT_ACCESS_ID, access_secret=DEFAULT_ACCESS_SECRET
    )
    with serve(cloud) as simulator, mock_aws():
        stack = provision_stack(
            parameters={"TuyaEndpoint": simulator.url},
            tuya_secret={
                "access_id": simulator.access_id,
                "access_secret": simulator.access_secret,
            },
        )
        pipeline = Pipeline(stack, overrides={"RETRY_DELAY_S": "0"})
        try:
            tell_the_story(cloud, pipeline.cycle)
        finally:
            pipeline.close()
        table = stack.table_name("StateTable")
        write_report("--aws-table", table, "--aws-region", REGION, "--out", str(page))
    return page


def assert_clean(visit: Visit, page: Path) -> None:
    """The page asked for nothing but itself, said nothing, ran nothing it should not."""
    assert visit.requests == [page.resolve().as_uri()]
    assert visit.console == []
    assert visit.errors == []
    assert visit.dialogs == []


def assert_drawn(visit: Visit) -> None:
    """The screenshot is a page with text and charts, not a blank one."""
    colours = visit.colours()
    assert len(colours) > 200
    assert INSTALLED_BLUE in colours  # the bars of the version charts


def test_the_local_report_shows_what_the_runs_stored(chromium: Chromium, local_page: Path) -> None:
    # When the report of three runs (a release, an install, a failure, an offline sensor)
    # is opened
    visit = chromium.visit(local_page, READ_THE_PAGE)
    # Then it loaded nothing else, logged nothing, and drew its charts
    assert_clean(visit, local_page)
    assert_drawn(visit)
    dom = visit.dom
    # and its summary holds the state's figures
    assert dom["tiles"] == {
        "tile-devices": "6",
        "tile-products": "2",
        "tile-up-to-date": "33%",
        "tile-on-offer": "2",
        "tile-updating": "0",
        "tile-failed": "1",
        "tile-unreached": "1",
        "tile-last-check": dom["tiles"]["tile-last-check"],
    }
    assert dom["tiles"]["tile-last-check"].endswith("UTC")
    # and each product's channel has a chart and its table: the lamps' versions, 3.1.0 on offer
    lamps = next(card for card in dom["versions"] if card["title"].startswith(HOSTILE_PRODUCT))
    assert lamps["charts"] == 1
    assert lamps["rows"] == [
        [f"{RELEASE} on offer", "1", "25%", "3"],
        ["3.0.0", "3", "75%", "-"],
    ]
    # and the release's adoption, per run: offered to four, then on one and offered to three
    (release,) = dom["releases"]
    assert release["title"].startswith(RELEASE)
    assert release["charts"] == 1
    assert [row[1:] for row in release["rows"]] == [["1", "3"], ["0", "4"]]  # latest first
    assert "1 of 4 device channels on it (25%)" in release["note"]
    # and every device is in the table, the failed update and the offline sensor first
    assert dom["attention"] == ["lamp01", "sens01"]
    assert [row["id"] for row in dom["devices"][:2]] == ["lamp01", "sens01"]
    assert {row["id"]: row["status"] for row in dom["devices"]} == EXPECTED_STATUSES
    assert {row["name"] for row in dom["devices"]} == {*LAMP_NAMES, *SENSOR_NAMES}
    assert dom["shown"] == "Showing 6 of 6 device channels"


def test_hostile_names_are_shown_as_text_and_run_nothing(
    chromium: Chromium, local_page: Path
) -> None:
    # Given devices named <script>alert(1)</script> and <img src=x onerror=...>, and a
    # product whose name would end the page's data and open a comment
    visit = chromium.visit(local_page, READ_THE_PAGE)
    dom = visit.dom
    # Then they are shown as those characters
    names = {row["id"]: row["name"] for row in dom["devices"]}
    assert (names["lamp01"], names["lamp02"]) == (HOSTILE_SCRIPT, HOSTILE_IMG)
    assert {row["product"] for row in dom["devices"] if row["id"].startswith("lamp")} == {
        f"{HOSTILE_PRODUCT} (lampprod0001)"
    }
    # and no alert opened, no image was requested, no element came of them
    assert visit.dialogs == []
    assert visit.requests == [local_page.resolve().as_uri()]
    assert dom["images"] == 0
    assert dom["scripts"] == 2  # the page's data and its code
    assert "img" not in dom["elements"]


def test_the_device_table_filters_and_sorts(chromium: Chromium, local_page: Path) -> None:
    probe = """() => Array.from(document.querySelectorAll("#device-table tbody .id"))
      .map((cell) => cell.textContent)"""

    # When a person shows only the devices offered an update, sorted by device, descending
    def offered_by_name_descending(page: Any) -> None:
        page.select_option("#status-filter", "update on offer")
        page.click("button[data-sort=device]")
        page.click("button[data-sort=device]")

    offered = chromium.visit(local_page, probe, act=offered_by_name_descending)
    # Then the two lamps offered 3.1.0 are listed, "Hall lamp" (lamp03) before "<img..."
    assert offered.dom == ["lamp03", "lamp02"]

    # When a person types part of a name
    def search(page: Any) -> None:
        page.fill("#filter", "window")

    found = chromium.visit(local_page, probe, act=search)
    # Then only that device is shown
    assert found.dom == ["sens01"]
    assert found.console == []


def test_the_page_reads_on_a_phone_in_the_dark(chromium: Chromium, local_page: Path) -> None:
    probe = """() => ({
      width: document.documentElement.scrollWidth,
      background: getComputedStyle(document.body).backgroundColor,
      columns: getComputedStyle(document.querySelector(".pair")).gridTemplateColumns,
    })"""
    # When the report is opened on a phone set to dark mode
    visit = chromium.visit(local_page, probe, width=390, height=844, color_scheme="dark")
    # Then nothing is wider than the screen (wide tables scroll in their own box), the
    # page is dark, and a chart and its table stand one above the other
    assert visit.dom["width"] <= 390
    assert visit.dom["background"] == "rgb(13, 17, 23)"
    assert len(visit.dom["columns"].split()) == 1
    assert visit.errors == []


def test_the_page_prints_in_light_colours_without_its_controls(
    chromium: Chromium, local_page: Path
) -> None:
    probe = """() => ({
      controls: getComputedStyle(document.querySelector(".controls")).display,
      background: getComputedStyle(document.body).backgroundColor,
      failed: getComputedStyle(document.querySelector("#tile-failed dd")).color,
    })"""
    # When the report is printed from a screen in dark mode
    visit = chromium.visit(
        local_page,
        probe,
        color_scheme="dark",
        act=lambda page: page.emulate_media(media="print"),
    )
    # Then the filters are left out, and the page is the light one, on white
    assert visit.dom == {
        "controls": "none",
        "background": "rgb(255, 255, 255)",
        "failed": "rgb(207, 34, 46)",  # --failed of the light scheme
    }


def test_the_aws_report_shows_what_the_stack_stored(chromium: Chromium, aws_page: Path) -> None:
    # When the report built from the AWS state table is opened
    visit = chromium.visit(aws_page, READ_THE_PAGE)
    # Then it is as clean and as drawn as the local one, with the same fleet
    assert_clean(visit, aws_page)
    assert_drawn(visit)
    dom = visit.dom
    assert (dom["tiles"]["tile-devices"], dom["tiles"]["tile-failed"]) == ("6", "1")
    assert dom["tiles"]["tile-unreached"] == "1"
    assert {row["id"]: row["status"] for row in dom["devices"]} == EXPECTED_STATUSES
    assert {row["name"] for row in dom["devices"]} == {*LAMP_NAMES, *SENSOR_NAMES}
    # and the release's adoption is said to be an estimate (AWS keeps no history of runs)
    (release,) = dom["releases"]
    assert release["title"].startswith(RELEASE)
    assert "Estimated" in dom["releasesNote"]
    assert visit.dialogs == []
