"""The `loyalty-bot` command line on a real database (DATABASE_URL): points in, the points
API's operations, the catalogue and the audit. A refusal prints its code and message and
exits 1, as does an import file refused for its bad rows (each listed); wrong usage exits
2. A database that does not parse, cannot be reached or stays locked answers its status
code in one line, never a traceback (unless -v).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from bot.cli import app
from core.chat import Chats
from core.db import Database
from core.service import PointsService
from core.settings import load_settings
from core.status import CATALOGUE, message
from tests.support.members import member_csv

ROWS: list[dict[str, Any]] = [
    {"mobile": "9876543210", "name": "Asha", "type": "loyalty", "current_points": 1000,
     "lifetime_points": 1000, "lifetime_purchases": "500"},
    {"email": "ravi@example.com", "name": "Ravi", "type": "non_loyalty"},
]
ASHA = "+919876543210"
STRONG_KEY = "cli-test-key-" + "k" * 32


class Cli:
    """Runs `loyalty-bot` commands in-process against one database."""

    def __init__(self, url: str) -> None:
        self.runner = CliRunner()
        self.env = {"DATABASE_URL": url, "SECRET_KEY": STRONG_KEY}

    def __call__(self, *args: str, exit_code: int = 0, **settings: str) -> Result:
        result = self.runner.invoke(app, list(args), env={**self.env, **settings})
        assert result.exit_code == exit_code, (args, result.output, result.exception)
        return result


def refusal_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not line.startswith(("database: ", "warning: "))]
    assert lines, result.output
    return lines[0]


def test_codes_prints_the_catalogue_one_per_line_code_first(tmp_path: Path) -> None:
    result = Cli(f"sqlite:///{tmp_path / 'x.db'}")("codes")
    lines = result.stdout.splitlines()
    assert len(lines) == 46
    codes = [int(line.split(" ", 1)[0]) for line in lines]
    assert codes == sorted(CATALOGUE)
    for line in lines:
        code, text = line.split(" ", 1)
        assert text == message(int(code))
    assert "807 Unable to redeem. Make sure that the points you are trying to redeem is a " \
           "multiple of {multiple}." in lines


def test_the_commands_end_to_end(db_url: str, tmp_path: Path) -> None:
    cli = Cli(db_url)
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv(ROWS))
    assert "imported 2 rows: 2 new members, 0 updated, 1000 points" in cli(
        "import", str(members)).stdout
    assert "already imported" in cli("import", str(members)).stdout

    shown = cli("member", "9876543210").stdout
    assert "current points 1000 (worth 1000.00)" in shown
    assert f"mobile {ASHA}" in shown and "type loyalty" in shown
    assert "linked Telegram account -\n" in shown
    service = PointsService(load_settings(_env_file=None, database_url=db_url))
    Chats(service).verify_contact("5550001", ASHA.lstrip("+"))
    service.db.dispose()
    assert "linked Telegram account 5550001\n" in cli("member", ASHA).stdout

    assert "800 Points can be redeemed (200 points worth 200.00)" in cli(
        "isredeemable", ASHA, "200").stdout

    issued = cli("validationcode", ASHA, "200").stdout
    code = re.search(r"validation code for member \d+: (\d{6})", issued)
    assert code is not None, issued
    assert "Validation Code Issued by log" in issued

    redeemed = cli("redeem", ASHA, "200", "--code", code.group(1), "--transaction", "BILL-1",
                   "--reference", "EXT-1", "--notes", "till 3").stdout
    assert "800 Points redeemed successfully" in redeemed
    assert "current points now 800" in redeemed
    redemption_id = re.search(r"redemption id (R\w+):", redeemed)
    assert redemption_id is not None
    again = cli("redeem", ASHA, "200", "--code", code.group(1), "--transaction", "BILL-1",
                "--reference", "EXT-1").stdout
    assert "a retry" in again and redemption_id.group(1) in again
    assert "current points now 800" in again

    assert "reversed 50 points" in cli("reverse", redemption_id.group(1), "50",
                                       "--member", ASHA).stdout
    assert "current points now 1000" in cli("revert", "BILL-1", "150", ASHA).stdout

    history = cli("history", ASHA).stdout.splitlines()
    assert len(history) == 3
    assert "redeemed" in history[-1] and "200 reversed" in history[-1]

    assert "issued 25 points on bill BILL-2; current points now 1025" in cli(
        "earn", ASHA, "BILL-2", "25.99").stdout
    assert "nothing more issued" in cli("earn", ASHA, "BILL-2", "25.99").stdout
    assert "current points now 1035" in cli("goodwill", ASHA, "10", "--reason", "sorry",
                                            "--staff", "agent-1").stdout
    assert "current points 1035" in cli("member", ASHA).stdout
    assert "the ledger balances" in cli("audit").stdout


def test_failures_print_code_and_message_and_exit_nonzero(db_url: str,
                                                          tmp_path: Path) -> None:
    cli = Cli(db_url)
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv(ROWS))
    cli("import", str(members))
    cases = [
        (("member", "+919999999999"), 816),
        (("member", "not valid!"), 802),
        (("isredeemable", ASHA, "abc"), 801),
        (("isredeemable", ASHA, "5000"), 803),
        (("isredeemable", "ravi@example.com", "200"), 881),
        (("redeem", ASHA, "200", "--transaction", "B", "--reference", "R"), 824),
        (("redeem", ASHA, "200", "--code", "123456", "--transaction", "B"), 808),
        (("redeem", ASHA, "200", "--transaction", "B", "--time", "soon"), 859),
        (("revert", "NO-SUCH-BILL", "10", ASHA), 811),
        (("reverse", "RNOSUCHTHING"), 902),
        (("validationcode", ASHA, "50"), 821),
    ]
    for args, code in cases:
        result = cli(*args, exit_code=1)
        line = refusal_line(result)
        assert line.startswith(f"{code} {message(code)}"), (args, line)
    # Bad settings refuse to start, with the code and the setting named.
    result = cli("member", ASHA, exit_code=1, REDEMPTION_MIN_POINTS="lots")
    assert refusal_line(result).startswith("888 ") and "REDEMPTION_MIN_POINTS" in result.stderr
    result = cli("member", ASHA, exit_code=1, REDEMPTION_MIN_POINTS="500",
                 REDEMPTION_MAX_POINTS="100")
    assert refusal_line(result).startswith("899 ")
    assert "current points 1000" in cli("member", ASHA).stdout  # nothing changed


@pytest.mark.parametrize(("key", "why"), [
    (None, "the built-in development key"),
    ("change-me-to-a-long-random-string", "the placeholder from .env.example"),
    ("x" * 31, "31 characters long"),
])
def test_validationcode_refuses_a_weak_secret_key(sqlite_url: str, tmp_path: Path,
                                                 key: str | None, why: str) -> None:
    cli = Cli(sqlite_url)
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv(ROWS))
    cli("import", str(members))
    if key is None:
        del cli.env["SECRET_KEY"]
    result = cli("validationcode", ASHA, "200", exit_code=1, **({"SECRET_KEY": key} if key
                                                                else {}))
    line = refusal_line(result)
    assert line.startswith("899 ") and f"SECRET_KEY is {why}" in line
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in line
    assert "validation code for member" not in result.stdout  # no code was made


def test_bad_import_file_lists_every_bad_row_and_exits_1(db_url: str, tmp_path: Path) -> None:
    """A file refused for its rows is a refusal (exit 1), not wrong usage (2)."""
    cli = Cli(db_url)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(member_csv([ROWS[0], {"mobile": "12"}, {"name": "nobody"}]))
    result = cli("import", str(bad), exit_code=1)
    assert "2 bad row(s); nothing was imported" in result.stderr
    assert "line 3: mobile '12' is not a valid mobile" in result.stderr
    assert "line 4: a row needs a mobile, an email or an external id" in result.stderr
    assert "816 " in cli("member", ASHA, exit_code=1).stderr  # the good row was not kept


def test_entry_point_in_a_real_process(tmp_path: Path) -> None:
    """The command as scripts run it: its own process, settings from the environment."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    codes = subprocess.run([sys.executable, "-m", "bot.cli", "codes"], env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert codes.returncode == 0, codes.stderr
    assert len(codes.stdout.splitlines()) == 46
    missing = subprocess.run([sys.executable, "-m", "bot.cli", "member", "+919999999999"],
                             env=env, capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == f"816 {message(816)}"


# ---------------------------------------------------------------- failures as codes


def loyalty_bot(*args: str, timeout: float = 60, **settings: str
                ) -> subprocess.CompletedProcess[str]:
    """`loyalty-bot ARGS` in a process of its own, settings from the environment only."""
    env = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME")}
    env.update(settings)
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The whole of stderr, which must be one line (after the `database:` line naming the
    database, when one was opened): no traceback, no log lines."""
    lines = [line for line in result.stderr.splitlines() if not line.startswith("database: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_database_url_that_does_not_parse_answers_888_in_one_line() -> None:
    for url in ("nonsense", "mysql://db.example.com/loyalty",
                "postgresql://user:pw-secret@db.example.com:notaport/loyalty",
                "postgresql+nosuchdriver://db.example.com/loyalty"):
        result = loyalty_bot("member", ASHA, DATABASE_URL=url)
        assert result.returncode == 1, (url, result.stderr)
        line = one_line(result)
        assert line.startswith(f"888 {message(888)}") and "DATABASE_URL" in line, line
        assert "pw-secret" not in line


def test_an_unreachable_database_answers_815_or_889_in_one_line(tmp_path: Path) -> None:
    nowhere = f"sqlite:///{tmp_path / 'no-such-directory' / 'loyalty.db'}"
    closed_port = "postgresql+psycopg://loyalty@127.0.0.1:1/loyalty"
    for url in (nowhere, closed_port):
        result = loyalty_bot("member", ASHA, DATABASE_URL=url, DB_RETRY_ATTEMPTS="2")
        assert result.returncode == 1
        line = one_line(result)
        assert line.startswith(f"815 {message(815)} (the database cannot be reached)"), line
    # Points coming in answer 889.
    for args in (("earn", ASHA, "BILL-1", "100"),
                 ("goodwill", ASHA, "10", "--reason", "r", "--staff", "s")):
        result = loyalty_bot(*args, DATABASE_URL=nowhere, DB_RETRY_ATTEMPTS="2")
        assert result.returncode == 1
        assert one_line(result).startswith(f"889 {message(889)}")
    # -v shows the traceback behind it, for those who want it.
    result = loyalty_bot("-v", "member", ASHA, DATABASE_URL=nowhere, DB_RETRY_ATTEMPTS="2")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "OperationalError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("815 ")


def test_the_bot_does_not_start_on_an_unreachable_database(tmp_path: Path) -> None:
    nowhere = f"sqlite:///{tmp_path / 'no-such-directory' / 'loyalty.db'}"
    bot = {"TELEGRAM_BOT_TOKEN": "123456:TEST-TOKEN", "DB_RETRY_ATTEMPTS": "2",
           "OTP_CHANNEL": "chat", "ALLOW_CHAT_CODES": "true", "SECRET_KEY": "k" * 40}
    result = loyalty_bot("run", DATABASE_URL=nowhere, **bot)
    assert result.returncode == 1
    # The last line answers (before it: ALLOW_CHAT_CODES's warning at start).
    assert result.stderr.splitlines()[-1].startswith(f"815 {message(815)}"), result.stderr
    assert "Traceback" not in result.stderr
    result = loyalty_bot("run", "--sandbox", SANDBOX_DATABASE_URL=nowhere,
                         DATABASE_URL=f"sqlite:///{tmp_path / 'loyalty.db'}", **bot)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(f"815 {message(815)}"), result.stderr
    assert "Traceback" not in result.stderr


def test_a_read_answers_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    """Migrations run only when the schema is behind, and a read takes no write lock: the
    command answers at once while another connection holds SQLite's write lock."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'loyalty.db'}"
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv(ROWS))
    assert loyalty_bot("import", str(members), DATABASE_URL=url).returncode == 0
    holder = sqlite3.connect(tmp_path / "loyalty.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        # Before: the command waited for the write lock to migrate (30 s busy timeout).
        result = loyalty_bot("member", ASHA, DATABASE_URL=url, timeout=20)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 0, result.stderr
    assert "current points 1000" in result.stdout


@pytest.mark.slow
def test_a_database_still_locked_after_the_retries_answers_815_or_889_in_one_line(
        tmp_path: Path) -> None:
    """Another process holds SQLite's write lock throughout: a write (goodwill: 889) and a
    start that must migrate (815) each wait out the busy timeout (30 s) and answer their
    code in one line, with a nonzero exit."""
    import sqlite3

    ready = f"sqlite:///{tmp_path / 'loyalty.db'}"
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv(ROWS))
    assert loyalty_bot("import", str(members), DATABASE_URL=ready).returncode == 0
    (tmp_path / "fresh.db").touch()  # a schema that is behind: it must migrate
    holders = [sqlite3.connect(tmp_path / name, isolation_level=None)
               for name in ("loyalty.db", "fresh.db")]
    env = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME")}
    command = [sys.executable, "-m", "bot.cli"]
    try:
        for holder in holders:
            holder.execute("BEGIN IMMEDIATE")
        runs = [subprocess.Popen(
            [*command, *args], env={**env, "DATABASE_URL": url, "DB_RETRY_ATTEMPTS": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for url, args in ((ready, ("goodwill", ASHA, "10", "--reason", "r", "--staff",
                                       "s")),
                              (f"sqlite:///{tmp_path / 'fresh.db'}", ("member", ASHA)))]
        answers = [run.communicate(timeout=120) for run in runs]
    finally:
        for holder in holders:
            holder.close()
    assert [run.returncode for run in runs] == [1, 1]
    for (_, stderr), code in zip(answers, (889, 815), strict=True):
        stderr = "\n".join(line for line in stderr.splitlines()
                           if not line.startswith("database: "))
        assert len(stderr.splitlines()) == 1, stderr
        assert stderr.startswith(f"{code} {message(code)} (the database is busy)"), stderr
    assert "current points 1000" in loyalty_bot("member", ASHA, DATABASE_URL=ready).stdout


def test_a_database_error_during_a_redemption_answers_903_with_an_error_id(
        tmp_path: Path) -> None:
    """Not transient (a table gone): 903, and an error id that is also in the log line."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'loyalty.db'}"
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv(ROWS))
    assert loyalty_bot("import", str(members), DATABASE_URL=url).returncode == 0
    with sqlite3.connect(tmp_path / "loyalty.db") as broken:
        broken.execute("ALTER TABLE redemption RENAME TO redemption_gone")
    result = loyalty_bot("redeem", ASHA, "200", "--transaction", "BILL-9", "--reference",
                         "REF-9", DATABASE_URL=url, VALIDATION_CODE_REQUIRED="false")
    assert result.returncode == 1
    answer = result.stderr.splitlines()[-1]
    found = re.fullmatch(rf"903 {re.escape(message(903))} \(error id (E\w+)\)", answer)
    assert found, result.stderr
    logged = [line for line in result.stderr.splitlines()[:-1] if found.group(1) in line]
    assert logged and "ERROR core.redemption" in logged[0], result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- the CLI's promise


def test_negative_numbers_are_values_not_options(db_url: str, tmp_path: Path) -> None:
    cli = Cli(db_url)
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv(ROWS))
    cli("import", str(members))
    for args in (("isredeemable", ASHA, "-100"), ("validationcode", ASHA, "-100"),
                 ("redeem", ASHA, "-100", "--transaction", "B"),
                 ("redeem", ASHA, "--transaction", "B", "-100", "--code", "123456"),
                 ("revert", "BILL-1", "-100", ASHA), ("isredeemable", ASHA, "-1.5")):
        assert refusal_line(cli(*args, exit_code=1)).startswith(f"801 {message(801)}"), args
    for args in (("reverse", "RNOSUCHTHING", "-100"),
                 ("goodwill", ASHA, "-100", "--reason", "r", "--staff", "s")):
        assert refusal_line(cli(*args, exit_code=1)).startswith(f"901 {message(901)}"), args
    assert "more than zero" in cli("earn", ASHA, "BILL-1", "-5", exit_code=2).stderr
    # An option that does not exist is still wrong usage.
    assert "No such option" in cli("isredeemable", ASHA, "-100", "--cod", "1",
                                   exit_code=2).stderr
    assert "current points 1000" in cli("member", ASHA).stdout


def test_redeem_requires_a_transaction_number(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'x.db'}")
    result = cli("redeem", ASHA, "200", "--code", "123456", exit_code=2)
    assert "Missing option '--transaction'" in result.stderr
    assert "[required]" in cli("redeem", "--help").stdout


def test_revert_takes_its_arguments_in_the_chat_s_order(db_url: str, tmp_path: Path) -> None:
    """TRANSACTION_NUMBER [POINTS] [MEMBER], as /revert: all of it when POINTS is left out,
    the member who redeemed on it when MEMBER is."""
    cli = Cli(db_url)
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv(ROWS))
    cli("import", str(members))
    for bill in ("BILL-1", "BILL-2", "BILL-3"):
        cli("redeem", ASHA, "100", "--transaction", bill, "--reference", f"R-{bill}",
            VALIDATION_CODE_REQUIRED="false")
    assert "reverted 100 points" in cli("revert", "BILL-1").stdout
    assert "reverted 100 points" in cli("revert", "BILL-2", "100").stdout
    assert refusal_line(cli("revert", "BILL-3", "50", ASHA, exit_code=1)).startswith("810 ")
    assert "current points now 1000" in cli("revert", "BILL-3", "100", ASHA).stdout
    assert refusal_line(cli("revert", "BILL-3", exit_code=1)).startswith("812 ")
    assert refusal_line(cli("revert", "BILL-NONE", exit_code=1)).startswith("811 ")
    assert "revert [OPTIONS] {transaction} [points] [identifier]" in cli(
        "revert", "--help").stdout


def test_history_limit_refuses_zero_and_negative_values(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'x.db'}")
    for limit in ("0", "-3"):
        assert "--limit" in cli("history", ASHA, "--limit", limit, exit_code=2).stderr


def test_earn_amounts_follow_one_rule_and_the_error_names_the_problem(db_url: str,
                                                                     tmp_path: Path) -> None:
    """Digits, commas between thousands, at most two decimals; no exponent notation (as
    points refuse 1e3, so does money)."""
    cli = Cli(db_url)
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv(ROWS))
    cli("import", str(members))
    assert refusal_line(cli("isredeemable", ASHA, "1e3", exit_code=1)).startswith("801 ")
    assert "exponent notation" in cli("earn", ASHA, "BILL-E", "1e3", exit_code=2).stderr
    assert "exponent notation" in cli("earn", ASHA, "BILL-E", "2.5E2", exit_code=2).stderr
    assert "more than two decimals" in cli("earn", ASHA, "BILL-E", "10.005",
                                           exit_code=2).stderr
    for bad in ("Infinity", "NaN", "ten", "1.2.3"):
        assert "is not an amount of money" in cli("earn", ASHA, "BILL-E", bad,
                                                  exit_code=2).stderr
    assert "issued 1000 points" in cli("earn", ASHA, "BILL-E", "1,000.50").stdout


def test_every_argument_and_option_has_help() -> None:
    import typer.main

    group = typer.main.get_command(app)
    assert all(getattr(param, "help", None) for param in group.params), group.params
    commands = group.commands  # type: ignore[attr-defined]
    assert len(commands) >= 14
    missing = [f"{name} {param.name}" for name, command in commands.items()
               for param in command.params if not getattr(param, "help", None)]
    assert missing == []



def test_the_database_location_is_said_and_an_empty_one_warned_about(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default DATABASE_URL is a relative path: run from another directory, the
    command opens a new, empty database there; it says so instead of only answering 816."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["member", ASHA])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"database: SQLite file {elsewhere / 'loyalty.db'}"
    assert lines[1].startswith(f"warning: the database (SQLite file {elsewhere / 'loyalty.db'}"
                               ") holds no members")
    assert lines[-1] == f"816 {message(816)}"
    # A database with members: the location, no warning, and the answer.
    members = tmp_path / "members.csv"
    members.write_bytes(member_csv(ROWS))
    cli = Cli(f"sqlite:///{tmp_path / 'full.db'}")
    cli("import", str(members))
    result = cli("member", "+919999999999", exit_code=1)
    assert result.stderr.splitlines()[0] == f"database: SQLite file {tmp_path / 'full.db'}"
    assert "warning" not in result.stderr
    url = "postgresql+psycopg://loyalty:pa55word@db.example.com:5432/loyalty"
    assert Database(url).location() == ("postgresql+psycopg://loyalty:***@db.example.com:5432/"
                                        "loyalty")
