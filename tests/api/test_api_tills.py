"""Tills over real HTTP: HTTP Basic with the MD5 hex of the password, 401 in the envelope
for every failure, disabled tills, rotation, the lockout per till (in the database: every
worker sees it) and the limit per address (in each worker's memory); what is stored (a
slow hash of the MD5, never the MD5); and the audit line of every call."""

from __future__ import annotations

import base64
import time

import pytest
from sqlalchemy import MetaData, select

from api.settings import load_api_settings
from core import staff_audit
from core.service import PointsService
from core.tills import md5hex, secret_matches
from tests.api.api_harness import STRONG_KEY, api, serving, status

PATH = "/v1.1/points/isredeemable"


def _check(http: object, mobile: str | None) -> tuple[int, dict[str, object]]:
    answer = http.get(PATH, params={"mobile": mobile, "points": 500})  # type: ignore[attr-defined]
    return answer.status_code, answer.json()


def _is_401(code: int, body: dict[str, object]) -> bool:
    return code == 401 and status(body) == {"success": "false", "code": 401,
                                            "message": "Authentication failed"}


def test_the_platforms_clients_authenticate_with_the_md5_hex(db_url: str) -> None:
    with api(db_url) as a:
        member = a.member()
        made = a.service.add_till("shop-17")
        # Exactly what the platform's clients send: base64(name + ":" + md5hex(password)).
        header = base64.b64encode(f"shop-17:{md5hex(made.password)}".encode()).decode()
        answer = a.client().get(PATH, params={"mobile": member.mobile, "points": 500},
                                headers={"Authorization": f"Basic {header}"})
        assert answer.status_code == 200
        assert answer.json()["response"]["points"]["redeemable"]["item_status"]["code"] == 800
        # The password itself is not what is accepted: its MD5 hex is.
        code, body = _check(a.client("shop-17", raw_secret=made.password), member.mobile)
        assert _is_401(code, body)


def test_every_authentication_failure_is_401_in_the_envelope(db_url: str) -> None:
    with api(db_url) as a:
        member = a.member()
        made = a.service.add_till("shop-1")
        attempts = [a.client(), a.client("shop-1", "wrong"), a.client("nobody", "x"),
                    a.client("shop-1", raw_secret="")]
        for http in attempts:
            code, body = _check(http, member.mobile)
            assert _is_401(code, body), body
        answer = a.client().get(PATH, params={"mobile": member.mobile, "points": 500},
                                headers={"Authorization": "Basic !!!not-base64"})
        assert _is_401(answer.status_code, answer.json())
        assert answer.headers["www-authenticate"].startswith("Basic")
        assert _check(a.client("shop-1", made.password), member.mobile)[0] == 200


def test_a_disabled_till_is_refused_and_a_rotated_password_replaces_the_old(
        db_url: str) -> None:
    with api(db_url) as a:
        member = a.member()
        old = a.service.add_till("shop-1").password
        before = a.client("shop-1", old)
        assert _check(before, member.mobile)[0] == 200  # remembered by this worker now
        new = a.service.rotate_till("shop-1").password
        assert new != old
        assert _is_401(*_check(before, member.mobile))
        assert _check(a.client("shop-1", new), member.mobile)[0] == 200
        a.service.disable_till("shop-1")
        assert _is_401(*_check(a.client("shop-1", new), member.mobile))
        assert not [t for t in a.service.tills() if t.enabled]


def test_wrong_passwords_lock_the_till_in_every_worker_until_the_lockout_ends(
        db_url: str) -> None:
    with api(db_url, till_max_failed_logins=3, till_lockout_seconds=60,
             till_address_max_failed_logins=100) as a:
        member = a.member()
        password = a.service.add_till("shop-1").password
        # A second worker: its own engine and server on the same database.
        settings = load_api_settings(database_url=db_url, secret_key=STRONG_KEY,
                                     till_max_failed_logins=3, till_lockout_seconds=60)
        other = PointsService(settings, clock=a.clock)
        try:
            with serving(settings, other) as second:
                wrong_here = a.client("shop-1", "wrong")
                wrong_there = a.client("shop-1", "wrong")
                wrong_there.base_url = second  # type: ignore[assignment]
                for http in (wrong_here, wrong_there, wrong_here):
                    assert _is_401(*_check(http, member.mobile))
                right = a.client("shop-1", password)
                right_there = a.client("shop-1", password)
                right_there.base_url = second  # type: ignore[assignment]
                for http in (right, right_there):  # locked: even the right password
                    answer = http.get(PATH, params={"mobile": member.mobile, "points": 500})
                    assert _is_401(answer.status_code, answer.json())
                    assert 0 < int(answer.headers["retry-after"]) <= 60
                a.clock.advance(61)
                assert _check(right, member.mobile)[0] == 200
                assert _check(right_there, member.mobile)[0] == 200
        finally:
            other.close()


