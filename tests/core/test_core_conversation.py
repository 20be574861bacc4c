"""Conversation state kept by the engine for entry points: verified chat links (a shared
contact read as international only; one chat per member, the newest verification
winning, enforced by the database), each chat's step, and claims on incoming updates
(each handled once). Plus the read-only
helpers entry points use: the balance with its suggestions, and the member of a
transaction number.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import phonenumbers
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from sqlmodel.sql.sqltypes import UTCDateTime

from core.chat import Chats, Step
from core.chat_io import Command, Sender, Start
from core.db import MIGRATIONS, Database
from core.models import ChatLink
from core.service import PointsService
from core.settings import load_settings
from core.status import PointsError
from tests.core.points_harness import Env
from tests.support.clock import START


def was_replaced(chats: Chats, user: str) -> bool:
    """Whether /start tells `user` their account was unlinked by a newer verification."""
    outcome = chats.handle(Sender(user), f"start:{uuid.uuid4()}", Start())
    return [r.key for r in outcome.replies] == ["verified_elsewhere"]


def refused(action: Callable[[], object]) -> PointsError:
    with pytest.raises(PointsError) as caught:
        action()
    return caught.value


def test_verify_contact_links_an_enrolled_member(env: Env) -> None:
    service = env.service()
    asha = env.add_member(service, mobile="+919876543210", points=10)
    chats = Chats(service)
    assert chats.member_id("tg:1") is None
    # Telegram sends the number in international form, usually without the plus.
    for phone in ("919876543210", "+91 98765 43210"):
        assert chats.verify_contact("tg:1", phone).id == asha.id
    assert chats.member_id("tg:1") == asha.id
    other = env.add_member(service, mobile="+919876500000")
    chats.verify_contact("tg:1", "+919876500000")  # a new contact moves the link
    assert chats.member_id("tg:1") == other.id
    chats.unlink("tg:1")
    assert chats.member_id("tg:1") is None


def test_verify_contact_refusals(env: Env) -> None:
    service = env.service()
    env.add_member(service, mobile="+919876543211", customer_type="campaign")
    env.add_member(service, mobile="+919876543212", customer_type="non_loyalty")
    chats = Chats(service)
    assert refused(lambda: chats.verify_contact("tg:2", "12")).code == 802
    assert refused(lambda: chats.verify_contact("tg:2", "+919999999999")).code == 816
    assert refused(lambda: chats.verify_contact("tg:2", "+919876543211")).code == 686
    assert refused(lambda: chats.verify_contact("tg:2", "+919876543212")).code == 881
    assert chats.member_id("tg:2") is None


def test_link_without_contact(env: Env) -> None:
    service = env.service()
    member = env.add_member(service)
    chats = Chats(service)
    assert refused(lambda: chats.link("tg:3", member.id + 100)).code == 816
    chats.link("tg:3", member.id)
    chats.link("tg:3", member.id)  # linking twice is harmless
    assert chats.member_id("tg:3") == member.id


def test_the_step_is_kept_in_the_database(env: Env) -> None:
    service = env.service()
    chats = Chats(service)
    chats.link("tg:4", env.add_member(service, points=2000).id)
    assert chats.step("tg:4") is Step.MENU
    outcome = chats.handle(Sender("tg:4"), "u:1", Command("redeem", ("500",)))
    assert [r.key for r in outcome.replies] == ["summary"]
    # Another service on the same database (another worker) sees the same step.
    assert Chats(env.service()).step("tg:4") is Step.CONFIRM
    chats.handle(Sender("tg:4"), "u:2", Command("cancel"))
    assert Chats(env.service()).step("tg:4") is Step.MENU


def test_each_update_is_claimed_once(env: Env) -> None:
    service = env.service()
    chats = Chats(service)
    chats.link("tg:5", env.add_member(service, points=2000).id)

    def handled(key: str) -> bool:
        return not chats.handle(Sender("tg:5"), key, Command("redeem")).duplicate

    assert handled("update:1")
    assert not handled("update:1")
    assert Chats(env.service()).handle(Sender("tg:5"), "update:1", Command("redeem")).duplicate
    long_key = "k" * 100
    assert handled(long_key)
    assert not handled(long_key)
    env.clock.advance(3600)
    assert handled("update:2")
    chats.forget_updates(timedelta(minutes=30))
    # The old claim is forgotten, the recent one kept.
    assert handled("update:1")
    assert not handled("update:2")


def test_read_only_updates_claim_nothing(env: Env) -> None:
    service = env.service()
    chats = Chats(service)
    chats.link("tg:6", env.add_member(service, points=2000).id)
    for _ in range(2):  # the same update twice: a read answers both times
        outcome = chats.handle(Sender("tg:6"), "update:9", Command("balance"))
        assert not outcome.duplicate and [r.key for r in outcome.replies] == ["balance"]


def test_balance_with_value_and_suggestions(env: Env) -> None:
    service = env.service(points_currency_ratio="0.5", redemption_min_points=100,
                          redemption_multiple_of=50)
    who = env.add_member(service, points=260, lifetime_points=900, purchases="12.30").mobile
    assert who is not None
    balance = service.balance(who)
    assert (balance.current_points, balance.lifetime_points, balance.lifetime_purchases,
            balance.value) == (260, 900, Decimal("12.30"), Decimal("130.00"))
    assert balance.suggestions == (100, 150, 200, 250)
    assert (balance.rules.min_points, balance.rules.multiple_of) == (100, 50)
    poor = env.add_member(service, points=99).mobile
    assert poor is not None
    assert service.balance(poor).suggestions == ()
    assert service.balance(balance.member) == balance


def test_member_of_transaction(env: Env) -> None:
    service = env.service(validation_code_required=False)
    asha = env.add_member(service, points=900)
    ravi = env.add_member(service, points=900)
    assert asha.mobile is not None and ravi.mobile is not None
    service.redeem(asha.mobile, 100, None, transaction_number="T-A", external_reference="A1")
    service.redeem(asha.mobile, 100, None, transaction_number="T-A", external_reference="A2")
    service.redeem(asha.mobile, 100, None, transaction_number="T-S", external_reference="A3")
    service.redeem(ravi.mobile, 100, None, transaction_number="T-S", external_reference="R1")
    assert service.member_of_transaction("T-A").id == asha.id
    assert refused(lambda: service.member_of_transaction("T-NONE")).code == 811
    several = refused(lambda: service.member_of_transaction("T-S"))
    assert several.code == 811 and "several members" in several.detail
    assert refused(lambda: service.member_of_transaction("bad txn")).code == 811


# ---------------------------------------------------------------- a shared contact


def international(contact: str) -> str | None:
    """What a contact's number is when read as Telegram sends it (international, with or
    without the +): the only reading that may link a chat (written apart from the engine)."""
    text = contact.strip()
    try:
        number = phonenumbers.parse("+" + (text[1:] if text.startswith("+") else text), None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_a_contact_is_read_as_international_only(env: Env) -> None:
    """A stranger whose own number is no valid international number, but whose digits are
    a member's Indian mobile read locally, is not welcomed as that member."""
    service = env.service(default_phone_region="IN")
    asha = env.add_member(service, mobile="+919800000001", points=900)
    chats = Chats(service)
    for stranger in ("9800000001", "+9800000001", "09800000001", "00919800000001",
                     " 98000 00001 "):
        assert refused(lambda s=stranger: chats.verify_contact("tg:9", s)).code == 802
        assert chats.member_id("tg:9") is None
    assert chats.verify_contact("tg:9", "919800000001").id == asha.id
    # What staff type is still read in DEFAULT_PHONE_REGION.
    assert service.member("9800000001").id == asha.id


