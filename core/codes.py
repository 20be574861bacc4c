"""Validation codes: issued for one member and one amount, valid for a while, used once.

A code is an HOTP value (pyotp) from a secret derived with HMAC from SECRET_KEY, the
member, the amount and a random nonce; the database keeps only the nonce, so it alone
cannot reveal a code, and a code for one member or amount is useless for another. Asking
again for the same amount within the validity resends the same code (at most OTP_MAX_SENDS
times); another amount voids the earlier code; OTP_MAX_ATTEMPTS wrong entries void it; a
redemption uses it up. A member may be sent at most OTP_PERIOD_MAX_SENDS codes in any
OTP_PERIOD_SECONDS.

Every comparison of a code (a redemption's, a check's) runs under the member's row lock,
taken by `verify` itself: concurrent wrong entries are counted one after another, so no
count overwrites another and a code is compared at most OTP_MAX_ATTEMPTS times.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import func
from sqlalchemy.orm import aliased
from sqlalchemy.sql.selectable import ScalarSelect
from sqlmodel import Session, col, select

from core import ledger
from core.models import CodeState, Member, ValidationCode
from core.settings import Settings
from core.status import PointsError, Reason, WrongCode


def derive(settings: Settings, member_id: int, points: int, nonce: str) -> str:
    """The code a record stands for: needs SECRET_KEY, which the database never holds."""
    digest = hmac.new(settings.secret_key.encode(), f"{member_id}:{points}:{nonce}".encode(),
                      hashlib.sha256).digest()
    secret = base64.b32encode(digest).decode().rstrip("=")
    # pyotp makes 6 to 10 digits; a shorter code is the last digits of a 6-digit one, which
    # is exactly the RFC 4226 value for that length (the truncated value modulo 10**n).
    length = settings.otp_length
    return pyotp.HOTP(secret, digits=max(6, length)).at(0)[-length:]


@dataclass(frozen=True)
class Issued:
    record: ValidationCode
    code: str
    resent: bool


def latest(session: Session, member_id: int) -> ValidationCode | None:
    return session.exec(
        select(ValidationCode).where(ValidationCode.member_id == member_id)
        .order_by(col(ValidationCode.id).desc()).limit(1)
    ).first()


def sent_lately(settings: Settings, member_id: int, now: datetime) -> ScalarSelect[Any]:
    """How many codes the member was sent in the last OTP_PERIOD_SECONDS (a subquery; at
    OTP_PERIOD_MAX_SENDS no more are sent)."""
    earlier = aliased(ValidationCode)
    since = now - timedelta(seconds=settings.otp_period_seconds)
    return select(func.coalesce(func.sum(earlier.sends), 0)).where(
        earlier.member_id == member_id, col(earlier.issued_at) > since).scalar_subquery()


def issue(session: Session, settings: Settings, member: Member, points: int,
          now: datetime) -> Issued:
    """Issue (or resend) the code for `member` and `points`; 860 past the send limits."""
    assert member.id is not None
    # The codes sent lately and the latest code, in one query (no code: none sent).
    found = session.exec(
        select(ValidationCode, sent_lately(settings, member.id, now))
        .where(ValidationCode.member_id == member.id)
        .order_by(col(ValidationCode.id).desc()).limit(1)).first()
    current, lately = found if found is not None else (None, 0)
    if lately >= settings.otp_period_max_sends:
        raise PointsError(860, "too many validation codes were requested; try again later",
                          reason=Reason.PERIOD_LIMIT)
    if current is not None and current.state == CodeState.ACTIVE:
        if current.expires_at > now and current.points == points:
            if current.sends >= settings.otp_max_sends:
                raise PointsError(860, f"this code was already sent {current.sends} times",
                                  reason=Reason.SEND_LIMIT, sends=current.sends)
            current.sends += 1
            session.add(current)
            return Issued(current, derive(settings, member.id, points, current.nonce), True)
        current.state = CodeState.VOIDED
        session.add(current)
    record = ValidationCode(
        member_id=member.id, points=points, nonce=secrets.token_hex(8), issued_at=now,
        expires_at=now + timedelta(seconds=settings.otp_ttl_seconds))
    session.add(record)
    session.flush()
    return Issued(record, derive(settings, member.id, points, record.nonce), False)


def void(session: Session, record_id: int) -> None:
    """Void a code that could not be delivered, so nothing is left pending."""
    record = session.get(ValidationCode, record_id)
    if record is not None and record.state == CodeState.ACTIVE:
        record.state = CodeState.VOIDED
        session.add(record)


def verify(session: Session, settings: Settings, member: Member, points: int, code: str,
           now: datetime) -> ValidationCode:
    """The member's active code for `points` if `code` matches it; 808 otherwise.

    A wrong entry counts against the code even though the request fails: it raises
    `WrongCode` after writing the attempt, and the caller's unit of work keeps those writes
    (`Database.run(..., keep_writes_on=(WrongCode,))`). The member's row lock is taken first
    (at once when the caller holds it already), so the code is read after any concurrent
    comparison committed its count.
    """
    assert member.id is not None
    ledger.lock(session, member.id)
    record = latest(session, member.id)
    if record is None:
        raise PointsError(808, "no validation code was issued; ask for one", reason=Reason.NONE)
    if record.state == CodeState.USED:
        raise PointsError(808, "this validation code was already used; ask for a new one",
                          reason=Reason.USED)
    if record.state == CodeState.VOIDED:
        raise PointsError(808, "this validation code is no longer valid; ask for a new one",
                          reason=Reason.VOIDED)
    if record.expires_at <= now:
        raise PointsError(808, "this validation code has expired; ask for a new one",
                          reason=Reason.EXPIRED)
    if record.points != points:
        raise PointsError(808, f"the validation code was issued for {record.points} points, "
                               f"not {points}", reason=Reason.AMOUNT, code_points=record.points)
    expected = derive(settings, member.id, points, record.nonce)
    # Compared as pyotp does (NFKC: full-width digits count), but only short ASCII text
    # can match: anything else (a lone surrogate, another script) is a wrong code.
    entered = code.strip()
    entered = unicodedata.normalize("NFKC", entered) if len(entered) <= 64 else ""
    if entered.isascii() and pyotp.utils.strings_equal(entered, expected):
        return record
    record.attempts += 1
    left = settings.otp_max_attempts - record.attempts
    if left <= 0:
        record.state = CodeState.VOIDED
    session.add(record)
    if left <= 0:
        raise WrongCode(808, "too many wrong attempts: this validation code is void; "
                             "ask for a new one", reason=Reason.ATTEMPTS, attempts_left=0)
    raise WrongCode(808, f"{left} attempt{'s' if left != 1 else ''} left", reason=Reason.WRONG,
                    attempts_left=left)


def use(session: Session, record: ValidationCode, redemption_id: str) -> None:
    record.state = CodeState.USED
    record.redemption_id = redemption_id
    session.add(record)


_SEPARATORS = str.maketrans("", "", " -\u00a0\u2010\u2011\u2012\u2013\u2014\u2212")


def read(text: str, length: int) -> str | None:
    """The validation code in what a member typed, or None when the text cannot be one:
    exactly `length` decimal digits of any script or width (full-width, Devanagari: read
    as 0-9), with spaces and dashes between them ignored ("123 456", "123-456"). A text
    that cannot be a code is not compared, so it costs no attempt."""
    if len(text) > 64:
        return None
    typed = unicodedata.normalize("NFKC", text).translate(_SEPARATORS)
    if len(typed) != length or not typed.isdecimal():
        return None
    return "".join(str(unicodedata.decimal(digit)) for digit in typed)
