"""When a run is complete: every planned message and every retry sent is settled."""

from __future__ import annotations

from fwwatch.aws.run_table import RunProgress


def progress(parts: int, settled: set[str], retries: set[str] | None = None) -> RunProgress:
    return RunProgress(
        run_id="run1", parts=parts, settled=frozenset(settled), retries=frozenset(retries or ())
    )


def test_a_run_is_complete_when_every_planned_message_is_settled() -> None:
    assert progress(3, {"0.1", "1.1", "2.1"}).complete
    assert not progress(3, {"0.1", "2.1"}).complete


def test_a_retry_sent_keeps_the_run_open_until_it_is_settled() -> None:
    # Given part 1's first check settled, having sent its second check
    waiting = progress(2, {"0.1", "1.1"}, retries={"1.2"})
    # Then the run waits for the retry, and is complete once it is settled
    assert not waiting.complete
    assert progress(2, {"0.1", "1.1", "1.2"}, retries={"1.2"}).complete


def test_a_message_counted_twice_counts_once_and_an_unplanned_run_never_completes() -> None:
    # A redelivered message adds the same key: it cannot stand in for another part
    assert not progress(2, {"0.1"}).complete
    # A run whose plan is unknown (messages sent by hand) is never complete: its deadline
    # digests it
    assert not progress(0, {"0.1"}).complete
