"""The webhook server, over real HTTP on 127.0.0.1: the secret token, the health check,
and the webhook registered with Telegram."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlmodel import select

from core.models import HandledUpdate
from tests.bot.bot_harness import World, webhook_served

SECRET = "s3cret-Token_1"
WEBHOOK = {"webhook_url": "https://bot.example.com/telegram/hook", "webhook_secret": SECRET,
           "webhook_listen": "127.0.0.1", "webhook_port": 0,
           "secret_key": "a-real-secret-for-production"}


@dataclass
class Served:
    client: httpx.AsyncClient
    world: World


@pytest.fixture
async def served(world: World) -> AsyncIterator[Served]:
    """The bot served by `serve_webhook`, as `loyalty-bot run` does with WEBHOOK_URL."""
    async with webhook_served(world, WEBHOOK) as port, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield Served(client, world)


async def test_the_webhook_is_registered_with_its_secret(served: Served) -> None:
    webhook = served.world.stand_in.webhook
    assert webhook is not None
    assert webhook["url"] == WEBHOOK["webhook_url"]
    assert webhook["secret_token"] == SECRET
    assert webhook["allowed_updates"] == ["message", "callback_query"]
    assert [c["command"] for c in served.world.stand_in.commands] == [
        "balance", "redeem", "history", "language", "cancel", "help"]


@pytest.mark.parametrize("headers", [{}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                                     {"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"},
                                     {"X-Telegram-Bot-Api-Secret-Token": SECRET[:-1]}])
async def test_a_request_without_the_right_secret_is_refused_and_not_processed(
        served: Served, headers: dict[str, str]) -> None:
    user = served.world.stand_in.user(1001, "Asha")
    update = user.says("/start")
    answer = await served.client.post("/telegram/hook", json=update, headers=headers)
    assert answer.status_code == 403
    assert served.world.stand_in.messages(1001) == []
    # Not even claimed: the same update with the right secret is handled.
    answer = await served.client.post("/telegram/hook", json=update,
                                      headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert answer.status_code == 200
    assert "share your phone number" in served.world.stand_in.last_message(1001).text


async def test_the_right_secret_is_processed_once(served: Served) -> None:
    user = served.world.stand_in.user(1001, "Asha")
    secret = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    update = user.says("/cancel")  # a write is claimed (a read like /help is not)
    answer = await served.client.post("/telegram/hook/", json=update, headers=secret)
    assert answer.status_code == 200
    assert len(served.world.stand_in.messages(1001)) == 1
    answer = await served.client.post("/telegram/hook", json=update, headers=secret)
    assert answer.status_code == 200  # Telegram delivered it again: answered again, from
    first, again = served.world.stand_in.messages(1001)  # its claim, and nothing redone
    assert again.text == first.text
    assert served.world.service().db.run(lambda s: len(s.exec(select(HandledUpdate)).all()),
                                         write=False) == 1


async def test_a_whole_redemption_through_the_webhook(served: Served) -> None:
    stand_in = served.world.stand_in
    user = stand_in.user(1001, "Asha")
    secret = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    async def post(update: dict[str, object]) -> None:
        answer = await served.client.post("/telegram/hook", json=update, headers=secret)
        assert answer.status_code == 200

    await post(user.says("/start"))
    await post(user.shares_contact("919812345678"))
    await post(user.says("/redeem 500"))
    await post(user.presses(stand_in.last_message(1001), "Confirm"))
    code = next(m.text for m in stand_in.messages(1001) if "SANDBOX" in m.text).split(
        "validation code is ")[1][:6]
    await post(user.says(code))
    assert stand_in.last_message(1001).text.startswith("800 ")


async def test_other_requests_are_refused(served: Served) -> None:
    secret = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    answer = await served.client.post("/telegram/hook", content=b"not json", headers=secret)
    assert answer.status_code == 400
    answer = await served.client.get("/telegram/hook", headers=secret)
    assert answer.status_code == 405
    answer = await served.client.post("/elsewhere", json={}, headers=secret)
    assert answer.status_code == 404


async def test_the_health_check_answers(served: Served) -> None:
    answer = await served.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"ok": True}
