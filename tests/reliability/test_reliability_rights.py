"""Who may do what, the webhook's angle: whatever a caller puts in the secret-token header
(Hypothesis: any text, near misses of the secret, other cases, padding, repeats), only the
exact WEBHOOK_SECRET is let in; every other request is refused (403, or 400 or a dropped
connection for a header that is not valid HTTP) and never reaches the bot (the same
update, sent afterwards with the right secret, is still handled).

The rest of "who may do what" is proved where it lives:
tests/bot/test_bot_member_flow.py::test_members_see_only_their_own_data,
::test_a_contact_of_someone_else_is_refused (and here
test_reliability_hostile.py::test_a_forwarded_contact_never_takes_over_a_member),
tests/bot/test_bot_staff.py::test_staff_commands_are_refused_for_anyone_else_and_logged,
tests/bot/test_bot_webhook.py::test_a_request_without_the_right_secret_is_refused_and_not_processed,
tests/sandbox/test_sandbox_mode.py::test_run_sandbox_refuses_the_production_database.
"""

from __future__ import annotations

import asyncio

import httpx
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from bot.app import build_application
from bot.webhook import SECRET_HEADER, serve_webhook
from tests.bot.bot_harness import World

SECRET = "Webhook_Secret-0123456789"
WEBHOOK = {"webhook_url": "https://bot.example.com/hook", "webhook_secret": SECRET,
           "webhook_listen": "127.0.0.1", "webhook_port": 0,
           "secret_key": "a-real-secret-for-production"}
near_misses = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40),
    st.builds(lambda i, c: SECRET[:i] + c + SECRET[i + 1:], st.integers(0, len(SECRET) - 1),
              st.characters(min_codepoint=0x21, max_codepoint=0x7E)),
    st.sampled_from([SECRET.lower(), SECRET.upper(), SECRET + " x", "x" + SECRET,
                     SECRET * 2, SECRET[:-1], SECRET + "\u00e9", f"{SECRET},{SECRET}"]))


async def test_only_the_exact_secret_gets_in(world: World) -> None:
    settings_ = world.settings(**WEBHOOK)
    application = build_application(settings_, world.service(**WEBHOOK),
                                    request=world.stand_in)
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_webhook(application, settings_, stop=stop,
                                             on_ready=ready.set_result))
    port = await asyncio.wait_for(ready, 10)
    loop = asyncio.get_running_loop()
    user = world.stand_in.user(1001, "Asha")
    tried: list[str] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            @settings(max_examples=60, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow])
            @given(secret=near_misses)
            def refused(secret: str) -> None:
                if secret == SECRET:
                    return
                try:
                    answer = client.post("/hook", json=user.says("/start"),
                                         headers={SECRET_HEADER: secret.encode("latin-1")})
                except httpx.LocalProtocolError:
                    reject()  # not even this client will send it
                except (httpx.ReadError, httpx.RemoteProtocolError):
                    # The server dropped the connection over a header that is not valid
                    # HTTP: refused too, before the bot (checked below).
                    tried.append(secret)
                    return
                tried.append(secret)
                # 403 from the endpoint, or 400 when the header is not even valid HTTP
                # (a control character): refused either way, before the bot.
                assert answer.status_code in (403, 400), secret

            # The server runs on this loop: drive the client from a thread.
            await loop.run_in_executor(None, refused)
            assert world.stand_in.messages(1001) == []  # nothing reached the bot
            answer = await loop.run_in_executor(None, lambda: client.post(
                "/hook", json=user.says("/start"), headers={SECRET_HEADER: SECRET}))
            assert answer.status_code == 200
            assert "share your phone number" in world.stand_in.last_message(1001).text
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert len(tried) >= 30
