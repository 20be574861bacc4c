"""Conversation state kept in the database, so that any worker process can take a chat's
next message and a restart resumes where the member was.

A chat user (for Telegram, the user id as text) is linked to a member once their shared
phone number is verified; their current step and the pending redemption live in
`ChatState`; each incoming update is claimed once, so a second delivery is ignored.

A shared contact is read in international form only (`contact_mobile`): a contact card
carries the number as its owner's account has it, with the country code, so reading its
digits as a local number could only ever name someone else. A member has one linked chat
user: when another verifies the same mobile (a recycled number, a new phone), the newest
verification wins and the older chat user is unlinked, marked `replaced_at` so that the
chat can be told why (`was_replaced`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from core import ledger
from core.identifiers import Identifier, Kind, normalise_mobile
from core.models import ChatLink, ChatState, CustomerType, HandledUpdate, Member
from core.service import MemberView, PointsService, view
from core.status import PointsError


def contact_mobile(phone: str) -> str | None:
    """The mobile number on a shared contact in E.164, read as international (with or
    without the +, as Telegram sends it); None when it is not a valid number so read.
    Never read in DEFAULT_PHONE_REGION: that is for what staff type and import files."""
    raw = phone.strip()
    if not raw:
        return None
    return normalise_mobile(raw if raw.startswith("+") else "+" + raw, "ZZ")


@dataclass(frozen=True)
class State:
    step: str = "idle"
    points: int | None = None
    external_reference: str | None = None
    data: str = ""


class Conversations:
    """Links, steps and handled updates for one entry point's chats."""

    def __init__(self, service: PointsService) -> None:
        self.service = service
        self.db = service.db

    def verify_contact(self, channel_user: str, phone: str) -> MemberView:
        """Link `channel_user` to the enrolled member whose mobile is `phone` (read as
        international only: 802 when it is not a valid number so read). Any chat user
        linked to that member before is unlinked: the newest verification wins."""
        mobile = contact_mobile(phone)
        if mobile is None:
            raise PointsError(802)

        def unit(session: Session) -> MemberView:
            # Locked: two accounts verifying one member at once are taken in turn.
            member = ledger.find_member(session, Identifier(Kind.MOBILE, mobile), lock=True)
            if member.customer_type == CustomerType.CAMPAIGN:
                raise PointsError(686)
            if member.customer_type != CustomerType.LOYALTY:
                raise PointsError(881)
            assert member.id is not None
            self._attach(session, channel_user, member.id)
            return view(member)
        return self.db.run(unit)

    def _attach(self, session: Session, channel_user: str, member_id: int) -> None:
        """Link `channel_user` to `member_id` and unlink whoever else was linked to it.
        The caller holds the member's row lock."""
        now = self.service.clock()
        for other in session.exec(select(ChatLink).where(
                ChatLink.member_id == member_id, ChatLink.channel_user != channel_user)):
            other.member_id, other.replaced_at = None, now
            session.add(other)
        session.flush()  # the old link is released before the new one takes the member
        link = session.get(ChatLink, channel_user) or ChatLink(channel_user=channel_user,
                                                               created_at=now)
        link.member_id, link.created_at, link.replaced_at = member_id, now, None
        session.add(link)

    def member_id(self, channel_user: str) -> int | None:
        """The member this chat user was verified as, if any."""
        def unit(session: Session) -> int | None:
            link = session.get(ChatLink, channel_user)
            return link.member_id if link else None
        return self.db.run(unit, write=False)

    def was_replaced(self, channel_user: str) -> bool:
        """Whether this chat user was unlinked because another one verified the member
        (until they verify again)."""
        def unit(session: Session) -> bool:
            link = session.get(ChatLink, channel_user)
            return link is not None and link.member_id is None and link.replaced_at is not None
        return self.db.run(unit, write=False)

    def linked_user(self, member_id: int) -> str | None:
        """The chat user (Telegram user id) linked to this member, if any."""
        return self.db.run(lambda s: s.exec(select(ChatLink.channel_user).where(
            ChatLink.member_id == member_id)).first(), write=False)

    def member(self, channel_user: str) -> MemberView | None:
        """The member this chat user was verified as, read with the link in one go."""
        def unit(session: Session) -> MemberView | None:
            found = session.exec(select(Member).join(
                ChatLink, col(ChatLink.member_id) == col(Member.id)).where(
                ChatLink.channel_user == channel_user)).first()
            return view(found) if found is not None else None
        return self.db.run(unit, write=False)

    def link(self, channel_user: str, member_id: int) -> None:
        """Link without a contact (the sandbox's `/as`); as with a contact, whoever else
        was linked to the member is unlinked."""
        def unit(session: Session) -> None:
            if session.exec(select(Member.id).where(Member.id == member_id)
                            .with_for_update()).first() is None:
                raise PointsError(816)
            self._attach(session, channel_user, member_id)
        self.db.run(unit)

    def unlink(self, channel_user: str) -> None:
        self.db.run(lambda s: s.exec(delete(ChatLink).where(
            col(ChatLink.channel_user) == channel_user)))

    def state(self, channel_user: str) -> State:
        def unit(session: Session) -> State:
            row = session.get(ChatState, channel_user)
            if row is None:
                return State()
            return State(row.step, row.points, row.external_reference, row.data)
        return self.db.run(unit, write=False)

    def save(self, channel_user: str, state: State) -> None:
        def unit(session: Session) -> None:
            row = session.get(ChatState, channel_user) or ChatState(
                channel_user=channel_user, updated_at=self.service.clock())
            row.step, row.points = state.step, state.points
            row.external_reference, row.data = state.external_reference, state.data[:2000]
            row.updated_at = self.service.clock()
            session.add(row)
        self.db.run(unit)

    def first_delivery(self, key: str) -> bool:
        """Claim an incoming update; False when it was handled already."""
        def unit(session: Session) -> bool:
            if session.get(HandledUpdate, key[:64]) is not None:
                return False
            session.add(HandledUpdate(key=key[:64], created_at=self.service.clock()))
            return True
        # Two workers claiming at once: one insert wins, the other's unit runs again
        # (Database.run retries on a taken unique key) and then finds the claim.
        return self.db.run(unit)

    def forget_updates(self, older_than: timedelta) -> None:
        cutoff = self.service.clock() - older_than
        self.db.run(lambda s: s.exec(delete(HandledUpdate).where(
            col(HandledUpdate.created_at) < cutoff)))
