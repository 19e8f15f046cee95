"""A real SMTP server on a loopback port for the tests that deliver mail over SMTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller

from tests.running_server import free_port


@contextmanager
def smtp_server(handler: Any) -> Iterator[int]:
    """aiosmtpd on 127.0.0.1 with ``handler`` (its ``handle_DATA`` decides each message's
    answer); the port it listens on. Stopped on leaving the block."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()
