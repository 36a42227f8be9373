"""Hostile text (names, versions from Tuya) is shown literally: it never pings, links or moves
the cursor, on the console, in e-mail or in Slack."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from fwwatch.events import EventGroup, EventType, FirmwareEvent, group_events
from fwwatch.messages import NewsMessage, ReleaseSummary, RunDigestMessage
from fwwatch.render import (
    render_run_subject,
    render_run_text,
    render_slack,
    render_subject,
    render_text,
    summary_sentence,
)
from fwwatch.safe_text import slack_escape, strip_controls

MANY = settings(max_examples=300, deadline=None)

#: Unicode's bidirectional embeddings, overrides and isolates: they reorder what follows.
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


#: Text as hostile as it comes: any code point, with escapes and line breaks more likely.
HOSTILE_TEXT = st.text(
    st.characters(codec="utf-8")
    | st.sampled_from(["\x1b", "[", "]", "\x07", "\x9b", "\x9d", "\\", "\r", "\n", "<", ">", "&"])
    | st.sampled_from(list(BIDI_CONTROLS)),
    max_size=40,
)

#: Names that meant harm, one of each kind.
HOSTILE_NAMES = [
    "<!channel>",
    "<https://evil.example|click>",
    "\x1b[2J\x1b[HLamp",
    "a\nBcc: x@y.example",
    "Plug\r\nSubject: pwned",
    "\x1b]0;pwned\x07Title",
    "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\",
    "Tom & Jerry &amp; co",
]


def control_characters(text: str) -> set[str]:
    return {char for char in text if unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS}


# ------------------------------------------------------------------------ strip_controls


@MANY
@given(HOSTILE_TEXT)
@example("\x1b[2J")
@example("\x1b\x00[2J")
@example("\x9b2J")
def test_a_line_from_strip_controls_holds_no_control_character_at_all(text: str) -> None:
    assert control_characters(strip_controls(text)) == set()


@MANY
@given(HOSTILE_TEXT)
@example("a\r\nb\rc\u2028d")
def test_a_body_from_strip_controls_keeps_newlines_only(text: str) -> None:
    stripped = strip_controls(text, keep_newlines=True)
    assert control_characters(stripped) <= {"\n"}
    assert not {"\u2028", "\u2029"} & set(stripped)


@MANY
@given(HOSTILE_TEXT, st.booleans())
def test_strip_controls_is_idempotent(text: str, keep_newlines: bool) -> None:
    once = strip_controls(text, keep_newlines=keep_newlines)
    assert strip_controls(once, keep_newlines=keep_newlines) == once


@MANY
@given(
    st.text(st.characters(exclude_categories=["Cc", "Zl", "Zp"], exclude_characters=BIDI_CONTROLS))
)
def test_text_without_controls_is_left_as_it_is(text: str) -> None:
    assert strip_controls(text) == text


def test_escape_sequences_go_whole_and_line_breaks_become_spaces() -> None:
    assert strip_controls("\x1b[2J\x1b[1;31mLamp\x1b[0m") == "Lamp"
    assert strip_controls("\x1b]0;pwned\x07Title") == "Title"
    assert strip_controls("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert strip_controls("a\nBcc: x@y") == "a Bcc: x@y"
    assert strip_controls("a\r\nb\rc", keep_newlines=True) == "a\nb\nc"
    assert strip_controls("Kitchen plug") == "Kitchen plug"


def test_a_bidi_override_cannot_reorder_the_text_after_it() -> None:
    # U+202E shows what follows right to left: "1.2.0 (3 devices)" would read reversed, and
    # a name could make a version seem another. Embeddings and isolates go with it; right-
    # to-left text itself is shown, ordered by its own letters.
    assert strip_controls("Lamp\u202e0.2.1\u202c ok") == "Lamp0.2.1 ok"
    assert strip_controls("\u2067\u202a\u202b\u202d\u2066\u2068x\u2069") == "x"
    assert strip_controls("مصباح المطبخ \u200f") == "مصباح المطبخ \u200f"


# ------------------------------------------------------------------------- slack_escape


def slack_unescape(text: str) -> str:
    """What Slack displays for escaped text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@MANY
