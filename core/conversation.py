"""Conversation state kept in the database, so that any worker process can take a chat's
next message and a restart resumes where the member was.

A chat user (for Telegram, the user id as text) is linked to a member once their shared
phone number is verified; their current step and the pending redemption live in
`ChatState`; each incoming update is claimed once, so a second delivery is ignored.
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
        """Link `channel_user` to the enrolled member whose mobile is `phone`."""
        # Telegram sends the number in international form, usually without the plus.
        raw = phone.strip()
        region = self.service.settings.default_phone_region
        mobile = (normalise_mobile(raw if raw.startswith("+") else "+" + raw, region)
                  or normalise_mobile(raw, region))
        if mobile is None:
            raise PointsError(802)

        def unit(session: Session) -> MemberView:
            member = ledger.find_member(session, Identifier(Kind.MOBILE, mobile))
            if member.customer_type == CustomerType.CAMPAIGN:
                raise PointsError(686)
            if member.customer_type != CustomerType.LOYALTY:
                raise PointsError(881)
            assert member.id is not None
            link = session.get(ChatLink, channel_user)
            if link is None:
                session.add(ChatLink(channel_user=channel_user, member_id=member.id,
                                     created_at=self.service.clock()))
            else:
                link.member_id = member.id
                session.add(link)
            return view(member)
        return self.db.run(unit)

    def member_id(self, channel_user: str) -> int | None:
        """The member this chat user was verified as, if any."""
        def unit(session: Session) -> int | None:
            link = session.get(ChatLink, channel_user)
            return link.member_id if link else None
        return self.db.run(unit, write=False)

    def member(self, channel_user: str) -> MemberView | None:
        """The member this chat user was verified as, read with the link in one go."""
        def unit(session: Session) -> MemberView | None:
            found = session.exec(select(Member).join(
                ChatLink, col(ChatLink.member_id) == col(Member.id)).where(
                ChatLink.channel_user == channel_user)).first()
            return view(found) if found is not None else None
        return self.db.run(unit, write=False)

    def link(self, channel_user: str, member_id: int) -> None:
        """Link without a contact (the sandbox's `/as`)."""
        def unit(session: Session) -> None:
            if session.get(Member, member_id) is None:
                raise PointsError(816)
            link = session.get(ChatLink, channel_user) or ChatLink(
                channel_user=channel_user, member_id=member_id,
                created_at=self.service.clock())
            link.member_id = member_id
            session.add(link)
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
