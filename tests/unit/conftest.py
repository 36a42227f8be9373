"""Unit tests: pure code, no network. A socket guard makes an accidental connection fail."""

from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    # asyncio's event loop needs a Unix socketpair for its self-pipe; nothing else is allowed.
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
