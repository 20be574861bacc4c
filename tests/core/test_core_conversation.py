"""Conversation state kept by the engine for entry points: verified chat links, each
chat's step, and claims on incoming updates (each handled once). Plus the read-only
helpers entry points use: the balance with its suggestions, and the member of a
transaction number.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from points_harness import Env

from core.conversation import Conversations, State
from core.status import PointsError


def refused(action: Callable[[], object]) -> PointsError:
    with pytest.raises(PointsError) as caught:
        action()
    return caught.value


def test_verify_contact_links_an_enrolled_member(env: Env) -> None:
    service = env.service()
    asha = env.add_member(service, mobile="+919876543210", points=10)
    chats = Conversations(service)
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
    chats = Conversations(service)
    assert refused(lambda: chats.verify_contact("tg:2", "12")).code == 802
    assert refused(lambda: chats.verify_contact("tg:2", "+919999999999")).code == 816
    assert refused(lambda: chats.verify_contact("tg:2", "+919876543211")).code == 686
    assert refused(lambda: chats.verify_contact("tg:2", "+919876543212")).code == 881
    assert chats.member_id("tg:2") is None


def test_link_without_contact(env: Env) -> None:
    service = env.service()
    member = env.add_member(service)
    chats = Conversations(service)
    assert refused(lambda: chats.link("tg:3", member.id + 100)).code == 816
    chats.link("tg:3", member.id)
    chats.link("tg:3", member.id)  # linking twice is harmless
    assert chats.member_id("tg:3") == member.id


def test_state_round_trip(env: Env) -> None:
    service = env.service()
    chats = Conversations(service)
    assert chats.state("tg:4") == State()
    chats.save("tg:4", State("confirm", 300, "EXT-4", "x" * 2500))
    saved = chats.state("tg:4")
    assert (saved.step, saved.points, saved.external_reference) == ("confirm", 300, "EXT-4")
    assert saved.data == "x" * 2000  # kept to the column's width
    chats.save("tg:4", State())
    assert chats.state("tg:4") == State()
    # Another service on the same database (another worker) sees the same state.
    assert Conversations(env.service()).state("tg:4") == State()


def test_each_update_is_claimed_once(env: Env) -> None:
    service = env.service()
    chats = Conversations(service)
    assert chats.first_delivery("update:1")
    assert not chats.first_delivery("update:1")
    assert not Conversations(env.service()).first_delivery("update:1")
    long_key = "k" * 100
    assert chats.first_delivery(long_key)
    assert not chats.first_delivery(long_key)
    env.clock.advance(3600)
    assert chats.first_delivery("update:2")
    chats.forget_updates(timedelta(minutes=30))
    # The old claim is forgotten, the recent one kept.
    assert chats.first_delivery("update:1")
    assert not chats.first_delivery("update:2")


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
    assert service.balance_of(balance.member.id) == balance


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
