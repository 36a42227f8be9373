"""One process at a time per state file: ``run``, and each cycle of ``watch``, hold its lock.

Two processes delivering from one outbox would each post what the other has not yet marked
delivered: every message twice. So a cycle first takes an exclusive ``flock`` on
``<state>.lock``, a file beside the state. The kernel releases that lock when its holder
ends, however it ends (``kill -9`` included), so no stale lock is ever left to clean up and
no pid has to be probed for life. The holder writes its pid, command and start time into the
file, so that a process that cannot get the lock names the one that has it. A second
process waits for the lock a bounded time (``FWWATCH_LOCK_WAIT_S``), then gives up with
:class:`StateBusyError`.

``watch`` holds the lock for each cycle, not between cycles: ``status`` (which reads without
the lock) and a one-off ``run`` work while it waits. The lock is advisory and needs a file
system with working ``flock`` (any local one; NFS only where the client maps it to POSIX
locks, as Linux does).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["StateBusyError", "StateLockError", "holding_state", "lock_path"]

logger = logging.getLogger("fwwatch.local")

#: How often a waiting process tries the lock again.
POLL_S = 0.1


class StateLockError(Exception):
    """The state file's lock cannot be taken; the message says why and what to do."""


class StateBusyError(StateLockError):
    """Another process holds the state file's lock, for longer than this one would wait."""


def lock_path(state: Path) -> Path:
    """The lock file of a state file: ``state.sqlite3`` -> ``state.sqlite3.lock``."""
    return state.with_name(state.name + ".lock")


@contextlib.asynccontextmanager
async def holding_state(state: Path, *, wait_s: float, command: str) -> AsyncIterator[None]:
    """Hold ``state``'s lock for the block; wait up to ``wait_s`` seconds for it (0: not).

    Raises :class:`StateBusyError` naming the holder when the wait runs out, and
    :class:`StateLockError` when the lock file cannot be opened or locked at all.
    """
    path = lock_path(state)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StateLockError(
            f"cannot open the state's lock file {path} ({exc.strerror or exc}); "
            "check FWWATCH_STATE or --state"
        ) from None
    try:
        await _acquire(fd, state, wait_s)
        try:
            _write_holder(fd, command)
            yield
        finally:
            # No name is left behind for a reader that opens the file after this.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


async def _acquire(fd: int, state: Path, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:  # ENOLCK: a file system without locks
            raise StateLockError(
                f"cannot lock {lock_path(state)} ({exc.strerror or exc}); keep the state "
                "(FWWATCH_STATE or --state) on a local file system"
            ) from None
        remaining = deadline - time.monotonic()
        holder = _describe_holder(fd)
        if remaining <= 0:
            waited = f"waited {wait_s:g} s" if wait_s > 0 else "FWWATCH_LOCK_WAIT_S=0, no wait"
            raise StateBusyError(
                f"the state file {state} is in use by {holder} ({waited}); let it finish, "
                "or set FWWATCH_LOCK_WAIT_S to wait longer"
            )
        if not told:
            logger.info("the state file is in use by %s; waiting up to %g s", holder, wait_s)
            told = True
        await asyncio.sleep(min(POLL_S, remaining))


def _write_holder(fd: int, command: str) -> None:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    record = json.dumps({"pid": os.getpid(), "command": command, "since": since})
    os.ftruncate(fd, 0)
    os.pwrite(fd, (record + "\n").encode(), 0)


def _describe_holder(fd: int) -> str:
    """``fwwatch run (pid 4242, since 2026-12-01T06:00:00+00:00)``, as far as it is known."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        pid, command, since = int(holder["pid"]), str(holder["command"]), str(holder["since"])
    except (OSError, ValueError, KeyError, TypeError):
        # The holder has the lock but has not written its name yet (or an older version).
        return "another fwwatch process"
    return f"fwwatch {command} (pid {pid}, since {since})"
