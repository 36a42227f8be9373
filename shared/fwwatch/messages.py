"""Everything that crosses a queue or a topic, as one pydantic model each.

Producer and consumer use the same model, so a field cannot be dropped on the way:

- :class:`CheckMessage`: scheduler -> check queue -> checker (and checker -> queue, to retry).
- :class:`ListingContinuation`: scheduler -> listing queue -> scheduler (a run's listing
  handed on to the next invocation).
- :class:`DeadLetter`: checker -> dead-letter queue (devices that kept failing, with errors).
- :class:`DigestRequest`: checker or differ -> digest queue -> digest (and digest -> queue,
  when a request came too early).
- :class:`NewsMessage`: digest -> SNS topic (the JSON body of every protocol but e-mail) ->
  the Slack function and any other machine subscriber; :class:`RunDigestMessage` is the
  optional one message per run that lists every release of it.
- :class:`SnsDelivery`: the event SNS hands the Slack function (one news message a record).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Json, PlainSerializer

from .events import EventGroup, EventType, FirmwareEvent
from .state import DeviceInfo
from .tuya import TuyaError, validate_device_id

__all__ = [
    "CheckMessage",
    "DeadLetter",
    "DigestReason",
    "DigestRequest",
    "ErrorFacts",
    "ListingContinuation",
    "NewsDevice",
    "NewsMessage",
    "ReleasePart",
    "ReleaseSummary",
    "RunDigestMessage",
    "SnsDelivery",
]

#: A time as ``datetime.isoformat`` writes it (``+00:00``), the bodies' format since the start.
IsoTime = Annotated[
    datetime, PlainSerializer(datetime.isoformat, return_type=str, when_used="json")
]

#: Device IDs per check message at most (SQS's 256 KiB leaves room for many more).
MAX_DEVICES_PER_MESSAGE = 500


#: A run ID: the scheduled time (``2026-11-25T06:00:00Z``) or a request's ID.
RunId = Annotated[str, Field(min_length=1, max_length=64)]


class CheckMessage(BaseModel):
    """One check-queue message: a slice of a run's devices, and which check this is.

    ``part`` (from 0) is the message's place in the run's plan, and a retry keeps it. The
    scheduler numbers messages as it lists, so only the run's last message knows how many
    there are: it carries ``parts`` (a plan sent whole may carry it on every message). The
    checkers count the run's settled messages by :attr:`progress_key`, and the run is
    complete once ``parts`` is known and every part is settled. A message without a part
    (sent by hand) is checked all the same, and not counted.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: RunId
    device_ids: tuple[str, ...] = Field(min_length=1, max_length=MAX_DEVICES_PER_MESSAGE)
    attempt: int = Field(default=1, ge=1)
    infos: dict[str, DeviceInfo] = Field(default_factory=dict)
    part: int | None = Field(default=None, ge=0)
    parts: int | None = Field(default=None, ge=1)

    def model_post_init(self, __context: object) -> None:
        for device_id in self.device_ids:
            validate_device_id(device_id)

    @property
    def progress_key(self) -> str | None:
        """This message in the run's count: ``part.attempt``, the same for a redelivery."""
        return None if self.part is None else progress_key(self.part, self.attempt)

    @classmethod
    def plan(
        cls,
        run_id: str,
        device_ids: Sequence[str],
        *,
        per_message: int,
        infos: Mapping[str, DeviceInfo] | None = None,
    ) -> list[CheckMessage]:
        """A run's devices cut into messages of ``per_message`` device IDs each."""
        infos = infos or {}
        chunks = [
            device_ids[start : start + per_message]
            for start in range(0, len(device_ids), per_message)
        ]
        return [
            cls(
                run_id=run_id,
                device_ids=tuple(chunk),
                infos={device_id: infos[device_id] for device_id in chunk if device_id in infos},
                part=part,
                parts=len(chunks),
            )
            for part, chunk in enumerate(chunks)
        ]

    def retry(self, device_ids: Sequence[str]) -> CheckMessage:
        """The message that checks these of its devices again, as the next attempt."""
        return self.model_copy(
            update={
                "device_ids": tuple(device_ids),
                "attempt": self.attempt + 1,
                "infos": {d: self.infos[d] for d in device_ids if d in self.infos},
            }
        )


