"""How a validation code reaches a member: the sender interface, and a sender that keeps
what it was given (for tests, the CLI and development).

An entry point supplies the real senders (chat, email, SMS). Each sender delivers on one
channel and raises `DeliveryFailed` when it cannot; the engine tries every configured
sender and refuses with 860 only when none delivered.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CodeMessage:
    """What a sender needs to deliver one validation code."""

    member_id: int
    name: str
    mobile: str | None
    email: str | None
    code: str
    points: int
    value: Decimal
    valid_minutes: int
    # The entry point's own address for the member (a chat id), when it has one.
    reply_to: str | None = None
    # The member's language (their chat's), for the text; empty: DEFAULT_LANGUAGE. The
    # text itself is `core.code_texts.CodeTexts`' (templates or the catalogue).
    language: str = ""


class DeliveryFailed(Exception):
    """This channel could not deliver the code (the reason is safe to log: no code in it)."""


class CodeSender(Protocol):
    channel: str

    def send(self, message: CodeMessage) -> str:
        """Deliver the code; return where it went (a mobile number, an address, 'chat')."""
        ...


class RecordingSender:
    """Keeps every code it is given; `fail` makes it refuse, to test the 860 path."""

    def __init__(self, channel: str = "log", *, fail: bool = False) -> None:
        self.channel = channel
        self.fail = fail
        self.sent: list[CodeMessage] = []
        self._lock = threading.Lock()

    def send(self, message: CodeMessage) -> str:
        if self.fail:
            raise DeliveryFailed(f"{self.channel} is switched off")
        with self._lock:
            self.sent.append(message)
        return message.mobile or message.email or "log"

    def last_code(self, member_id: int | None = None) -> str:
        for message in reversed(self.sent):
            if member_id is None or message.member_id == member_id:
                return message.code
        raise LookupError("no code was sent")