@given(HOSTILE_TEXT)
def test_slack_escape_leaves_no_angle_bracket_and_no_bare_ampersand(text: str) -> None:
    escaped = slack_escape(text)
    assert not {"<", ">"} & set(escaped)
    assert escaped.count("&") == sum(escaped.count(e) for e in ("&amp;", "&lt;", "&gt;"))


@MANY
@given(HOSTILE_TEXT)
@example("&amp;")
def test_slack_shows_exactly_the_text_that_was_escaped(text: str) -> None:
    assert slack_unescape(slack_escape(text)) == text


# --------------------------------------------------------------- every rendering, hostile


def hostile_group(name: str) -> EventGroup:
    events = [
        FirmwareEvent(
            type=EventType.UPDATE_AVAILABLE,
            device_id=f"dev{i}",
            device_name=name,
            channel=0,
            channel_name=name,
            product_id=name,
            product_name=name,
            previous_version=name,
            current_version=name,
            target_version=f"2.0 {name}",
            occurred_at=datetime(2026, 11, 25, tzinfo=UTC),
        )
        for i in range(2)
    ]
    (group,) = group_events(events)
    return group


def strings_in(value: Any) -> Iterator[str]:
    """Every string of a JSON-like value, keys too."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def assert_safe_for_slack(message: dict[str, Any]) -> None:
    for text in strings_in(message):
        assert not {"<", ">"} & set(text), text
        assert control_characters(text) <= {"\n"}, text
    for text_object in _text_objects(message):
        if text_object["type"] == "mrkdwn":
            assert text_object["verbatim"] is True


def _text_objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("type") in ("mrkdwn", "plain_text") and "text" in value:
            yield value
        for item in value.values():
            yield from _text_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _text_objects(item)


@MANY
@given(HOSTILE_TEXT.filter(str.strip))
def test_no_name_makes_a_mention_a_link_or_a_control_in_the_slack_message(name: str) -> None:
    assert_safe_for_slack(render_slack(hostile_group(name)))


def test_a_hostile_name_is_shown_in_slack_escaped_once() -> None:
    message = render_slack(hostile_group("<!channel> & <https://evil.example|click>"))
    shown = "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
    assert shown in message["text"]
    assert shown in json.dumps(message["blocks"], ensure_ascii=False)
    assert "&amp;amp;" not in json.dumps(message)
    assert_safe_for_slack(message)


def test_the_slack_function_escapes_what_crossed_the_topic_once() -> None:
    # Given a group published on the topic (its JSON body) and read back by the function
    group = hostile_group("Tom & Jerry <!here>")
    body = json.loads(json.dumps(NewsMessage.from_group(group).as_json()))
    # When it is rendered for Slack, then the plain text is escaped once
    message = render_slack(NewsMessage.model_validate(body).to_group())
    assert "Tom &amp; Jerry &lt;!here&gt;" in message["text"]
    assert "&amp;amp;" not in json.dumps(message)


@MANY
@given(HOSTILE_TEXT)
def test_subjects_and_sentences_are_one_line_without_controls(name: str) -> None:
    group = hostile_group(name)
    for line in (render_subject(group), summary_sentence(group)):
        assert control_characters(line) == set()
        assert not {"\u2028", "\u2029"} & set(line)


@MANY
@given(HOSTILE_TEXT.filter(bool))
def test_a_name_cannot_add_a_line_to_the_mail_body(name: str) -> None:
    # The body is the fixed lines and one line per device: no more, whatever the names say
    lines = render_text(hostile_group(name)).split("\n")
    plain = render_text(hostile_group("plain")).split("\n")
    assert len(lines) == len(plain)
    assert all(control_characters(line) == set() for line in lines)


def test_the_run_digest_shows_hostile_names_on_their_own_lines() -> None:
    group = hostile_group("a\nBcc: x@y \x1b[2J")
    digest = RunDigestMessage(
        run_id="r\n1",
        releases=[
            ReleaseSummary(
                type=group.type,
                product_id=group.product_id,
                channel=group.channel,
                version=group.version,
                device_count=group.device_count,
                subject="s\nBcc: x@y",
                summary=summary_sentence(group),
                first_devices=NewsMessage.from_group(group).devices,
            )
        ],
    )
    text = render_run_text(digest)
    assert not any(line.startswith("Bcc") for line in text.split("\n"))
    assert control_characters(text) <= {"\n"}
    assert control_characters(render_run_subject(digest)) == set()