class ListingContinuation(BaseModel):
    """Go on listing a run: step ``step`` of its listing (the listing queue).

    Where the listing stands is in the run table (the run's listing item), not in the
    message: a duplicate of the message finds the step taken or done, and does nothing.
    """

    model_config = ConfigDict(frozen=True)

    run_id: RunId
    step: int = Field(ge=1)


def progress_key(part: int, attempt: int) -> str:
    """How a run's progress names check message ``part`` on its ``attempt``-th check."""
    return f"{part}.{attempt}"


class DigestReason(StrEnum):
    """Why a run's digest is asked for."""

    COMPLETE = "complete"  # every check message of the run is settled
    DEADLINE = "deadline"  # the run had news this long ago, complete or not
    LATE = "late"  # news came after the run's digest: a follow-up
    BUSY = "busy"  # another digest of the run was under way: try again after it


class DigestRequest(BaseModel):
    """Publish what a run's news holds that was not published yet (the digest queue).

    ``not_before`` (Unix time) is when it is due: SQS holds a message back 15 minutes at
    most, so a request that arrives earlier is sent on again by the digest. ``news_seq``,
    for a follow-up, is the run's count of news writes when it was asked for: a digest that
    started after that count covered it, and the request is dropped.
    """

    model_config = ConfigDict(frozen=True)

    run_id: RunId
    reason: DigestReason
    not_before: int = Field(default=0, ge=0)
    news_seq: int = Field(default=0, ge=0)


class ErrorFacts(BaseModel):
    """Tuya's facts about an error: its code, message and trace id."""

    model_config = ConfigDict(frozen=True)

    code: int | None = None
    msg: str
    tid: str | None = None

    @classmethod
    def from_error(cls, error: TuyaError) -> ErrorFacts:
        """The facts of a client error."""
        return cls(code=error.code, msg=error.msg, tid=error.tid)


class DeadLetter(BaseModel):
    """Devices of a run that failed transiently on every attempt, with their last errors."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    device_ids: tuple[str, ...]
    attempt: int
    errors: dict[str, ErrorFacts]

    @classmethod
    def of(cls, message: CheckMessage, errors: Mapping[str, TuyaError]) -> DeadLetter:
        """The dead letter of a message's devices that gave up."""
        return cls(
            run_id=message.run_id,
            device_ids=tuple(sorted(errors)),
            attempt=message.attempt,
            errors={device_id: ErrorFacts.from_error(e) for device_id, e in errors.items()},
        )


class NewsDevice(BaseModel):
    """One device of a news message."""

    model_config = ConfigDict(frozen=True)

    device_id: str
    device_name: str | None = None
    previous_version: str | None = None
    current_version: str | None = None
    target_version: str | None = None
    upgrade_status: int = 0
    occurred_at: IsoTime | None = None


class ReleasePart(EventGroup):
    """A group as one message of a run's digest tells it.

    ``release_devices`` is how many devices the release's message (every part of it) names:
    a release too big for one SNS message goes out in ``parts`` parts, each with its share
    of the devices (``events``). A ``follow_up`` tells of devices whose news came after the
    run's first message about the release.
    """

    release_devices: int = Field(ge=1)
    part: int = Field(default=1, ge=1)
    parts: int = Field(default=1, ge=1)
    follow_up: bool = False
    run_id: str | None = None

    @classmethod
    def of(
        cls,
        group: EventGroup,
        *,
        release_devices: int | None = None,
        part: int = 1,
        parts: int = 1,
        follow_up: bool = False,
        run_id: str | None = None,
    ) -> ReleasePart:
        """The group (already valid: not checked again) as one part of a release."""
        fields = {name: getattr(group, name) for name in EventGroup.model_fields}
        return cls.model_construct(
            **fields,
            release_devices=release_devices or group.device_count,
            part=part,
            parts=parts,
            follow_up=follow_up,
            run_id=run_id,
        )


class ReleaseFields(BaseModel):
    """What names a release: the event, the product, the channel and the version."""

    model_config = ConfigDict(frozen=True)

    type: EventType
    product_id: str | None = None
    product_name: str | None = None
    channel: int
    channel_name: str = ""
    version: str


