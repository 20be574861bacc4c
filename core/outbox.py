"""Validation codes waiting to be sent: written in the transaction that issued the code,
sent after it commits, never lost silently.

`enqueue` writes a `CodeDelivery` row in the update's own transaction, already taken by
the worker handling the update (state "sending", `claimed_at` now). After commit that
worker sends it (`send`) and records the outcome. A worker that dies in between leaves the
row taken; once `LEASE` has passed any worker finds it (`overdue`), takes it again and
sends it. A code that is no longer wanted by then (cancelled, used, expired) is dropped,
not sent. The code itself is never stored: it is derived again from its record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, update
from sqlmodel import Session, col, select

from core import codes
from core.db import Database
from core.delivery import CodeMessage
from core.models import (
    ChatState,
    CodeDelivery,
    CodeState,
    DeliveryState,
    Member,
    ValidationCode,
)
from core.results import CodeIssued, CodeToDeliver
from core.status import PointsError
from core.work import Work

if TYPE_CHECKING:
    from core.service import PointsService

# Longer than the slowest delivery (SMS retries and SMTP, each bounded by its timeout):
# a delivery taken longer ago than this was left by a worker that died.
LEASE = timedelta(seconds=120)
OVERDUE_BATCH = 50


@dataclass(frozen=True)
class Sent:
    """How a delivery went: `issued` where it went, or the `refusal` (860: no channel
    delivered it; the code was voided). `token`: the redemption it was for; `chat`: where
    to say so."""

    token: str | None
    chat: str | None
    issued: CodeIssued | None = None
    refusal: PointsError | None = None
    language: str = ""  # the chat's, to say how it went in; empty: DEFAULT_LANGUAGE


def enqueue(work: Work, code_id: int, *, resent: bool, channel_user: str | None,
            chat: str | None, token: str | None) -> int:
    """Write a delivery of code `code_id`, taken by this worker; its id."""
    row = CodeDelivery(code_id=code_id, resent=resent, channel_user=channel_user,
                       reply_to=chat, token=token, state=DeliveryState.SENDING,
                       created_at=work.now, claimed_at=work.now)
    work.session.add(row)
    work.session.flush()
    assert row.id is not None
    return row.id


def overdue(db: Database, now: datetime) -> list[tuple[int, str | None]]:
    """Deliveries taken longer than LEASE ago and not finished: (id, chat)."""
    return db.run(lambda s: [(row.id or 0, row.reply_to) for row in s.exec(
        select(CodeDelivery).where(CodeDelivery.state == DeliveryState.SENDING,
                                   col(CodeDelivery.claimed_at) < now - LEASE)
        .order_by(col(CodeDelivery.id)).limit(OVERDUE_BATCH))], write=False)


def send(service: PointsService, delivery_id: int, *, take_over: bool = False) -> Sent | None:
    """Send delivery `delivery_id` on every channel and record how it went. `take_over`:
    it was left by another worker (`overdue`): take it first, unless someone else did.
    None when there is nothing to send (taken by another worker, or no longer wanted)."""
    now = service.clock()
    ready = service.db.run(lambda s: _prepare(s, service, delivery_id, now, take_over),
                           write=take_over)
    if isinstance(ready, _Dropped):
        service.db.run(lambda s: _finish(s, delivery_id, DeliveryState.DROPPED, now))
        return None
    if ready is None:
        return None
    code, row = ready
    try:
        issued = service.deliver_validation_code(code)  # 860 voids the code itself
    except PointsError as refusal:
        service.db.run(lambda s: _finish(s, delivery_id, DeliveryState.FAILED,
                                         service.clock()))
        return Sent(row.token, row.reply_to, refusal=refusal, language=code.message.language)
    service.db.run(lambda s: _finish(s, delivery_id, DeliveryState.SENT, service.clock()))
    return Sent(row.token, row.reply_to, issued=issued, language=code.message.language)


# A delivery with its code, member and chat's language, in one query, built once.
_DELIVERY = (select(CodeDelivery, ValidationCode, Member, ChatState.language)
             .select_from(CodeDelivery)
             .outerjoin(ValidationCode, col(ValidationCode.id) == col(CodeDelivery.code_id))
             .outerjoin(Member, col(Member.id) == col(ValidationCode.member_id))
             .outerjoin(ChatState,
                        col(ChatState.channel_user) == col(CodeDelivery.channel_user))
             .where(col(CodeDelivery.id) == bindparam("id")))


class _Dropped:
    """The code is no longer wanted."""


def _prepare(session: Session, service: PointsService, delivery_id: int, now: datetime,
             take_over: bool) -> tuple[CodeToDeliver, CodeDelivery] | _Dropped | None:
    record: ValidationCode | None
    member: Member | None
    if take_over:
        row = session.get(CodeDelivery, delivery_id, with_for_update=True)
        if row is None or row.state != DeliveryState.SENDING:
            return None
        if row.claimed_at is not None and row.claimed_at >= now - LEASE:
            return None  # another worker took it meanwhile
        row.claimed_at = now
        session.add(row)
        record = session.get(ValidationCode, row.code_id)
        member = session.get(Member, record.member_id) if record is not None else None
        state = (session.get(ChatState, row.channel_user)
                 if row.channel_user is not None else None)
        language = state.language if state is not None else None
    else:  # this worker's own delivery, read in one query
        found = session.exec(_DELIVERY, params={"id": delivery_id}).first()
        if found is None or found[0].state != DeliveryState.SENDING:
            return None
        row, record, member, language = found
    if record is None or member is None or record.state != CodeState.ACTIVE \
            or record.expires_at <= now:
        return _Dropped()
    settings = service.settings
    assert member.id is not None and record.id is not None
    minutes = max(1, math.ceil((record.expires_at - now).total_seconds() / 60))
    message = CodeMessage(member.id, member.name, member.mobile, member.email,
                          codes.derive(settings, member.id, record.points, record.nonce),
                          record.points, settings.points_value(record.points), minutes,
                          row.reply_to, language or "")
    return CodeToDeliver(message, record.id, row.resent,
                         settings.otp_max_sends - record.sends, record.expires_at), row


def _finish(session: Session, delivery_id: int, state: DeliveryState, now: datetime) -> None:
    session.execute(update(CodeDelivery).where(col(CodeDelivery.id) == delivery_id)
                    .values(state=state, done_at=now))


