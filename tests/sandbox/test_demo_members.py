"""The demo members reach the rules they claim: every claimed status code arises through the
engine with the sandbox's rules, and the same code reaches the chat through the real bot.
Seeding goes through the engine, keeps the ledger whole, and /reset gives the same start."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from telegram import Update

from bot import demo, replies
from bot.sandbox import build_sandbox_application, load_sandbox_settings, sandbox_overrides
from bot.settings import BotSettings, load_bot_settings
from bot.standin import StandInRequest
from core.chat import Chats
from core.delivery import RecordingSender
from core.service import PointsService
from core.status import PointsError
from tests.sandbox.sandbox_support import isolate
from tests.support.databases import own_database

CLAIMS = [pytest.param(member, claim, id=f"{member.name}-{claim.code}-{claim.action}")
          for member in demo.DEMO_MEMBERS for claim in member.claims]
ASHA = demo.DEMO_MEMBERS[0]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The sandbox database: a SQLite file, or a database of its own on PostgreSQL."""
    with own_database(request.param, tmp_path, "sandbox.db") as url:
        yield url


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
             ) -> BotSettings:
    isolate(monkeypatch, tmp_path)
    return load_bot_settings(require_token=False, **sandbox_overrides(database_url))


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender("test")


@pytest.fixture
def service(settings: BotSettings, sender: RecordingSender) -> Iterator[PointsService]:
    engine = PointsService(settings, senders=[sender])
    demo.seed(engine)
    yield engine
    engine.db.dispose()


def outcome(service: PointsService, sender: RecordingSender, mobile: str, action: str,
            points: int = 0, code: str | None = None) -> int:
    """The status code the engine answers for `action` by the member with `mobile`, called
    the way the bot calls it."""
    try:
        if action == "contact":
            Chats(service).verify_contact("5550001", mobile.lstrip("+"))
            return 0  # linked: no refusal
        checked = service.is_redeemable(mobile, points)
        service.issue_validation_code(mobile, checked.points)
        result = service.redeem(mobile, checked.points, code or sender.last_code(),
                                transaction_number="TG-TEST-1", external_reference="test-1")
        return result.status.code
    except PointsError as error:
        return error.code


@pytest.mark.parametrize(("member", "claim"), CLAIMS)
def test_each_demo_member_gets_the_code_they_claim_from_the_engine(
        service: PointsService, sender: RecordingSender, member: demo.DemoMember,
        claim: demo.Claim) -> None:
    assert outcome(service, sender, member.mobile, claim.action, claim.points) == claim.code


def test_the_codes_anyone_can_reach(service: PointsService, sender: RecordingSender) -> None:
    assert outcome(service, sender, ASHA.mobile, "redeem", 50) == 821
    assert outcome(service, sender, ASHA.mobile, "redeem", 120) == 807
    assert outcome(service, sender, ASHA.mobile, "redeem", 500, code="000000") in (808, 800)
    assert outcome(service, sender, demo.UNKNOWN_MOBILE, "contact") == 816
    assert [code for _, code in demo.ANYONE] == [821, 807, 808, 816]


def test_between_them_the_demo_members_reach_every_rule() -> None:
    claimed = {claim.code for member in demo.DEMO_MEMBERS for claim in member.claims}
    claimed |= {code for _, code in demo.ANYONE}
    rules = {686, 881, 809, 808, 821, 804, 805, 806, 807, 819, 803, 800, 816}
    assert rules <= claimed
    assert len({m.mobile for m in demo.DEMO_MEMBERS}) == len(demo.DEMO_MEMBERS)
    assert demo.UNKNOWN_MOBILE not in {m.mobile for m in demo.DEMO_MEMBERS}


def test_seeding_goes_through_the_engine_and_keeps_the_ledger_whole(
        service: PointsService) -> None:
    members = {m.mobile: m for m in demo.members(service)}
    assert len(members) == len(demo.DEMO_MEMBERS)
    asha = members[ASHA.mobile]
    assert (asha.current_points, asha.lifetime_points, str(asha.lifetime_purchases)) == \
        (3000, 3200, "21000.00")
    sources = [entry.source for entry in service.ledger_entries(ASHA.mobile)]
    assert sources == ["import", "earn", "goodwill", "redemption", "reversal"]
    history = service.history(ASHA.mobile)
    assert [(item.kind, item.points) for item in history] == [("reversal", 100),
                                                              ("redemption", 300)]
    assert service.audit() == []


def test_reset_gives_the_same_start(service: PointsService) -> None:
    before = {m.mobile: (m.current_points, m.lifetime_points, m.lifetime_purchases)
              for m in demo.members(service)}
    service.goodwill(ASHA.mobile, 700, reason="test", staff="test")
    after = {m.mobile: (m.current_points, m.lifetime_points, m.lifetime_purchases)
             for m in demo.reset(service)}
    assert after == before
    assert service.audit() == []
    assert not demo.seed_if_empty(service)  # seeded already: nothing added
    assert service.member_count() == len(demo.DEMO_MEMBERS)


@pytest.mark.parametrize(("member", "claim"), CLAIMS)
async def test_the_bot_shows_each_claimed_code(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path, member: demo.DemoMember,
                                               claim: demo.Claim) -> None:
    """What staff see in the sandbox: `/as` the member, then redeem or share the contact."""
    isolate(monkeypatch, tmp_path)
    settings = load_sandbox_settings(telegram_bot_token="1:x", staff_telegram_ids="900",
                                     database_url=f"sqlite:///{tmp_path / 'prod.db'}",
                                     sandbox_database_url=f"sqlite:///{tmp_path / 's.db'}")
    stand_in = StandInRequest()
    application = build_sandbox_application(settings, request=stand_in, mark="")
    await application.initialize()
    staff = stand_in.user(900, "Staff")

    async def send(update: dict[str, Any]) -> str:
        mark = stand_in.mark()
        await application.process_update(Update.de_json(update, application.bot))
        return "\n".join(m.text for m in stand_in.messages_since(mark, staff.id))

    try:
        assert f"You are now {member.name}" in await send(staff.says(f"/as {member.mobile}"))
        if claim.action == "contact":
            text = await send(staff.shares_contact(member.telegram_phone))
        else:
            text = await send(staff.says(f"/redeem {claim.points}"))
            if claim.code == 800:
                confirm = replies.ENGLISH.in_language(member.language)("button.confirm")
                await send(staff.presses(stand_in.last_message(staff.id), confirm))
                code = re.findall(r"\b(\d{6})\b", "\n".join(
                    t for t in stand_in.texts(staff.id) if t.startswith("🧪 SANDBOX CODE")))[-1]
                text = await send(staff.says(code))
        assert re.search(rf"^{claim.code} ", text, re.MULTILINE), text
        if member.language == "hi":  # the Hindi-speaking member reads Hindi
            assert re.search(r"[\u0900-\u097F]", text) and "points" not in text, text
    finally:
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
