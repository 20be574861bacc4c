"""Chat links: which member a chat user was verified as.

A chat user (for Telegram, the user id as text) is linked to a member once the phone
number they shared is verified (`core.chat`). A shared contact is read in international
form only (`contact_mobile`): a contact card carries the number as its owner's account has
it, with the country code, so reading its digits as a local number could only ever name
someone else. A member has one linked chat user: when another verifies the same mobile (a
recycled number, a new phone), the newest verification wins and the older chat user is
unlinked, marked `replaced_at` so that its chat can be told why.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from core.identifiers import normalise_mobile
from core.models import ChatLink
from core.text import storable


def contact_mobile(phone: str) -> str | None:
    """The mobile number on a shared contact in E.164, read as international (with or
    without the +, as Telegram sends it); None when it is not a valid number so read.
    Never read in DEFAULT_PHONE_REGION: that is for what staff type and import files."""
    raw = phone.strip()
    if not raw:
        return None
    return normalise_mobile(raw if raw.startswith("+") else "+" + raw, "ZZ")


def attach(session: Session, channel_user: str, member_id: int, now: datetime,
           display_name: str | None = None) -> None:
    """Link `channel_user` to `member_id` and unlink whoever else was linked to it. The
    caller holds the member's row lock (two accounts verifying one member are taken in
    turn). `display_name`: the chat user's name in the app, kept for staff."""
    for other in session.exec(select(ChatLink).where(
            ChatLink.member_id == member_id, ChatLink.channel_user != channel_user)):
        other.member_id, other.replaced_at = None, now
        session.add(other)
    session.flush()  # the old link is released before the new one takes the member
    link = session.get(ChatLink, channel_user) or ChatLink(channel_user=channel_user,
                                                           created_at=now)
    link.member_id, link.created_at, link.replaced_at = member_id, now, None
    link.display_name = storable(display_name or "").strip()[:200] or None
    session.add(link)