CONTACT_MEMBERS = ("+919800000001", "+919860000100", "+919812345678", "+12025550123",
                   "+447400123456", "+989121234567", "+971501234567", "+8801812345678")


def contacts() -> st.SearchStrategy[str]:
    member = st.sampled_from(CONTACT_MEMBERS)

    def national(mobile: str) -> str:
        return str(phonenumbers.parse(mobile, None).national_number)

    return st.one_of(
        member, member.map(lambda m: m[1:]), member.map(national),
        member.map(lambda m: "+" + national(m)), member.map(lambda m: "0" + national(m)),
        st.builds(lambda c, m: c + national(m), st.sampled_from(["1", "44", "91", "98", "971"]),
                  member),
        st.builds(lambda m, i, d: m[:i] + str(d) + m[i + 1:], member, st.integers(1, 12),
                  st.integers(0, 9)),
        st.from_regex(r"^\+?[0-9]{1,16}$", fullmatch=True), st.text(max_size=30))


def test_any_contact_links_nothing_or_exactly_its_international_reading(env: Env) -> None:
    service = env.service(default_phone_region="IN")
    for mobile in CONTACT_MEMBERS:
        env.add_member(service, mobile=mobile)
    chats = Chats(service)

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(contact=contacts())
    def share(contact: str) -> None:
        user = f"tg:{uuid.uuid4().hex[:12]}"
        try:
            linked = chats.verify_contact(user, contact)
        except PointsError:
            assert chats.member_id(user) is None
            return
        assert linked.mobile == international(contact)
        assert chats.member_id(user) == linked.id

    share()


