"""Tills: the HTTP API's clients (a till at a shop counter, a web shop's checkout), what each
may do, how one proves who it is, and the audit line of every call it makes.

A till authenticates as the platform's clients do: HTTP Basic with its name and the MD5 hex
of its password. What is stored is a slow hash of that MD5 (scrypt, a random salt, the
parameters kept with it), never the MD5 itself, so the table alone lets nobody call the
API. Passwords are made here, shown once (`add`, `rotate`) and never stored.

Failed logins are limited twice: per till in the database (`TILL_MAX_FAILED_LOGINS` wrong
passwords in a row lock it for `TILL_LOCKOUT_SECONDS`, whichever worker they reach), and
per address in this process's memory (`AddressLimiter`, a bounded LRU: each worker counts
its own, so N workers allow up to N times `TILL_ADDRESS_MAX_FAILED_LOGINS`). A locked till
or address is refused before its password is even compared.

Session-level: `add`, `rotate`, `disable`, `listing`, `find`, `count_failure`,
`clear_failures`. `Tills` holds the public methods of `PointsService`, among them
`authenticate`, `till_call` (one audit line for every call, allowed or refused: the one
place where API calls are recorded), `till_is_redeemable` (isredeemable as one read
transaction, the till's row read with the check; the line of a check without a code
deferred to `staff_audit.DeferredLines`, nothing else ever is) and `skips_validation`
(which till may redeem without a validation code).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar, cast

from sqlalchemy import Table, bindparam
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from core import ledger, redemption, rules, staff_audit
from core.models import Till
from core.results import Redeemable
from core.status import InputError, PointsError
from core.work import Engine, Work

if TYPE_CHECKING:
    from core.service import PointsService

T = TypeVar("T")
log = logging.getLogger(__name__)
# A till's name: what goes before the colon of HTTP Basic, so no colon, and nothing that
# needs quoting in a shell or a log.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# scrypt's cost: 16 MiB and some 50 ms a comparison (each successful login is remembered
# in memory afterwards, `_Verified`, so only new or wrong passwords pay it).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
PASSWORD_BYTES = 18  # 24 URL-safe characters
ADDRESSES_KEPT = 10_000  # the per-address limiter forgets the least recently failing beyond
TILLS: Table = Till.__table__  # type: ignore[attr-defined]
# A till by name, as a Core statement built once (a call's own lookup; see `Tills.checked`).
TILL_BY_NAME = core_select(TILLS).where(TILLS.c.name == bindparam("name"))


@dataclass(frozen=True)
class TillView:
    name: str
    enabled: bool
    skip_validation_allowed: bool
    created_at: datetime
    rotated_at: datetime | None
    failed_logins: int
    locked_until: datetime | None


@dataclass(frozen=True)
class TillPassword:
    """A till and its new password: shown once, stored nowhere."""

    till: TillView
    password: str


class TillsUnavailable(Exception):
    """The till could not be checked: the database did not answer (`status`: 815)."""

    def __init__(self, refusal: PointsError) -> None:
        super().__init__(refusal.status.message)
        self.status = refusal.status


class _Unsettled(Exception):
    """The login is not one this process has verified as it stands: `authenticate` it."""


class LoginRefused(Exception):
    """A till could not be authenticated. `reason` is for the audit and the log (unknown,
    wrong, disabled, locked, address, malformed), never for the client, which learns only
    that it failed; `retry_after` is the seconds until a lockout ends."""

    def __init__(self, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def md5hex(password: str) -> str:
    """What a client sends as its password: the MD5 hex of the real one."""
    return hashlib.md5(password.encode(), usedforsecurity=False).hexdigest()


def hash_secret(secret: str) -> str:
    """A slow hash of `secret` (scrypt, random salt) with its parameters."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=64 << 20)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def secret_matches(stored: str, secret: str) -> bool:
    """Whether `secret` is what `stored` (`hash_secret`'s) was made of; constant time."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        made = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                              p=int(p), maxmem=64 << 20)
    except ValueError:
        return False
    return hmac.compare_digest(made, bytes.fromhex(digest))


def _view(till: Till) -> TillView:
    return TillView(till.name, till.enabled, till.skip_validation_allowed, till.created_at,
                    till.rotated_at, till.failed_logins, till.locked_until)


def _name(name: str) -> str:
    text = (name or "").strip()
    if not NAME.fullmatch(text):
        raise InputError("a till's name is 1 to 64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return text


def find(session: Session, name: str, *, lock: bool = False) -> Till | None:
    query = select(Till).where(Till.name == name)
    return session.exec(query.with_for_update() if lock else query).first()


def _existing(session: Session, name: str) -> Till:
    till = find(session, _name(name), lock=True)
    if till is None:
        raise InputError(f"there is no till named {name!r}")
    return till


def add(work: Work, name: str, *, skip_validation_allowed: bool = False) -> TillPassword:
    """A new till named `name`, enabled, with a new password (returned, never stored)."""
    checked = _name(name)
    if find(work.session, checked) is not None:
        raise InputError(f"a till named {checked!r} exists already (rotate its password "
                         "with `api-client rotate`)")
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    till = Till(name=checked, password_hash=hash_secret(md5hex(password)),
                skip_validation_allowed=skip_validation_allowed, created_at=work.now)
    work.session.add(till)
    work.session.flush()
    return TillPassword(_view(till), password)


def rotate(work: Work, name: str) -> TillPassword:
    """A new password for till `name`: the old one stops working at once (in every
    worker: the remembered logins are keyed by the stored hash). Clears a lockout."""
    till = _existing(work.session, name)
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    till.password_hash = hash_secret(md5hex(password))
    till.rotated_at = work.now
    till.failed_logins, till.locked_until = 0, None
    work.session.add(till)
    return TillPassword(_view(till), password)


def disable(work: Work, name: str) -> TillView:
    """Till `name` is refused from now on (its rows and audit lines stay)."""
    till = _existing(work.session, name)
    till.enabled = False
    work.session.add(till)
    return _view(till)


def listing(work: Work) -> list[TillView]:
    return [_view(t) for t in work.session.exec(select(Till).order_by(col(Till.name)))]


def count_failure(work: Work, till_id: int) -> datetime | None:
    """One more wrong password for the till (row-locked: concurrent workers count each
    one); at TILL_MAX_FAILED_LOGINS it is locked for TILL_LOCKOUT_SECONDS and counting
    starts again. Until when it is locked, if it is."""
    till = work.session.get(Till, till_id, with_for_update=True)
    if till is None:
        return None
    till.failed_logins += 1
    if till.failed_logins >= work.settings.till_max_failed_logins:
        till.failed_logins = 0
        till.locked_until = work.now + timedelta(seconds=work.settings.till_lockout_seconds)
    work.session.add(till)
    return till.locked_until if till.locked_until and till.locked_until > work.now else None


def clear_failures(work: Work, till_id: int) -> None:
    till = work.session.get(Till, till_id, with_for_update=True)
    if till is not None and till.failed_logins:
        till.failed_logins = 0
        work.session.add(till)


class AddressLimiter:
    """Failed logins per client address, in this process's memory: more than `limit`
    within `window` seconds refuse the address until the window ends. Bounded: the least
    recently failing addresses are forgotten beyond `size`."""

    def __init__(self, limit: int, window: int, size: int = ADDRESSES_KEPT) -> None:
        self.limit, self.window, self.size = limit, window, size
        self._failures: OrderedDict[str, tuple[int, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def blocked(self, address: str, now: datetime) -> int | None:
        """Seconds until `address` may try again, or None when it may now."""
        with self._lock:
            found = self._failures.get(address)
            if found is None:
                return None
            count, since = found
            ends = since + timedelta(seconds=self.window)
            if ends <= now:
                del self._failures[address]
                return None
            return max(1, int((ends - now).total_seconds())) if count >= self.limit else None

    def failed(self, address: str, now: datetime) -> None:
        with self._lock:
            count, since = self._failures.pop(address, (0, now))
            if since + timedelta(seconds=self.window) <= now:
                count, since = 0, now
            self._failures[address] = (count + 1, since)
            while len(self._failures) > self.size:
                self._failures.popitem(last=False)


class _Verified:
    """Logins this process has verified: (till name, stored hash) -> a keyed digest of the
    secret, so a till's next call costs no scrypt. Keyed by the stored hash: a rotated
    password no longer matches anywhere. The key is this process's own and random."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._key = secrets.token_bytes(32)
        self._seen: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, secret: str) -> bytes:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).digest()

    def known(self, name: str, stored: str, secret: str) -> bool:
        with self._lock:
            digest = self._seen.get((name, stored))
        return digest is not None and hmac.compare_digest(digest, self._digest(secret))

    def remember(self, name: str, stored: str, secret: str) -> None:
        with self._lock:
            self._seen[(name, stored)] = self._digest(secret)
            self._seen.move_to_end((name, stored))
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)


