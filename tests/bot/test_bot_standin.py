"""The stand-in Bot API on its own: what it answers, what it records, how it fails. The
terminal sandbox builds on this API, so it is pinned down here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, EndPointNotFound, NetworkError, RetryAfter, TimedOut

from bot.standin import ApiCall, ApiRefusal, Fault, StandInRequest

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@pytest.fixture
async def bot() -> AsyncIterator[tuple[Bot, StandInRequest]]:
    stand_in = StandInRequest(bot_id=42, bot_username="PointsBot")
    async with Bot("42:TOKEN", request=stand_in, get_updates_request=stand_in) as client:
        yield client, stand_in


async def test_it_answers_get_me_and_records_messages(bot: tuple[Bot, StandInRequest]) -> None:
    client, stand_in = bot
    assert client.username == "PointsBot" and client.id == 42
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="g:1")]])
    sent = await client.send_message(chat_id=7, text="hello", reply_markup=markup)
    assert sent.message_id == 1 and sent.chat.id == 7
    [message] = stand_in.messages(7)
    assert message.text == "hello" and message.button("Go").callback_data == "g:1"
    call = stand_in.calls_to("sendMessage")[0]
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "Go"
    assert call.result["message_id"] == 1 and call.fault is None

    await client.edit_message_text(chat_id=7, message_id=1, text="changed")
    assert stand_in.last_message(7).text == "changed"
    assert stand_in.last_message(7).buttons == []
    assert stand_in.last_message(7).edits == 1
    with pytest.raises(BadRequest, match="not modified"):
        await client.edit_message_text(chat_id=7, message_id=1, text="changed")
    with pytest.raises(BadRequest, match="not found"):
        await client.edit_message_text(chat_id=7, message_id=99, text="x")


async def test_mark_reads_only_what_came_after(bot: tuple[Bot, StandInRequest]) -> None:
    client, stand_in = bot
    await client.send_message(chat_id=7, text="one")
    mark = stand_in.mark()
    await client.send_message(chat_id=7, text="two")
    await client.send_message(chat_id=8, text="elsewhere")
    assert [m.text for m in stand_in.messages_since(mark, 7)] == ["two"]
    assert [m.text for m in stand_in.messages_since(mark)] == ["two", "elsewhere"]
    assert stand_in.texts(7) == ["one", "two"]


async def test_faults_hit_the_calls_they_are_aimed_at(bot: tuple[Bot, StandInRequest]) -> None:
    client, stand_in = bot
    stand_in.fail_next(Fault.retry_after(3), methods={"sendMessage"}, chat_id=8)
    await client.send_message(chat_id=7, text="other chat: untouched")
    with pytest.raises(RetryAfter) as limited:
        await client.send_message(chat_id=8, text="x")
    assert limited.value.retry_after == 3
    stand_in.fail_next(Fault.server_error(502), times=2)
    for _ in range(2):
        with pytest.raises(NetworkError):
            await client.send_message(chat_id=8, text="x")
    stand_in.fail_next(Fault.timeout())
    with pytest.raises(TimedOut):
        await client.send_message(chat_id=8, text="lost")
    stand_in.fail_next(Fault.timeout(delivered=True))
    with pytest.raises(TimedOut):
        await client.send_message(chat_id=8, text="arrived")
    assert stand_in.texts(8) == ["arrived"]
    assert [c.fault for c in stand_in.calls_to("sendMessage")] == [
        None, "retry_after", "server_error", "server_error", "timeout", "timeout"]


async def test_updates_are_served_by_get_updates(bot: tuple[Bot, StandInRequest]) -> None:
    client, stand_in = bot
    user = stand_in.user(5, "Ann")
    stand_in.put_update(user.says("/start"))
    stand_in.put_update(user.shares_contact("919812345678"))
    updates = await client.get_updates(timeout=0)
    messages = [u.message for u in updates if u.message is not None]
    assert [m.text for m in messages] == ["/start", None]
    assert messages[1].contact is not None and messages[1].contact.user_id == 5
    again = await client.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    assert again == ()


async def test_responders_and_subscribers_extend_it(bot: tuple[Bot, StandInRequest]) -> None:
    client, stand_in = bot
    seen: list[ApiCall] = []
    stand_in.subscribe(seen.append)

    def refuse(params: dict[str, object]) -> object:
        raise ApiRefusal(400, "Bad Request: chat not found")

    stand_in.responders["sendMessage"] = refuse
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await client.send_message(chat_id=1, text="x")
    with pytest.raises(EndPointNotFound):  # Telegram answers 404 to a method it does not know
        await client.do_api_request("noSuchMethod")
    assert [c.method for c in seen] == ["sendMessage", "noSuchMethod"]