def test_one_address_failing_too_often_is_refused_whatever_till_it_names(
        db_url: str) -> None:
    with api(db_url, till_address_max_failed_logins=3, till_lockout_seconds=60) as a:
        member = a.member()
        password = a.service.add_till("shop-1").password
        for name in ("a", "b", "c"):  # unknown tills: no till's counter, the address's
            assert _is_401(*_check(a.client(name, "x"), member.mobile))
        assert [t.failed_logins for t in a.service.tills()] == [0]
        right = a.client("shop-1", password)
        assert _is_401(*_check(right, member.mobile))
        a.clock.advance(61)
        assert _check(right, member.mobile)[0] == 200


def test_the_database_holds_a_slow_hash_of_the_md5_never_the_md5(db_url: str) -> None:
    with api(db_url) as a:
        made = a.service.add_till("shop-1")
        with a.service.db.engine.connect() as connection:
            tables = MetaData()
            tables.reflect(connection, only=["till"])
            rows = connection.execute(select(tables.tables["till"])).mappings().all()
        assert len(rows) == 1
        stored = str(rows[0]["password_hash"])
        assert stored.startswith("scrypt$16384$8$1$")
        every_value = " ".join(str(v) for v in rows[0].values())
        assert md5hex(made.password) not in every_value and made.password not in every_value
        assert secret_matches(stored, md5hex(made.password))
        assert not secret_matches(stored, made.password)


def test_every_call_and_every_refused_login_is_in_the_audit(db_url: str) -> None:
    with api(db_url) as a:
        member = a.member(points=5000)
        http = a.till("shop-9")
        http.get(PATH, params={"mobile": member.mobile, "points": 500})
        http.get(PATH, params={"mobile": member.mobile, "points": 9000})
        a.client("shop-9", "wrong").get(PATH, params={"mobile": member.mobile,
                                                      "points": 500})
        lines = list(reversed(a.service.staff_actions()))
        seen = [(line.staff, line.action, line.target, line.allowed, line.detail.split()[0])
                for line in lines]
        target = f"mobile:{member.mobile}"
        assert seen == [
            ("till:shop-9", "isredeemable", target, True, "800"),
            ("till:shop-9", "isredeemable", target, False, "803"),
            ("till:shop-9", "login", "127.0.0.1", False, "refused:"),
        ]
        assert lines[-1].detail == "refused: wrong"


def _engine(db_url: str) -> PointsService:
    """Another process's engine on the same database (as `loyalty-bot` commands are)."""
    return PointsService(load_api_settings(database_url=db_url, secret_key=STRONG_KEY))


def test_a_till_disabled_elsewhere_is_refused_at_its_next_call(db_url: str) -> None:
    with api(db_url) as a:
        member = a.member()
        http = a.till("shop-1")
        assert _check(http, member.mobile)[0] == 200  # verified, remembered by this worker
        other = _engine(db_url)
        try:
            other.disable_till("shop-1")
        finally:
            other.close()
        assert _is_401(*_check(http, member.mobile))


def test_a_checks_audit_line_reaches_the_database_by_itself(db_url: str) -> None:
    """An isredeemable's line is deferred (`DeferredLines`): another process sees it
    within moments, without this one being asked for its audit."""
    with api(db_url) as a:
        member = a.member()
        http = a.till("shop-1")
        assert _check(http, member.mobile)[0] == 200
        other = _engine(db_url)
        try:
            deadline = time.monotonic() + 30
            while not other.staff_actions(action="isredeemable"):
                assert time.monotonic() < deadline, "the deferred line was never written"
                time.sleep(0.02)
            [line] = other.staff_actions(action="isredeemable")
            assert (line.staff, line.target, line.allowed, line.detail) == (
                "till:shop-1", f"mobile:{member.mobile}", True, "800 500 points")
        finally:
            other.close()


def test_deferred_audit_lines_are_written_when_the_server_stops(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staff_audit, "FLUSH_SECONDS", 3600.0)  # only a stop writes them
    with api(db_url) as a:
        member = a.member()
        http = a.till("shop-1")
        for points in (500, 9000):
            http.get(PATH, params={"mobile": member.mobile, "points": points})
        other = _engine(db_url)
        try:
            assert other.staff_actions(action="isredeemable") == []  # still waiting
        finally:
            other.close()
    other = _engine(db_url)
    try:
        lines = reversed(other.staff_actions(action="isredeemable"))
        assert [(x.allowed, x.detail) for x in lines] == [(True, "800 500 points"),
                                                          (False, "803")]
    finally:
        other.close()
