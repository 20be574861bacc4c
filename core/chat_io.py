"""What a chat says to the engine and what the engine answers, in no messaging app's terms.

An adapter (the Telegram bot, the terminal sandbox, another messaging app later) turns
what arrived into an `Input`, hands it to `core.chat.Chats.handle`, and renders the
`Outcome`: each `Reply` is a message key with its values and abstract buttons, each
effect something to run after the transaction committed (`DeliverCode`). The adapter
decides nothing: it never looks at a step or at what a text means.

Button data is short text the adapter hands back when a button is pressed; anyone can send
any text there, so `core.chat` accepts only the shapes it makes:

- ``p:<points>``   redeem this many points (a suggested amount)
- ``c:<token>``    confirm the pending redemption whose token this is
- ``r:<token>``    send that redemption's validation code again (or a new one)
- ``x:<token>``    cancel that pending redemption
- ``l:<language>`` speak this language from now on (a shipped catalogue: "en", "hi")

A staff chat's pending goodwill grant (above GOODWILL_CONFIRM_ABOVE) uses the same
``c:<token>`` and ``x:<token>`` buttons.

The token is the last part of the redemption's transaction number, so a button left from
an earlier redemption never acts on a later one.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Start:
    """The chat was opened (Telegram's /start)."""


@dataclass(frozen=True)
class Contact:
    """A phone number shared as a contact; `own` when it is the sender's own."""

    number: str
    own: bool


@dataclass(frozen=True)
class Text:
    """Anything typed that is not a command."""

    text: str


@dataclass(frozen=True)
class Command:
    """A command with its arguments: ("balance", ()), ("redeem", ("500",))."""

    name: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Press:
    """A button pressed: the data the button carried, as the chat handed it back."""

    data: str


Input = Start | Contact | Text | Command | Press


@dataclass(frozen=True)
class Sender:
    """Who sent an update: the chat user (for Telegram, the user id as text), the chat to
    answer in (where codes sent in the chat and late answers go), how the staff audit names
    them (`name`, e.g. "telegram:1001"; by default the chat user), whether the adapter
    knows them as staff (Telegram: STAFF_TELEGRAM_IDS), their name in the app (`display`:
    kept with the link when they verify, for staff to see), and the language their app says
    they use (Telegram's `language_code`, an IETF tag such as "hi" or "en-US"; empty when
    it says none): the chat's language until one is kept with the chat."""

    user: str
    chat: str | None = None
    name: str = ""
    staff: bool = False
    display: str = ""
    language: str = ""

    @property
    def who(self) -> str:
        return self.name or self.user


# ---------------------------------------------------------------- outcomes


class Keyboard(StrEnum):
    """The keyboard under the message box after a reply."""

    MENU = "menu"  # Balance, Redeem, History, Help
    CONTACT = "contact"  # one button that shares the member's phone number
    REMOVE = "remove"


@dataclass(frozen=True)
class Button:
    """An abstract button: `key` names its label (with `values`), `data` is handed back."""

    key: str
    data: str
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """One message: `key` names its text, `values` fill it; `buttons` are rows of buttons
    under it; `keyboard`, when given, replaces the keyboard."""

    key: str
    values: Mapping[str, Any] = field(default_factory=dict)
    buttons: tuple[tuple[Button, ...], ...] = ()
    keyboard: Keyboard | None = None


@dataclass(frozen=True)
class DeliverCode:
    """After commit: send the validation code waiting in delivery `delivery_id`
    (`core.chat.Chats.deliver`), then show what that answers."""

    delivery_id: int


Effect = DeliverCode


@dataclass(frozen=True)
class Outcome:
    """What an update comes to: replies to show, effects to run after commit. `duplicate`:
    the update was handled before (nothing to show). `settled`: the pressed button's
    message should lose its buttons (they acted, or can no longer act). `transition`: the
    name of the transition that decided it (for metrics and logs). `language`: the
    language the replies are to be written in (the chat's; empty: DEFAULT_LANGUAGE)."""

    replies: tuple[Reply, ...] = ()
    effects: tuple[Effect, ...] = ()
    duplicate: bool = False
    settled: bool = False
    transition: str = ""
    language: str = ""


def reply(key: str, *, buttons: tuple[tuple[Button, ...], ...] = (),
          keyboard: Keyboard | None = None, **values: Any) -> Reply:
    return Reply(key, values, buttons, keyboard)


def amount_button(points: int) -> Button:
    return Button("amount", f"p:{points}", {"points": points})


def language_buttons(languages: tuple[str, ...]) -> tuple[tuple[Button, ...], ...]:
    """One button per shipped language, each labelled in its own language."""
    return (tuple(Button("language", f"l:{language}", {"language": language})
                  for language in languages),)


TOKEN_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # noqa: S105  (an alphabet, not a secret)
TOKEN_LENGTH = 8


def new_token() -> str:
    """A fresh token for a pending request's buttons (``c:``, ``r:``, ``x:``)."""
    return "".join(secrets.choice(TOKEN_CHARS) for _ in range(TOKEN_LENGTH))


def is_token(value: str) -> bool:
    return len(value) == TOKEN_LENGTH and set(value) <= set(TOKEN_CHARS)


def confirm_buttons(token: str) -> tuple[tuple[Button, ...], ...]:
    return ((Button("confirm", f"c:{token}"), Button("cancel", f"x:{token}")),)


def code_buttons(token: str, *, resend: str | None = "resend"
                 ) -> tuple[tuple[Button, ...], ...]:
    """Resend (labelled `resend`: "resend" or "new_code"; None: no such button) and
    Cancel."""
    row = (Button(resend, f"r:{token}"),) if resend else ()
    return ((*row, Button("cancel", f"x:{token}")),)


__all__ = ["Button", "Command", "Contact", "DeliverCode", "Effect", "Input", "Keyboard",
           "Outcome", "Press", "Reply", "Sender", "Start", "Text", "amount_button",
           "code_buttons", "confirm_buttons", "language_buttons", "reply"]
