"""Text from outside (Tuya's names, versions and messages) made harmless where it is shown.

Anyone who can name a device or a product in Tuya's app writes part of fwwatch's messages,
and each place they are shown obeys its own markup:

- a terminal obeys control characters and escape sequences (``\\x1b[2J`` clears the screen,
  ``\\r`` moves the cursor back over a line), and an e-mail header ends at a line break
  (``a\\nBcc: x@y`` would add a recipient); and wherever text is shown, Unicode's
  bidirectional controls reorder it (after ``\\u202e``, what fwwatch wrote beside a name, a
  version or a device count, reads right to left): :func:`strip_controls`;
- Slack reads ``&``, ``<`` and ``>`` as markup (``<!channel>`` notifies everyone,
  ``<https://evil|click>`` is a link): :func:`slack_escape`;
- the chat services behind Apprise read mentions and Markdown links in plain text
  (``@everyone`` on Discord, ``@channel`` on Mattermost, ``@room`` on Matrix,
  ``[Update now](https://evil)``): :func:`defuse_mentions`.

The core's text stays plain: what Tuya said, without its control characters. Each renderer
escapes for its own medium, once, at the edge.
"""

from __future__ import annotations

import re

__all__ = ["defuse_mentions", "slack_escape", "strip_controls"]

# ECMA-48 sequences, in their 7-bit (ESC ...) and 8-bit (C1) forms: whole, so that no
# parameter bytes are left behind. An unterminated string sequence is not matched whole;
# its ESC goes with the other control characters below, and what follows is plain text.
_ESCAPE_SEQUENCE = re.compile(
    r"""
      (?:\x1b\[|\x9b) [0-?]* [ -/]* [@-~]                   # CSI: cursor, erase, colours
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f]) [^\x07\x1b\x9c]*  # OSC (titles, hyperlinks,
      (?:\x07|\x1b\\|\x9c)                                  # clipboard), DCS, SOS, PM, APC
    | \x1b [ -/]* [0-~]                                     # the rest: ESC c resets a terminal
    """,
    re.VERBOSE,
)
# An @ that starts a mention (@everyone, <@123>, <@&role>, @**all**), and a masked link's "](".
_MENTION_OR_LINK = re.compile(r"(@)(?=[\w*&!])|(\])(?=\()")
# Invisible, and no mention or link is read across it (Discord's own advice for @everyone).
_ZERO_WIDTH_SPACE = "\u200b"
# Every way to break a line, for a terminal, a mail reader or a browser.
_LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
# C0 controls but the newline, DEL and C1 controls; line breaks and tabs are replaced first.
# Then the bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069):
# right-to-left letters are ordered by their own direction without them, and the marks
# U+200E/U+200F, which reorder nothing beyond themselves, stay.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_controls(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` without escape sequences or control characters: safe on a terminal or in a header.

    A line break (``\\r\\n``, ``\\r``, ``\\v``, ``\\u2028``...) becomes ``\\n`` when
    ``keep_newlines`` (a message's body), else a space (a name, a subject), as does a tab;
    every other control character (C0, DEL, C1) is removed, and so is every bidirectional
    embedding, override and isolate (``\\u202e``...).
    """
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = _LINE_BREAK.sub("\n" if keep_newlines else " ", text).replace("\t", " ")
    return _CONTROL.sub("", text)


def slack_escape(text: str) -> str:
    """``text`` as Slack shows it literally: ``&``, ``<`` and ``>`` as entities.

    For every text object (``mrkdwn`` and ``plain_text``) and the message's ``text``: no
    mention, channel or link can come out of it. Apply it once, to plain text.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def defuse_mentions(text: str) -> str:
    """``text`` as chat services show it without notifying or linking: a zero-width space
    after each ``@`` that would start a mention, and inside each Markdown ``](``.

    For the services Apprise posts to, which take plain text as Markdown or as their own
    markup (Discord, Mattermost, Rocket.Chat, Matrix, Zulip): ``@everyone`` and
    ``[click](https://evil)`` are shown, and are neither a mention nor a link.
    """
    return _MENTION_OR_LINK.sub(lambda match: match.group() + _ZERO_WIDTH_SPACE, text)