@functools.cache
def _dummy() -> str:
    """Compared for an unknown name, so that it takes as long (made on first use)."""
    return hash_secret("not a till")


_MAKING = threading.Lock()  # an engine's limiter and remembered logins are made once


def till_actor(name: str) -> str:
    """Who a till is in the staff audit."""
    return f"till:{name}"


class Tills(Engine):
    """The till operations of `PointsService`."""

    _address_limiter: AddressLimiter | None = None
    _verified_logins: _Verified | None = None

    @property
    def address_limiter(self) -> AddressLimiter:
        """This engine's per-address limiter (made on first use, once)."""
        with _MAKING:
            if self._address_limiter is None:
                self._address_limiter = AddressLimiter(
                    self.settings.till_address_max_failed_logins,
                    self.settings.till_lockout_seconds)
            return self._address_limiter

    @property
    def _verified(self) -> _Verified:
        with _MAKING:
            if self._verified_logins is None:
                self._verified_logins = _Verified()
            return self._verified_logins

    def add_till(self, name: str, *, skip_validation_allowed: bool = False) -> TillPassword:
        return self.db.run(lambda s: add(self.work(s), name,
                                         skip_validation_allowed=skip_validation_allowed))

    def rotate_till(self, name: str) -> TillPassword:
        return self.db.run(lambda s: rotate(self.work(s), name))

    def disable_till(self, name: str) -> TillView:
        return self.db.run(lambda s: disable(self.work(s), name))

    def tills(self) -> list[TillView]:
        return self.db.run(lambda s: listing(self.work(s)), write=False)

    def authenticate(self, name: str, secret: str, address: str) -> TillView:
        """The till `name` when `secret` (the MD5 hex of its password) is right, it is
        enabled, and neither it nor `address` is locked out; `LoginRefused` otherwise,
        counted and recorded in the staff audit."""
        now = self.clock()
        wait = self.address_limiter.blocked(address, now)
        if wait is not None:
            raise LoginRefused("address", wait)  # not recorded: that is the flood itself
        till = self.db.run(lambda s: find(s, name), write=False) if NAME.fullmatch(
            name) else None
        if till is None:
            secret_matches(_dummy(), secret)  # as slow as a real comparison
            self._refuse(name, address, "unknown", now)
        assert till is not None and till.id is not None
        if till.locked_until is not None and till.locked_until > now:
            wait = max(1, int((till.locked_until - now).total_seconds()))
            self._refuse(name, address, "locked", now, retry_after=wait, count=False)
        right = (self._verified.known(till.name, till.password_hash, secret)
                 or secret_matches(till.password_hash, secret))
        if not right:
            till_id = till.id
            locked = self.db.run(lambda s: count_failure(self.work(s), till_id))
            wait = None if locked is None else max(1, int((locked - now).total_seconds()))
            self._refuse(name, address, "wrong", now, retry_after=wait)
        if not till.enabled:
            self._refuse(name, address, "disabled", now)
        self._verified.remember(till.name, till.password_hash, secret)
        if till.failed_logins:
            till_id = till.id
            self.db.run(lambda s: clear_failures(self.work(s), till_id))
        return _view(till)

    def till_is_redeemable(self, name: str, secret: str, address: str, identifier: str,
                           points: object, validation_code: str | None = None,
                           ) -> tuple[TillView, Redeemable | PointsError]:
        """isredeemable for the till `name` (authenticated as `authenticate` does) with its
        audit line: the till and the check's result, or its refusal.

        A check without a validation code reads only, so it is one read transaction: the
        till's row read (enabled, not locked, no failed logins, its stored hash one this
        process has verified `secret` against) and the check; its audit line is deferred
        (`staff_audit.DeferredLines`: written within a fraction of a second, lost only if
        the process dies before). Anything else (a login not verified yet, a wrong or
        locked one, a check with a code, which counts a wrong attempt) goes the full way:
        `authenticate`, then `till_call` with a durable line. `LoginRefused` for a login
        refused, `TillsUnavailable` when the database did not answer before the till was
        known."""
        action, service = "isredeemable", cast("PointsService", self)
        if (validation_code or "").strip():
            till = self.authenticate_till(name, secret, address)
            try:
                found = self.till_call(till, action, identifier, lambda: service.is_redeemable(
                    identifier, points, validation_code), _points)
            except PointsError as refusal:
                return till, refusal
            return till, found
        now = self.clock()
        wait = self.address_limiter.blocked(address, now)
        if wait is not None:
            raise LoginRefused("address", wait)
        outcome: tuple[TillView, Redeemable | PointsError] | None = None
        if NAME.fullmatch(name):
            def unit(session: Session) -> tuple[TillView, Redeemable | PointsError]:
                work = Work(session, self.settings, now)
                till = self.checked(session, name, secret, now)
                try:
                    amount = rules.parse_points(points)
                    member = ledger.find_member(session, self.identify(identifier))
                    return till, redemption.check(work, member, amount)
                except PointsError as refusal:
                    return till, refusal
            try:
                outcome = self.db.run(unit, write=False)
            except _Unsettled:
                outcome = None
            except PointsError as failure:  # the database did not answer
                raise TillsUnavailable(failure) from None
        if outcome is None:  # the full way
            till = self.authenticate_till(name, secret, address)
            try:
                found = service.is_redeemable(identifier, points)
            except PointsError as refusal:
                outcome = till, refusal
            else:
                outcome = till, found
        till, result = outcome
        service.deferred_lines.add(staff_audit.line(
            till_actor(till.name), action, identifier, not isinstance(result, PointsError),
            f"{result.code}" if isinstance(result, PointsError) else "800 " + _points(result),
            now))
        return till, result

    def checked(self, session: Session, name: str, secret: str, now: datetime) -> TillView:
        """The till `name` when this process has verified `secret` against its stored hash
        as it is now, and nothing stands in its way (enabled, not locked, no failed logins
        to clear): read in the caller's transaction, so a disable or a rotation by any
        process counts from its commit on. `_Unsettled` otherwise."""
        row = session.connection().execute(TILL_BY_NAME, {"name": name}).mappings().first()
        if (row is None or not row["enabled"] or row["failed_logins"]
                or (row["locked_until"] is not None and row["locked_until"] > now)
                or not self._verified.known(name, row["password_hash"], secret)):
            raise _Unsettled(name)
        return TillView(row["name"], row["enabled"], row["skip_validation_allowed"],
                        row["created_at"], row["rotated_at"], row["failed_logins"],
                        row["locked_until"])

    def authenticate_till(self, name: str, secret: str, address: str) -> TillView:
        """`authenticate`, with a database that did not answer as `TillsUnavailable` (so
        that a caller tells it from a refused operation)."""
        try:
            return self.authenticate(name, secret, address)
        except PointsError as failure:
            raise TillsUnavailable(failure) from None

    def _refuse(self, name: str, address: str, reason: str, now: datetime, *,
                retry_after: int | None = None, count: bool = True) -> None:
        if count:
            self.address_limiter.failed(address, now)
        self.record_till_call(name, "login", address, False, f"refused: {reason}")
        raise LoginRefused(reason, retry_after)

    def record_till_call(self, name: str, action: str, target: str, allowed: bool,
                         detail: str) -> None:
        """One durable line, after the deferred ones of this process: within a worker the
        audit keeps the calls' order."""
        cast("PointsService", self).flush_staff_actions()
        self.db.run(lambda s: staff_audit.record(self.work(s), till_actor(name), action,
                                                 target, allowed, detail))

    def till_call(self, till: TillView, action: str, target: str, call: Callable[[], T],
                  describe: Callable[[T], str] = lambda _: "") -> T:
        """Run `call` for `till` and record it in the staff audit: the action, its target,
        allowed or refused, and the status code (800, or the refusal's) with
        `describe(result)`. The one place every API call is recorded."""
        try:
            result = call()
        except PointsError as refusal:
            self._record_after(till, action, target, False, f"{refusal.code}")
            raise
        detail = describe(result)
        self._record_after(till, action, target, True, "800" + (f" {detail}" if detail
                                                                 else ""))
        return result

    def _record_after(self, till: TillView, action: str, target: str, allowed: bool,
                      detail: str) -> None:
        """The audit line of a call that has happened: a database that fails to take it
        (after its own retries) must not change the call's answer (a redemption that
        committed is not to be reported as refused), so the line is logged instead, as an
        error, whole."""
        try:
            self.record_till_call(till.name, action, target, allowed, detail)
        except PointsError as failure:
            log.error("API call not recorded in the staff audit (%s): %s %s %s %s %s",
                      failure.status, till_actor(till.name), action, target,
                      "allowed" if allowed else "refused", detail)

    @staticmethod
    def skips_validation(till: TillView, asked: bool) -> bool:
        """Whether a redemption by `till` goes without a validation code: only when it asks
        and it is allowed to (`api-client add --allow-skip-validation`); for every other
        till VALIDATION_CODE_REQUIRED decides, whatever it asks."""
        return asked and till.skip_validation_allowed


def _points(result: Redeemable) -> str:
    return f"{result.points} points"
