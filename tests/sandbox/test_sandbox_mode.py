"""`loyalty-bot run --sandbox`: its own database (never the production one), the demo
members, codes in the chat, /as, /forget and /reset for staff only, every message marked;
and production untouched without it. The application is the real one, on the stand-in
Bot API."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from telegram import Update
from telegram.ext import Application

from bot import demo
from bot.app import build_application
from bot.sandbox import (
    SANDBOX_MARK,
    build_sandbox_application,
    install,
    load_sandbox_settings,
    same_database,
)
from bot.settings import load_bot_settings
from bot.standin import BotMessage, StandInRequest, TelegramUser
from core import sandbox as sandbox_db
from core.service import PointsService
from core.settings import load_settings
from core.status import PointsError
from tests.sandbox.sandbox_support import clean_environment, isolate
from tests.support.databases import own_database

TOKEN = "123456:SANDBOX-TEST"
PROD_PG = "postgresql+psycopg://app@127.0.0.1:5432/prod"
STAFF, MEMBER = 900, 1001
AnyApplication = Application[Any, Any, Any, Any, Any, Any]


@pytest.fixture
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate(monkeypatch, tmp_path)


# ---------------------------------------------------------------- the database


def run_sandbox(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", "run", "--sandbox"], cwd=cwd,
                          env=clean_environment(TELEGRAM_BOT_TOKEN=TOKEN, **env),
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("env", [
    {"SANDBOX_DATABASE_URL": "sqlite:///loyalty.db"},  # DATABASE_URL's default
    {"DATABASE_URL": "sqlite:///data/prod.db", "SANDBOX_DATABASE_URL": "sqlite:///data/prod.db"},
    {"DATABASE_URL": "sqlite:///data/prod.db",
     "SANDBOX_DATABASE_URL": "sqlite:///data/../data/./prod.db"},
    {"DATABASE_URL": "sqlite:///data/prod.db", "SANDBOX_DATABASE_URL": "{cwd}/data/prod.db"},
    {"DATABASE_URL": "sqlite:///sandbox-data/telegram.db"},  # the sandbox's default
    {"DATABASE_URL": "sqlite:///data/prod.db", "SANDBOX_DATABASE_URL": "sqlite:///link/prod.db"},
    {"DATABASE_URL": PROD_PG, "SANDBOX_DATABASE_URL": "postgresql+psycopg://app@127.0.0.1/prod"},
    {"DATABASE_URL": PROD_PG,
     "SANDBOX_DATABASE_URL": "postgresql+psycopg://app@localhost:5432/prod"},
    {"DATABASE_URL": PROD_PG,
     "SANDBOX_DATABASE_URL": "postgresql+psycopg:///prod?host=127.0.0.1&port=5432"},
    {"DATABASE_URL": PROD_PG, "SANDBOX_DATABASE_URL": "postgresql+psycopg:///prod"},
], ids=["default", "same", "dotted", "absolute", "sandbox-default", "symlink", "no-port",
        "localhost", "query-host-port", "unix-socket"])
def test_run_sandbox_refuses_the_production_database(tmp_path: Path,
                                                     env: dict[str, str]) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    values = {k: v.replace("{cwd}", "sqlite:///" + str(tmp_path)) for k, v in env.items()}
    done = run_sandbox(tmp_path, **values)
    assert done.returncode == 1
    assert "899" in done.stderr
    assert "SANDBOX_DATABASE_URL is the production DATABASE_URL" in done.stderr
    assert "needs a database of its own" in done.stderr
    assert "Traceback" not in done.stderr
    # Refused before anything was opened: no database file was created or changed.
    assert not list(tmp_path.rglob("*.db"))


@pytest.mark.parametrize(("first", "second", "same"), [
    ("sqlite:///a.db", "sqlite:///a.db", True),
    ("sqlite:///a.db", "sqlite:///sub/../a.db", True),
    ("sqlite:///a.db", "sqlite:///file:a.db?mode=rwc&uri=true", True),
    (PROD_PG, "postgresql+psycopg://app@127.0.0.1/prod", True),  # no port: 5432
    (PROD_PG, "postgresql+psycopg://app@localhost/prod", True),
    (PROD_PG, "postgresql+psycopg://app@[::1]:5432/prod", True),
    (PROD_PG, "postgresql+psycopg:///prod?host=127.0.0.1&port=5432", True),
    (PROD_PG, "postgresql+psycopg:///prod?host=localhost", True),
    (PROD_PG, "postgresql+psycopg:///?host=127.0.0.1&dbname=prod", True),
    (PROD_PG, "postgresql+psycopg:///prod", True),  # the Unix socket: the local server
    (PROD_PG, "postgresql+psycopg:///prod?host=/var/run/postgresql", True),
    (PROD_PG, "postgresql+psycopg://app@127.0.0.1:5432/prod_sandbox", False),
    (PROD_PG, "postgresql+psycopg://app@127.0.0.1:5433/prod", False),
    (PROD_PG, "postgresql+psycopg:///prod?host=127.0.0.1&port=5433", False),
    ("postgresql+psycopg://app@db/loyalty", "postgresql+psycopg://app@db:5432/loyalty", True),
    ("sqlite:///a.db", "sqlite:///./a.db", True),
    ("sqlite:///a.db", "sqlite:///b.db", False),
    ("postgresql+psycopg://app:pw@db:5432/loyalty", "postgresql://other@db:5432/loyalty", True),
    ("postgresql+psycopg://app@localhost/loyalty", "postgresql+psycopg://app@127.0.0.1/loyalty",
     True),
    ("postgresql+psycopg://app@db/loyalty", "postgresql+psycopg://app@db/loyalty_sandbox",
     False),
    ("postgresql+psycopg://app@db:5432/loyalty", "postgresql+psycopg://app@db:5433/loyalty",
     False),
    ("postgresql+psycopg://app@db/loyalty", "sqlite:///loyalty", False),
    ("postgresql://app@db:abc/loyalty", "postgresql://app@db:abc/loyalty", True),  # unparsable
    ("postgresql://app@db:abc/loyalty", "postgresql://app@db/loyalty", False),
])
def test_what_counts_as_the_same_database(first: str, second: str, same: bool) -> None:
    assert same_database(first, second) is same
    assert same_database(second, first) is same


def test_sandbox_settings_use_their_own_database_the_chat_and_the_sandbox_rules(
        hermetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://app@db/loyalty")
    monkeypatch.setenv("OTP_CHANNEL", "sms")  # production's: the sandbox sends in the chat
    monkeypatch.setenv("REDEMPTION_MIN_POINTS", "1")  # the sandbox has its own rules
    settings = load_sandbox_settings(telegram_bot_token=TOKEN)
    assert settings.database_url == "sqlite:///sandbox-data/telegram.db"
    assert (hermetic / "sandbox-data").is_dir()
    assert settings.channels == ("chat",)
    assert settings.redemption_min_points == 100
    monkeypatch.setenv("SANDBOX_DATABASE_URL", "sqlite:///elsewhere.db")
    assert load_sandbox_settings(telegram_bot_token=TOKEN).database_url == \
        "sqlite:///elsewhere.db"
    with pytest.raises(PointsError) as refused:
        load_sandbox_settings(telegram_bot_token="")
    assert refused.value.code == 888  # a real test bot needs its token


# ---------------------------------------------------------------- the bot in sandbox mode


class Bot:
    """One application and the stand-in Bot API it talks to."""

    def __init__(self, application: AnyApplication, stand_in: StandInRequest) -> None:
        self.application = application
        self.stand_in = stand_in

    def user(self, user_id: int, name: str) -> TelegramUser:
        return self.stand_in.user(user_id, name)

    async def send(self, update: dict[str, Any], chat: int) -> list[BotMessage]:
        mark = self.stand_in.mark()
        await self.application.process_update(Update.de_json(update, self.application.bot))
        return self.stand_in.messages_since(mark, chat)

    async def says(self, user: TelegramUser, text: str) -> str:
        return "\n".join(m.text for m in await self.send(user.says(text), user.id))


@pytest.fixture
async def sandbox_bot(hermetic: Path) -> AsyncIterator[Bot]:
    settings = load_sandbox_settings(telegram_bot_token=TOKEN,
                                     database_url=f"sqlite:///{hermetic / 'prod.db'}",
                                     staff_telegram_ids=str(STAFF))
    stand_in = StandInRequest()
    application = build_sandbox_application(settings, request=stand_in)
    await application.initialize()
    try:
        yield Bot(application, stand_in)
    finally:
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)


async def test_staff_play_a_demo_member_and_every_message_is_marked(sandbox_bot: Bot) -> None:
    staff = sandbox_bot.user(STAFF, "Priya (member care)")
    text = await sandbox_bot.says(staff, "/as 1")
    assert text.startswith(f"{SANDBOX_MARK}\nYou are now Asha Rao (+919800000001)")
    assert "Welcome, Asha Rao! You have 3,000 points." in text

    await sandbox_bot.says(staff, "/redeem 500")
    confirm = sandbox_bot.stand_in.last_message(STAFF)
    replies = await sandbox_bot.send(staff.presses(confirm, "Confirm"), STAFF)
    code_message, sent = replies[0].text, replies[-1].text
    assert code_message.startswith("🧪 SANDBOX CODE")
    assert sent.startswith(SANDBOX_MARK) and "Validation Code Issued by chat" in sent
    code = code_message.split("validation code is ")[1][:6]
    text = await sandbox_bot.says(staff, code)
    assert "800 Points redeemed successfully" in text and "New balance: 2,500 points" in text

    for message in sandbox_bot.stand_in.messages(STAFF):
        assert message.text.startswith("🧪 SANDBOX"), message.text


async def test_as_accepts_any_identifier_and_refuses_unknown_members(sandbox_bot: Bot) -> None:
    staff = sandbox_bot.user(STAFF, "Staff")
    assert "You are now Vikram Das" in await sandbox_bot.says(staff, "/as vikram@example.com")
    assert "809 Your account needs a check" in await sandbox_bot.says(staff, "/redeem 500")
    assert "816 Unable to find customer" in await sandbox_bot.says(staff, "/as +919811111111")
    assert "Usage: /as MOBILE" in await sandbox_bot.says(staff, "/as")
    assert "Current points: 5,000" in await sandbox_bot.says(staff, "/balance")  # still him


async def test_members_cannot_use_the_staff_sandbox_commands(sandbox_bot: Bot) -> None:
    member = sandbox_bot.user(MEMBER, "Somebody")
    for command in ("/as 1", "/reset", "/forget"):
        text = await sandbox_bot.says(member, command)
        assert text == f"{SANDBOX_MARK}\nThis command is for member care staff only."
    assert "Demo members" in await sandbox_bot.says(member, "/demo")
    # Their own phone is in no demo member's file.
    replies = await sandbox_bot.send(member.shares_contact("919811111111"), MEMBER)
    assert "816 We could not find a member" in replies[-1].text
    service = sandbox_bot.application.bot_data["runtime"].service
    refused = [a for a in service.staff_actions() if not a.allowed]
    assert {a.action for a in refused} == {"as", "reset", "forget"}
    assert {a.staff for a in refused} == {f"telegram:{MEMBER}"}


async def test_reset_brings_the_demo_members_back_and_keeps_whom_staff_play(
        sandbox_bot: Bot) -> None:
    staff = sandbox_bot.user(STAFF, "Staff")
    await sandbox_bot.says(staff, "/as 1")
    await sandbox_bot.says(staff, "/goodwill 9800000001 1000 testing")
    assert "Current points: 4,000" in await sandbox_bot.says(staff, "/balance")
    text = await sandbox_bot.says(staff, "/reset")
    assert "The sandbox was reset" in text and "You are Asha Rao again." in text
    assert "Current points: 3,000" in await sandbox_bot.says(staff, "/balance")
    service = sandbox_bot.application.bot_data["runtime"].service
    assert service.audit() == []
    assert [a.action for a in service.staff_actions(1)] == ["sandbox-reset"]


async def test_forget_makes_staff_a_new_member_again(sandbox_bot: Bot) -> None:
    staff = sandbox_bot.user(STAFF, "Staff")
    await sandbox_bot.says(staff, "/as 2")
    assert "linked to no member now" in await sandbox_bot.says(staff, "/forget")
    replies = await sandbox_bot.send(staff.says("/start"), STAFF)
    [[button]] = replies[-1].keyboard or [[]]
    assert button.request_contact
    replies = await sandbox_bot.send(staff.shares_contact("919800000002"), STAFF)
    assert "Welcome, Ravi Kumar! You have 1,500 points." in replies[-1].text


async def test_production_has_no_sandbox_commands_and_no_mark(hermetic: Path) -> None:
    settings = load_bot_settings(telegram_bot_token=TOKEN, otp_channel="chat",
                                 staff_telegram_ids=str(STAFF),
                                 database_url=f"sqlite:///{hermetic / 'prod.db'}")
    stand_in = StandInRequest()
    application = build_application(settings, request=stand_in)
    await application.initialize()
    try:
        bot = Bot(application, stand_in)
        staff = bot.user(STAFF, "Staff")
        for command in ("/as 1", "/reset", "/forget", "/demo"):
            text = await bot.says(staff, command)
            assert text.startswith("Sorry, I did not understand that."), text
        service = application.bot_data["runtime"].service
        assert service.member_count() == 0  # no demo member in production
        assert all("SANDBOX" not in m.text for m in stand_in.messages(STAFF))
    finally:
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)


# ---------------------------------------------------------------- the sandbox mark

PRODUCTION_MEMBERS = (b"mobile,email,external_id,name,type,fraud_status,current_points,"
                      b"lifetime_points,lifetime_purchases\n"
                      b"+919876500001,,,Real Customer,loyalty,NONE,700,700,100.00\n"
                      b"+919876500002,,,Another One,loyalty,NONE,50,90,0\n")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def production_url(request: pytest.FixtureRequest, hermetic: Path) -> Iterator[str]:
    """A production-looking database: real members, no sandbox mark."""
    with own_database(request.param, hermetic, "prod.db") as url:
        service = PointsService(load_settings(database_url=url))
        service.import_csv(PRODUCTION_MEMBERS, filename="customers.csv")
        service.db.dispose()
        yield url


def untouched(url: str) -> None:
    """The production database still has its two members, and no demo member or mark."""
    service = PointsService(load_settings(database_url=url))
    try:
        assert service.member_count() == 2
        assert service.member("+919876500001").current_points == 700
        assert demo.members(service) == []
        assert not sandbox_db.is_sandbox(service.db)
    finally:
        service.db.dispose()


def test_seeding_refuses_a_database_with_members_and_no_sandbox_mark(
        production_url: str) -> None:
    """However the URL guard was passed, the sandbox does not seed a database that may be
    production's."""
    settings = load_sandbox_settings(telegram_bot_token=TOKEN,
                                     sandbox_database_url=production_url,
                                     database_url="sqlite:///elsewhere.db")
    with pytest.raises(PointsError) as refused:
        build_sandbox_application(settings, request=StandInRequest())
    assert refused.value.code == 899
    assert "no sandbox mark" in refused.value.detail
    service = PointsService(load_settings(database_url=production_url))
    try:
        for seeding in (demo.seed, demo.seed_if_empty, demo.reset):
            with pytest.raises(PointsError) as refused:
                seeding(service)
            assert refused.value.code == 899
    finally:
        service.db.dispose()
    untouched(production_url)


