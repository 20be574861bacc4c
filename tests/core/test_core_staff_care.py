"""Member care from the command line and the engine: `loyalty-bot member` (the same report
as /member), `unlink`, `fraud`, `goodwill --reference` and GOODWILL_MAX_POINTS, and
`staff-log` with its filters; the goodwill settings' checks; a goodwill reference that
issues once under concurrency, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core.chat import Chats
from core.service import PointsService
from core.settings import load_settings
from core.status import InputError, PointsError, message
from tests.core.points_harness import Env
from tests.core.test_core_cli import ASHA, ROWS, Cli, refusal_line
from tests.support.members import member_csv

RAVI = "ravi@example.com"


def cli_with_members(db_url: str, tmp_path: Path) -> Cli:
    cli = Cli(db_url)
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv(ROWS))
    cli("import", str(members))
    return cli


def engine(db_url: str) -> PointsService:
    return PointsService(load_settings(_env_file=None, database_url=db_url,
                                       secret_key="k" * 40))


def test_member_shows_what_staff_need(db_url: str, tmp_path: Path) -> None:
    cli = cli_with_members(db_url, tmp_path)
    service = engine(db_url)
    try:
        Chats(service).verify_contact("5550001", ASHA.lstrip("+"))
        service.earn(ASHA, "BILL-9", "10.00")
    finally:
        service.db.dispose()
    code = cli("validationcode", ASHA, "200").stdout.split(": ")[1][:6]
    cli("goodwill", ASHA, "50", "--reason", "late delivery", "--staff", "agent-1")
    cli("fraud", ASHA, "marked", "card", "chargebacks", "--staff", "agent-2")
    shown = cli("member", ASHA).stdout
    assert "linked Telegram account 5550001\n" in shown
    assert "  verified 20" in shown
    assert "validation code: pending, for 200 points" in shown
    assert "5 attempts left, 4 sends left" in shown
    assert code not in shown  # never the code
    assert "type loyalty  fraud status MARKED" in shown
    assert "fraud status set from NONE by agent-2 at " in shown
    assert shown.rstrip().endswith("members.csv")
    entries = shown.split("their last ledger entries:\n")[1].splitlines()
    assert [e.split("  ")[3].split()[0] for e in entries] == ["goodwill", "earned", "imported"]
    assert "by agent-1: late delivery" in entries[0]
    assert "earned +10  on bill BILL-9" in entries[1]


def test_sends_left_counts_the_period_limit_too(db_url: str, tmp_path: Path) -> None:
    """The code may be sent OTP_MAX_SENDS times, but the period's OTP_PERIOD_MAX_SENDS may
    leave fewer: staff see the fewer."""
    cli = cli_with_members(db_url, tmp_path)
    limits = {"OTP_MAX_SENDS": "5", "OTP_PERIOD_MAX_SENDS": "3"}
    cli("validationcode", ASHA, "100", **limits)  # an earlier code, for another amount
    cli("validationcode", ASHA, "200", **limits)
    shown = cli("member", ASHA, **limits).stdout
    assert "validation code: pending, for 200 points" in shown
    assert "5 attempts left, 1 sends left" in shown  # the period's 3 less the 2 sent
    shown = cli("member", ASHA, OTP_MAX_SENDS="5", OTP_PERIOD_MAX_SENDS="10").stdout
    assert "5 attempts left, 4 sends left" in shown  # now the code's own limit is fewer


def test_unlink_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    cli = cli_with_members(db_url, tmp_path)
    service = engine(db_url)
    chats = Chats(service)
    try:
        chats.verify_contact("5550001", ASHA.lstrip("+"))
        out = cli("unlink", ASHA, "--staff", "agent-1").stdout
        assert out.startswith("Unlinked Telegram account 5550001 from member 1")
        assert chats.member_id("5550001") is None
        assert chats.linked_user(1) is None
        assert "nothing changed" in cli("unlink", ASHA).stdout
        [second, first] = service.staff_actions(2)
        assert (first.staff, first.action, first.detail) == (
            "agent-1", "unlink", "unlinked chat user 5550001")
        assert (second.staff, second.member_id) == ("cli", 1)
    finally:
        service.db.dispose()
    assert refusal_line(cli("unlink", "+919000000009", exit_code=1)).startswith("816 ")


def test_fraud_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    cli = cli_with_members(db_url, tmp_path)
    out = cli("fraud", ASHA, "CONFIRMED", "confirmed", "by", "the", "bank").stdout
    assert out == "fraud status NONE -> CONFIRMED; recorded by cli: confirmed by the bank\n"
    refused = cli("isredeemable", ASHA, "200", exit_code=1)
    assert refusal_line(refused).startswith("809 ")
    bad = cli("fraud", ASHA, "SUSPICIOUS", "why", exit_code=2)
    assert "unknown fraud status 'SUSPICIOUS'; known: NONE, MARKED" in bad.stderr
    assert "needs a reason" in cli("fraud", ASHA, "NONE", " ", exit_code=2).stderr
    assert "CONFIRMED -> NONE" in cli("fraud", ASHA, "none", "cleared").stdout
    log = cli("staff-log", "--member", ASHA).stdout.splitlines()
    assert [line.split("  ")[2] for line in log] == ["fraud", "fraud"]


def test_goodwill_reference_and_the_most_one_grant_may_issue(db_url: str,
                                                             tmp_path: Path) -> None:
    cli = cli_with_members(db_url, tmp_path)
    args = ("goodwill", ASHA, "300", "--reason", "lost parcel", "--staff", "agent-1")
    assert "current points now 1300" in cli(*args, "--reference", "T-1").stdout
    again = cli(*args, "--reference", "T-1").stdout
    assert again.startswith("reference T-1 was already used for this grant (G")
    assert "nothing more issued; current points now 1300" in again
    other = cli("goodwill", ASHA, "301", "--reason", "r", "--staff", "s", "--reference", "T-1",
                exit_code=2)
    assert "goodwill reference T-1 was already used for 300 points to member 1" in other.stderr
    assert "a goodwill reference must be" in cli(*args, "--reference", "bad ref",
                                                 exit_code=2).stderr
    over = cli("goodwill", ASHA, "10001", "--reason", "r", "--staff", "s", exit_code=1)
    assert refusal_line(over) == (f"901 {message(901)} (one goodwill grant issues at most "
                                  "10,000 points (GOODWILL_MAX_POINTS); 10,001 were asked)")
    assert "current points now 11301" in cli("goodwill", ASHA, "10001", "--reason", "r",
                                             "--staff", "s",
                                             GOODWILL_MAX_POINTS="20000").stdout
    assert "current points 11301" in cli("member", ASHA).stdout


def test_staff_log_filters_and_shows_refusals(db_url: str, tmp_path: Path) -> None:
    cli = cli_with_members(db_url, tmp_path)
    cli("goodwill", ASHA, "5", "--reason", "a", "--staff", "agent-1")
    cli("goodwill", ASHA, "6", "--reason", "b", "--staff", "agent-2")
    cli("fraud", RAVI, "INTERNAL", "test user", "--staff", "agent-2")
    service = engine(db_url)
    try:
        service.record_staff_action("telegram:7", "goodwill", ASHA, False, "not staff")
    finally:
        service.db.dispose()
    log = cli("staff-log").stdout.splitlines()
    assert len(log) == 4
    assert "telegram:7  REFUSED goodwill" in log[0]
    assert "agent-2  fraud  email:ravi@example.com" not in log[1]
    assert "agent-2  fraud  ravi@example.com  NONE -> INTERNAL: test user" in log[1]
    by_agent = cli("staff-log", "--staff", "agent-2").stdout.splitlines()
    assert [line.split("  ")[2] for line in by_agent] == ["fraud", "goodwill"]
    about_asha = cli("staff-log", "--member", ASHA, "--limit", "1").stdout.splitlines()
    assert len(about_asha) == 1 and "6 points: b" in about_asha[0]
    assert cli("staff-log", "--staff", "nobody").stdout == "nothing recorded\n"
    assert refusal_line(cli("staff-log", "--member", "+919000000009",
                            exit_code=1)).startswith("816 ")
    cli("staff-log", "--limit", "0", exit_code=2)


@pytest.mark.parametrize(("setting", "value", "code"), [
    ("goodwill_max_points", "lots", 888), ("goodwill_max_points", "0", 899),
    ("goodwill_max_points", "1000000001", 899), ("goodwill_confirm_above", "-1", 899),
    ("goodwill_confirm_above", "1.5", 888)])
def test_goodwill_settings_are_checked_by_name(setting: str, value: str, code: int) -> None:
    with pytest.raises(PointsError) as refused:
        load_settings(_env_file=None, **{setting: value})
    assert refused.value.code == code
    assert setting.upper() in refused.value.detail


def test_goodwill_settings_defaults() -> None:
    settings = load_settings(_env_file=None)
    assert (settings.goodwill_max_points, settings.goodwill_confirm_above) == (10_000, 1_000)


def test_a_goodwill_reference_issues_once_under_concurrency(env: Env) -> None:
    """Many grants with one reference at once: one issues, the others answer it (same
    member and points) or are refused (another member); nothing is issued twice."""
    service = env.service()
    asha = env.add_member(service).mobile
    ravi = env.add_member(service).mobile
    assert asha is not None and ravi is not None
    start = threading.Barrier(12)
    answers: list[str] = []

    def grant(who: str) -> None:
        worker = env.service()
        start.wait(timeout=30)
        try:
            issued = worker.goodwill(who, 40, reason="outage", staff="care", reference="INC-9")
            answers.append("replayed" if issued.replayed else f"issued {who}")
        except InputError:
            answers.append("refused")
        finally:
            worker.db.dispose()
    threads = [threading.Thread(target=grant, args=(asha if n < 8 else ravi,))
               for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == 12
    issued = [a for a in answers if a.startswith("issued")]
    assert len(issued) == 1
    winner = issued[0].split()[1]
    same = 8 if winner == asha else 4
    assert answers.count("replayed") == same - 1
    assert answers.count("refused") == 12 - same
    points = {asha: service.member(asha).current_points, ravi: service.member(ravi).current_points}
    assert points[winner] == 40 and sum(points.values()) == 40
    assert service.audit() == []
