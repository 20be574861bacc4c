"""The `loyalty-bot` command line on a real database (DATABASE_URL): points in, the points
API's operations, the catalogue and the audit. A refusal prints its code and message and
exits 1; input no code covers (a bad import file) exits 2 and lists what is wrong.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from points_harness import member_csv
from typer.testing import CliRunner, Result

from bot.cli import app
from core.status import CATALOGUE, message

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
    lines = [line for line in result.stderr.splitlines() if line.strip()]
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
    assert "current points now 1000" in cli("revert", ASHA, "BILL-1", "150").stdout

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
        (("revert", ASHA, "NO-SUCH-BILL", "10"), 811),
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


def test_bad_import_file_lists_every_bad_row_and_exits_2(db_url: str, tmp_path: Path) -> None:
    cli = Cli(db_url)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(member_csv([ROWS[0], {"mobile": "12"}, {"name": "nobody"}]))
    result = cli("import", str(bad), exit_code=2)
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
    assert missing.stderr.strip() == f"816 {message(816)}"
