"""Under load: 50 processes redeem from one member at the same moment (SQLite and
PostgreSQL), and 200 members redeem at once through four bot worker processes, each with
its own `Application` and stand-in Bot API, on one PostgreSQL database. The drills are
`benchmarks.drills.concurrent_redemptions` and `bot_load` (what benchmarks/reliability.py
runs too); these tests hold them to zero violations.

Extends tests/core/test_core_concurrency.py (24 processes, one amount) to 50 processes of
different amounts, where a refused amount that would have fitted the balance left would
show a lost debit.
"""

from __future__ import annotations

import asyncio

import pytest
from telegram import Update

from benchmarks.drills import bot_load, concurrent_redemptions
from tests.bot.bot_harness import ASHA, World

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@pytest.mark.slow
def test_fifty_processes_redeeming_from_one_member_never_overdraw(database_url: str) -> None:
    outcome = concurrent_redemptions(database_url, processes=50, balance=2000)
    assert outcome.violations == []
    assert outcome.requests == 50
    assert " refused" in outcome.detail and not outcome.detail.startswith("0 redeemed")


@pytest.mark.slow
@pytest.mark.postgres
def test_two_hundred_members_redeem_at_once_through_four_applications(
        postgres_url: str) -> None:
    outcome = bot_load(postgres_url, members=200, workers=4)
    assert outcome.violations == []
    assert outcome.detail == "200 of 200 redeemed once"


async def test_an_update_redelivered_to_another_worker_at_the_same_moment_is_handled_once(
        world: World) -> None:
    """Telegram delivers the code entry again while the first delivery is still being
    handled, and a load balancer gives it to another worker: one redemption; every
    delivery is answered with its one outcome (a redelivery is answered again from the
    update's claim, since its first answer may never have reached the member)."""
    chat = await world.chat()
    other = await world.application()
    await chat.link()
    await chat.say("/redeem 500")
    await chat.press("Confirm")
    entry = chat.user.says(chat.chat_code())
    mark = world.stand_in.mark()
    await asyncio.gather(*(app.process_update(Update.de_json(dict(entry), app.bot))
                           for app in (chat.application, other, chat.application, other)))
    answers = world.stand_in.messages_since(mark, chat.user.id)
    assert len(answers) == 4 and len({m.text for m in answers}) == 1
    assert answers[0].text.startswith("800 ")
    assert world.member(ASHA["mobile"]).current_points == 1500
    assert world.services[0].audit() == []
