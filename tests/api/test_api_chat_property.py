"""One member, two ways in: redemptions through the chat (`core.chat.Chats.handle`, the
code delivered through `Chats.deliver` as the bot does after commit) and through the HTTP
API (a till with a validation code, a till allowed to skip it, replays of earlier API
requests), interleaved, and some run at the same time on threads. Hypothesis draws the
sequence; after each one:

- the member was never overdrawn: current points == the opening points minus exactly the
  points of the redemptions that succeeded (whichever way), and never below zero;
- the ledger audit is clean;
- every successful redemption is in the member's history exactly once, and nothing else
  is; a replayed API request answered the first redemption again and debited nothing.

On a SQLite file and, with LOYALTY_TEST_POSTGRES_URL, on PostgreSQL. The app is served by
uvicorn on a free port (tests.api.api_harness) over the same engine the chat uses.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.chat import Chats
from core.chat_io import Command, Outcome, Press, Sender, Text
from core.service import MemberView
from tests.api.api_harness import Api, api

REDEEM = "/v1.1/points/redeem"
CODE = "/v1.1/points/validationcode"
AMOUNTS = (100, 250, 500, 1000, 1500)
EXAMPLES = 12
THREAD_TIMEOUT = 60.0


# ---------------------------------------------------------------- the operations


@dataclass(frozen=True)
class ChatRedeem:
    points: int


@dataclass(frozen=True)
class ApiRedeem:
    points: int
    skip: bool  # by the till allowed to skip the validation code; else with a code


@dataclass(frozen=True)
class ApiReplay:
    index: int  # which earlier API request (modulo how many there were) to send again


@dataclass(frozen=True)
class AtOnce:
    operations: tuple[ChatRedeem | ApiRedeem, ...]


Single = ChatRedeem | ApiRedeem | ApiReplay
Step = Single | AtOnce

amounts = st.sampled_from(AMOUNTS)
api_redeems = st.builds(ApiRedeem, amounts, st.booleans())
single = st.one_of(st.builds(ChatRedeem, amounts), api_redeems)
# At once: API redemptions, and at most one chat redemption (a chat's updates are handled
# one after another, in order: the bot runs each chat's in sequence).
together = st.builds(lambda chat, apis: AtOnce((*chat, *apis)),
                     st.lists(st.builds(ChatRedeem, amounts), max_size=1),
                     st.lists(api_redeems, min_size=1, max_size=3)).filter(
                         lambda step: len(step.operations) >= 2)
steps = st.lists(st.one_of(single, st.builds(ApiReplay, st.integers(0, 20)), together),
                 min_size=1, max_size=6)


@dataclass
class Ledger:
    """What the test saw succeed, and the API requests it may replay."""

    outcomes: Counter[str]  # across examples: what happened, by way in
    redeemed: dict[str, int] = field(default_factory=dict)  # redemption id -> points
    requests: list[tuple[dict[str, Any], bool, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def success(self, way: str, redemption_id: str, points: int) -> None:
        with self.lock:
            assert redemption_id not in self.redeemed, f"{redemption_id} succeeded twice"
            self.redeemed[redemption_id] = points
            self.outcomes[f"{way} redeemed"] += 1

    def saw(self, what: str) -> None:
        with self.lock:
            self.outcomes[what] += 1


@dataclass
class World:
    """The served API, the chat over the same engine, and one client per till and
    thread (httpx clients are not shared between threads)."""

    a: Api
    chats: Chats
    tills: dict[bool, tuple[str, str]]  # skip allowed? -> (name, password)
    local: threading.local = field(default_factory=threading.local)

    def http(self, skip: bool) -> httpx.Client:
        clients = getattr(self.local, "clients", None)
        if clients is None:
            clients = self.local.clients = {}
        if skip not in clients:
            name, password = self.tills[skip]
            clients[skip] = self.a.client(name, password)
        client: httpx.Client = clients[skip]
        return client


# ---------------------------------------------------------------- the two ways in


def chat_redeem(world: World, user: str, member: MemberView, points: int,
                ledger: Ledger) -> None:
    """/redeem N, Confirm, the code delivered after commit, the code typed: as the bot
    drives it. A refusal at any step ends the attempt (nothing redeemed)."""
    chats, sender = world.chats, Sender(user, chat=user)

    def handle(given: Command | Press | Text) -> Outcome:
        return chats.handle(sender, f"{user}:{uuid.uuid4().hex}", given)

    summary = handle(Command("redeem", (str(points),)))
    if [r.key for r in summary.replies] != ["summary"]:
        ledger.saw("refused")  # 803: not enough points now
        handle(Command("cancel"))
        return
    confirm = summary.replies[0].buttons[0][0].data
    issued = handle(Press(confirm))
    if not issued.effects:  # refused (no code sent)
        handle(Command("cancel"))
        return
    sent = chats.deliver(issued.effects[0].delivery_id)
    if [r.key for r in sent.replies] != ["code_sent"]:
        handle(Command("cancel"))
        return
    code = world.a.sender.last_code(member.id)
    done = handle(Text(code))
    keys = [r.key for r in done.replies]
    if keys == ["redeemed"]:
        result = done.replies[0].values["result"]
        assert result.points_redeemed == points and not result.replayed
        ledger.success("chat", result.redemption_id, points)
    else:  # refused: 818 (spent meanwhile), 808 (the code used or voided by another)
        assert keys in (["refusal"], ["code_refused"]), keys
        ledger.saw("refused")
        handle(Command("cancel"))


def api_redeem(world: World, member: MemberView, points: int, skip: bool,
               ledger: Ledger) -> None:
    http = world.http(skip)
    item: dict[str, Any] = {"points_redeemed": points, "customer": {"mobile": member.mobile},
                            "transaction_number": f"BILL-{uuid.uuid4().hex[:10]}",
                            "external_reference_number": f"pos-{uuid.uuid4().hex}"}
    if not skip:
        asked = http.get(CODE, params={"mobile": member.mobile, "points": points})
        assert asked.status_code == 200, asked.text
        if asked.json()["response"]["validation_code"]["code"]["item_status"]["code"] != 800:
            return
        item["validation_code"] = world.a.sender.last_code(member.id)
    body = {"root": {"redeem": item}}
    answered = post(http, body, skip)
    with ledger.lock:
        ledger.requests.append((body, skip, answered.get("redemption_id", "")))
    if answered["item_status"]["code"] == 800:
        assert answered["replayed"] == "false" and answered["points_redeemed"] == points
        ledger.success("api", answered["redemption_id"], points)
    else:
        ledger.saw("refused")


def post(http: httpx.Client, body: dict[str, Any], skip: bool) -> dict[str, Any]:
    answer = http.post(REDEEM, json=body, params={"skip_validation": str(skip).lower()})
    assert answer.status_code == 200, answer.text
    points: dict[str, Any] = answer.json()["response"]["responses"]["points"]
    return points


def api_replay(world: World, index: int, ledger: Ledger) -> None:
    """An earlier API request sent again: the first outcome if it succeeded (nothing more
    debited); if it was refused, it is decided afresh (and may succeed now)."""
    if not ledger.requests:
        return
    body, skip, first = ledger.requests[index % len(ledger.requests)]
    answered = post(world.http(skip), body, skip)
    if first:
        assert answered["item_status"]["code"] == 800
        assert answered["redemption_id"] == first and answered["replayed"] == "true"
        ledger.saw("replayed")
    elif answered["item_status"]["code"] == 800 and answered["replayed"] == "false":
        ledger.success("api", answered["redemption_id"], answered["points_redeemed"])


def at_once(actions: list[Callable[[], None]]) -> None:
    """Run `actions` on threads, released together; any failure is raised here."""
    barrier = threading.Barrier(len(actions))
    failures: list[BaseException] = []

    def run(action: Callable[[], None]) -> None:
        try:
            barrier.wait(THREAD_TIMEOUT)
            action()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
        assert not thread.is_alive(), "an action did not finish"
    if failures:
        raise failures[0]


# ---------------------------------------------------------------- the property


@pytest.mark.slow
def test_chat_and_api_redemptions_never_overdraw(db_url: str) -> None:
    # Codes are drawn often for one member: lift the per-period cap, keep the rest.
    with api(db_url, otp_period_max_sends=1000, otp_max_sends=1000) as a:
        tills = {}
        for skip in (False, True):
            name = f"till-{'skip' if skip else 'code'}"
            tills[skip] = (name, a.service.add_till(name, skip_validation_allowed=skip)
                           .password)
        world = World(a, Chats(a.service), tills)
        seen = Counter[str]()
        outcomes = Counter[str]()

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(opening=st.integers(100, 3000), plan=steps)
        # Always run once: each way succeeds, a replay, then three 500s at once on 650
        # points (at most one can succeed).
        @example(opening=1500, plan=[
            ChatRedeem(500), ApiRedeem(250, skip=False), ApiRedeem(100, skip=True),
            ApiReplay(1), AtOnce((ChatRedeem(500), ApiRedeem(500, skip=True),
                                  ApiRedeem(500, skip=False)))])
        def redeem_both_ways(opening: int, plan: list[Step]) -> None:
            member = a.member(points=opening)
            user = f"chat-{member.id}"
            world.chats.link(user, member.id)
            ledger = Ledger(outcomes)

            def action(op: ChatRedeem | ApiRedeem) -> Callable[[], None]:
                if isinstance(op, ChatRedeem):
                    return lambda: chat_redeem(world, user, member, op.points, ledger)
                return lambda: api_redeem(world, member, op.points, op.skip, ledger)

            for step in plan:
                seen[type(step).__name__] += 1
                if isinstance(step, AtOnce):
                    at_once([action(op) for op in step.operations])
                elif isinstance(step, ApiReplay):
                    api_replay(world, step.index, ledger)
                else:
                    action(step)()
            now = a.service.balance(member)
            assert now.current_points == opening - sum(ledger.redeemed.values()) >= 0
            history = [item.id for item in a.service.history(member, limit=1000)
                       if item.kind == "redemption"]
            assert Counter(history) == Counter(ledger.redeemed.keys())
            assert a.service.audit() == []

        redeem_both_ways()
        # Every kind of step ran, and every outcome was seen.
        assert set(seen) == {"ChatRedeem", "ApiRedeem", "ApiReplay", "AtOnce"}, seen
        assert {"chat redeemed", "api redeemed", "replayed", "refused"} <= set(outcomes), \
            outcomes