# ---------------------------------------------------------------- one account per member


def test_the_newest_verification_wins_and_the_older_chat_is_told(env: Env) -> None:
    service = env.service()
    asha = env.add_member(service, mobile="+919876543210", points=10)
    chats = Chats(service)
    chats.verify_contact("tg:old", "919876543210")
    assert chats.linked_user(asha.id) == "tg:old"
    env.clock.advance(60)
    chats.verify_contact("tg:new", "919876543210")  # the number was recycled, say
    assert (chats.member_id("tg:new"), chats.member_id("tg:old")) == (asha.id, None)
    assert chats.member_id("tg:old") is None
    assert was_replaced(chats, "tg:old") and not was_replaced(chats, "tg:new")
    assert chats.linked_user(asha.id) == "tg:new"
    # Verifying again takes the member back, and the other chat is the one unlinked.
    chats.verify_contact("tg:old", "+919876543210")
    assert (chats.member_id("tg:old"), chats.member_id("tg:new")) == (asha.id, None)
    assert not was_replaced(chats, "tg:old") and was_replaced(chats, "tg:new")
    # The sandbox's /as links the same way.
    chats.link("tg:staff", asha.id)
    assert chats.linked_user(asha.id) == "tg:staff" and was_replaced(chats, "tg:old")
    # A chat never linked, or unlinked by hand, was not replaced.
    chats.unlink("tg:staff")
    assert not was_replaced(chats, "tg:staff") and not was_replaced(chats, "tg:never")
    assert chats.linked_user(asha.id) is None


def test_the_database_holds_one_link_per_member(env: Env) -> None:
    service = env.service()
    asha = env.add_member(service)
    now = env.clock()

    def two_links(session: Session) -> None:
        session.add(ChatLink(channel_user="tg:a", member_id=asha.id, created_at=now))
        session.add(ChatLink(channel_user="tg:b", member_id=asha.id, created_at=now))
    with pytest.raises(IntegrityError):
        Database(env.url, retries=1).run(two_links)


def test_the_migration_keeps_each_members_newest_link(db_url: str) -> None:
    """A database from before the rule, with several chats linked to one member: the
    newest link stays, the others are unlinked and will be told why."""
    from alembic import command
    from alembic.config import Config

    old = Database(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with old.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        at = [START + timedelta(seconds=n) for n in range(4)]
        member = sa.table("member", *(sa.column(c) for c in (
            "id", "mobile", "name", "customer_type", "fraud_status", "current_points",
            "lifetime_points", "lifetime_purchases")), sa.column("created_at", UTCDateTime()))
        link = sa.table("chat_link", sa.column("channel_user"), sa.column("member_id"),
                        sa.column("created_at", UTCDateTime()))
        connection.execute(member.insert(), [
            {"id": n, "mobile": f"+91980000000{n}", "name": "M", "customer_type": "loyalty",
             "fraud_status": "NONE", "current_points": 0, "lifetime_points": 0,
             "lifetime_purchases": 0, "created_at": at[0]} for n in (1, 2)])
        connection.execute(link.insert(), [
            {"channel_user": user, "member_id": member_id, "created_at": at[second]}
            for user, member_id, second in (("tg:1", 1, 1), ("tg:2", 1, 3), ("tg:3", 1, 2),
                                            ("tg:4", 2, 1))])
    old.dispose()
    service = PointsService(load_settings(_env_file=None, database_url=db_url))
    try:
        chats = Chats(service)
        assert [chats.member_id(f"tg:{n}") for n in (1, 2, 3, 4)] == [None, 1, None, 2]
        assert [was_replaced(chats, f"tg:{n}") for n in (1, 2, 3, 4)] == [True, False, True,
                                                                          False]
        assert (chats.linked_user(1), chats.linked_user(2)) == ("tg:2", "tg:4")
        chats.verify_contact("tg:1", "919800000001")
        assert (chats.linked_user(1), was_replaced(chats, "tg:2")) == ("tg:1", True)
    finally:
        service.db.dispose()