class NewsMessage(ReleaseFields):
    """One group of news as machines read it: the topic's JSON body.

    ``devices`` are those of this message; when a release is published in parts,
    ``release_device_count`` is the whole release's, and ``part`` of ``parts`` says which.
    """

    model_config = ConfigDict(frozen=True)

    previous_versions: list[str] = Field(default_factory=list)
    device_count: int
    occurred_at: IsoTime
    summary: str = ""
    devices: list[NewsDevice]
    run_id: str | None = None
    release_device_count: int | None = None
    part: int | None = None
    parts: int | None = None
    follow_up: bool = False

    @classmethod
    def from_group(cls, group: EventGroup, *, summary: str = "") -> NewsMessage:
        """The message of a group (``summary``: the sentence people read)."""
        told: dict[str, Any] = {}
        if isinstance(group, ReleasePart):
            told = {
                "run_id": group.run_id,
                "release_device_count": group.release_devices,
                "part": group.part,
                "parts": group.parts,
                "follow_up": group.follow_up,
            }
        return cls(
            **told,
            type=group.type,
            product_id=group.product_id,
            product_name=group.product_name,
            channel=group.channel,
            channel_name=group.channel_name,
            version=group.version,
            previous_versions=group.previous_versions,
            device_count=group.device_count,
            occurred_at=group.occurred_at,
            summary=summary,
            devices=[
                NewsDevice(
                    device_id=event.device_id,
                    device_name=event.device_name,
                    previous_version=event.previous_version,
                    current_version=event.current_version,
                    target_version=event.target_version,
                    upgrade_status=event.upgrade_status,
                    occurred_at=event.occurred_at,
                )
                for event in group.events
            ],
        )

    def to_group(self) -> EventGroup:
        """The group again, as the producer had it."""
        events = tuple(
            FirmwareEvent(
                type=self.type,
                device_id=device.device_id,
                device_name=device.device_name,
                channel=self.channel,
                channel_name=self.channel_name,
                product_id=self.product_id,
                product_name=self.product_name,
                previous_version=device.previous_version,
                current_version=device.current_version,
                target_version=device.target_version,
                upgrade_status=device.upgrade_status,
                occurred_at=device.occurred_at or self.occurred_at,
            )
            for device in self.devices
        )
        group = EventGroup(
            type=self.type,
            product_id=self.product_id,
            product_name=self.product_name,
            channel=self.channel,
            channel_name=self.channel_name,
            version=self.version,
            events=events,
        )
        if self.release_device_count is None and self.run_id is None and not self.follow_up:
            return group
        return ReleasePart.of(
            group,
            release_devices=self.release_device_count,
            part=self.part or 1,
            parts=self.parts or 1,
            follow_up=self.follow_up,
            run_id=self.run_id,
        )

    def as_json(self) -> dict[str, Any]:
        """JSON-ready, as published."""
        return self.model_dump(mode="json")


class ReleaseSummary(ReleaseFields):
    """One release as the run's digest message lists it."""

    model_config = ConfigDict(frozen=True)

    device_count: int
    follow_up: bool = False
    subject: str
    summary: str
    first_devices: list[NewsDevice] = Field(default_factory=list)


class RunDigestMessage(BaseModel):
    """Every release of a run in one message (the ``DigestPerRun`` option)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["run"] = "run"
    run_id: str
    follow_up: bool = False
    releases: list[ReleaseSummary] = Field(min_length=1)

    @property
    def device_count(self) -> int:
        """The devices of every release listed."""
        return sum(release.device_count for release in self.releases)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready, as published."""
        return self.model_dump(mode="json")


class _SnsNotification(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    message: Json[NewsMessage] = Field(alias="Message")


class _SnsRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    sns: _SnsNotification = Field(alias="Sns")


class SnsDelivery(BaseModel):
    """The event SNS gives a subscribed function: one news message per record."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    records: list[_SnsRecord] = Field(default_factory=list, alias="Records")

    @property
    def messages(self) -> list[NewsMessage]:
        """The news messages, in the order delivered."""
        return [record.sns.message for record in self.records]
