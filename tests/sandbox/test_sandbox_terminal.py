"""`loyalty-bot sandbox` driven through a pseudo-terminal, as a staff user would use it: the
real bot, demo members, buttons as numbered choices, codes in the chat."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pexpect

from tests.sandbox.sandbox_support import PROMPT, clean_environment, letter_of, spawn_sandbox


def until_prompt(child: pexpect.spawn) -> str:
    """Everything the sandbox printed up to its next prompt."""
    child.expect(PROMPT)
    return str(child.before)


def test_a_staff_user_redeems_with_the_code_from_the_chat_then_breaks_a_rule(
        tmp_path: Path) -> None:
    child = spawn_sandbox(tmp_path, NO_COLOR="1")
    child.expect("Demo members")
    child.expect("Pick a demo member to be")
    banner = str(child.before)
    assert "Asha Rao" in banner and "+919800000001" in banner and "3,000 pts" in banner
    assert "redeem 500 → 800" in banner

    child.sendline("1")  # pick Asha
    screen = until_prompt(child)
    assert "You are now Asha Rao (+919800000001)" in screen
    assert child.after == PROMPT and "Asha Rao" in screen.splitlines()[-1] + child.after

    child.sendline(letter_of(screen, "Balance"))  # the keyboard's Balance button
    screen = until_prompt(child)
    assert "Current points: 3,000 (worth ₹3,000.00)" in screen

    child.sendline(letter_of(screen, "Redeem"))
    screen = until_prompt(child)
    assert "How many do you want to redeem?" in screen
    child.sendline("500")
    screen = until_prompt(child)
    assert "Redeem 500 points worth ₹500.00?" in screen

    child.sendline(letter_of(screen, "Confirm"))
    screen = until_prompt(child)
    assert "SANDBOX CODE" in screen
    code = re.search(r"Your validation code is (\d{6})", screen)
    assert code, screen
    assert "Validation Code Issued by chat: sent to chat." in screen

    child.sendline(code.group(1))
    screen = until_prompt(child)
    assert "800 Points redeemed successfully" in screen
    assert "Points redeemed: 500 (worth ₹500.00)" in screen
    assert "New balance: 2,500 points" in screen

    child.sendline("/balance")
    assert "Current points: 2,500" in until_prompt(child)

    child.sendline("/redeem 6000")
    screen = until_prompt(child)
    assert "819 That is more than you can redeem in one transaction" in screen
    child.sendline("4000")  # still at the amount step: another amount
    screen = until_prompt(child)
    assert "803 You do not have enough points for that amount." in screen
    assert "(you have 2,500 points)" in screen

    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Traceback" not in str(child.before)


def test_other_members_the_contact_button_as_reset_and_ctrl_c(tmp_path: Path) -> None:
    child = spawn_sandbox(tmp_path, NO_COLOR="1")
    child.expect("Pick a demo member to be")
    child.sendline("6")  # Kabir, campaign-only
    screen = until_prompt(child)
    assert "You are now Kabir Singh" in screen
    child.sendline("/contact")  # his own contact, as the request_contact button shares it
    screen = until_prompt(child)
    assert "shared my contact +919800000006" in screen
    assert "686 You joined through a campaign" in screen

    child.sendline("/as +919800000008")  # Vikram, marked as fraud
    assert "You are now Vikram Das" in until_prompt(child)
    child.sendline("/redeem 500")
    assert "809 Your account needs a check before points can be redeemed." in until_prompt(child)

    child.sendline("/contact +919811111111")  # a number not in the program
    assert "816 We could not find a member" in until_prompt(child)

    child.sendline("/as 1")
    until_prompt(child)
    child.sendline("/redeem 500")
    child.sendline(letter_of(until_prompt(child), "Confirm"))
    child.sendline("000000")  # wrong (or, once in a million, right: then 800)
    screen = until_prompt(child) + until_prompt(child)
    assert re.search(r"808 The validation code is not valid|800 Points", screen)
    child.sendline("/reset")
    screen = until_prompt(child)
    assert "The sandbox was reset" in screen and "You are Asha Rao again." in screen
    child.sendline("/balance")
    assert "Current points: 3,000" in until_prompt(child)

    child.sendcontrol("c")
    child.expect("Bye!")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Traceback" not in str(child.before)


def test_a_first_visit_shares_the_contact_with_one_keystroke(tmp_path: Path) -> None:
    child = spawn_sandbox(tmp_path, NO_COLOR="1")
    child.expect("Pick a demo member to be")
    child.sendline("2")  # Ravi
    until_prompt(child)
    child.sendline("/forget")  # this account is a new, unverified Telegram user now
    assert "linked to no member now" in until_prompt(child)
    child.sendline("/balance")
    screen = until_prompt(child)
    assert "First share your phone number" in screen
    share = letter_of(screen, "Share my phone number")
    assert "(Ravi Kumar, +919800000002)" in screen
    child.sendline(share)
    screen = until_prompt(child)
    assert "shared my contact +919800000002 (Ravi Kumar)" in screen
    assert "Welcome, Ravi Kumar! You have 1,500 points." in screen
    child.sendline("/redeem 500")
    assert "806 Your lifetime purchases are not yet enough" in until_prompt(child)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_colours_on_a_terminal_and_none_with_no_color(tmp_path: Path) -> None:
    for name, env, coloured in (("a", {}, True), ("b", {"NO_COLOR": "1"}, False)):
        (tmp_path / name).mkdir()
        child = spawn_sandbox(tmp_path / name, **env)
        child.expect("Pick a demo member to be")
        assert ("\x1b[" in str(child.before)) is coloured
        child.sendline("/quit")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0


def test_piped_input_works_without_a_terminal_and_without_colours(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bot.cli", "sandbox"], cwd=tmp_path,
                          input="3\n/redeem 100\n", capture_output=True, text=True,
                          env=clean_environment(), timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout
    assert "You are now Priya Shah" in done.stdout
    assert "804 You do not have enough current points" in done.stdout
    assert "Bye!" in done.stdout
    assert done.stderr == ""


def test_keep_reuses_the_database_and_a_fresh_start_does_not(tmp_path: Path) -> None:
    def session(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "bot.cli", "sandbox", *args],
                              cwd=tmp_path, input="1\n/goodwill 9800000001 500 testing\n",
                              capture_output=True, text=True, env=clean_environment(),
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "current points now 3,500" in session()
    kept = session("--keep")
    assert "kept from last time" in kept
    assert "current points now 4,000" in kept  # the 500 given before were kept
    assert "current points now 3,500" in session()  # fresh again
    assert (tmp_path / "sandbox-data" / "terminal.db").exists()
    assert (tmp_path / "sandbox-data" / "sandbox.log").exists()


def ignore_sigint_with_open_umask() -> None:
    """What a background job of a non-interactive shell (`&`, nohup) inherits: SIGINT
    ignored; and a umask that lets everyone read new files."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.umask(0)


def test_ctrl_c_leaves_even_when_sigint_was_inherited_ignored_and_the_files_are_private(
        tmp_path: Path) -> None:
    child = spawn_sandbox(tmp_path, NO_COLOR="1", preexec_fn=ignore_sigint_with_open_umask)
    child.expect("Pick a demo member to be")
    child.sendline("1")
    assert "You are now Asha Rao" in until_prompt(child)
    data = tmp_path / "sandbox-data"
    database = data / "terminal.db"
    modes = {path.name: stat.S_IMODE(path.stat().st_mode)
             for path in (data, database, Path(f"{database}-wal"), Path(f"{database}-shm"))}
    assert modes == {"sandbox-data": 0o700, "terminal.db": 0o600, "terminal.db-wal": 0o600,
                     "terminal.db-shm": 0o600}
    child.sendcontrol("c")
    child.expect("Bye!")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Traceback" not in str(child.before)