async def test_reset_refuses_a_database_with_members_and_no_sandbox_mark(
        production_url: str) -> None:
    """The sandbox commands on an application whose database is production's: /reset
    answers 899 and deletes nothing."""
    settings = load_bot_settings(telegram_bot_token=TOKEN, otp_channel="chat",
                                 staff_telegram_ids=str(STAFF), database_url=production_url)
    stand_in = StandInRequest()
    application = build_application(settings, request=stand_in)
    install(application)
    await application.initialize()
    try:
        text = await Bot(application, stand_in).says(stand_in.user(STAFF, "Staff"), "/reset")
        assert text.startswith(f"{SANDBOX_MARK}\n899 Configuration is invalid"), text
        assert "no sandbox mark" in text
    finally:
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
    untouched(production_url)


async def test_the_sandbox_marks_the_database_it_seeds_and_reset_keeps_the_mark(
        sandbox_bot: Bot) -> None:
    service = sandbox_bot.application.bot_data["runtime"].service
    assert sandbox_db.is_sandbox(service.db)
    assert "The sandbox was reset" in await sandbox_bot.says(sandbox_bot.user(STAFF, "S"),
                                                             "/reset")
    assert sandbox_db.is_sandbox(service.db)
    assert len(demo.members(service)) == len(demo.DEMO_MEMBERS)


def test_the_sandbox_data_directory_is_the_owners_only(hermetic: Path) -> None:
    previous = os.umask(0)
    try:
        load_sandbox_settings(telegram_bot_token=TOKEN)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((hermetic / "sandbox-data").stat().st_mode) == 0o700
