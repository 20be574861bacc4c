"""`validationcode`, `redeem`, `revert` and the v2 `reverse` over real HTTP: success, each
refusal class with the engine's code, replays answered from the first outcome, the
per-till skip_validation, and bodies that cannot be read (400)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core.delivery import RecordingSender
from tests.api.api_harness import Api, api, status

REDEEM = "/v1.1/points/redeem"
CODE = "/v1.1/points/validationcode"
REVERT = "/v1.1/points/revert"
REVERSE = "/v2/points/reverse"


def redeem_body(mobile: str | None, points: object, *, txn: str = "BILL-1",
                ref: str | None = "ref-1", code: str | None = None,
                as_list: bool = False, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"points_redeemed": points, "customer": {"mobile": mobile},
                            "transaction_number": txn, **extra}
    if ref is not None:
        item["external_reference_number"] = ref
    if code is not None:
        item["validation_code"] = code
    return {"root": {"redeem": [item] if as_list else item}}


def points_item(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = body["response"]["responses"]["points"]
    return result


def code_for(a: Api, http: httpx.Client, mobile: str | None, points: int) -> str:
    answer = http.get(CODE, params={"mobile": mobile, "points": points})
    assert answer.status_code == 200
    item = answer.json()["response"]["validation_code"]["code"]
    assert item["item_status"]["code"] == 800, item
    return a.sender.last_code()


# ---------------------------------------------------------------- validationcode


def test_a_code_is_sent_to_the_member_never_in_the_response(db_url: str) -> None:
    with api(db_url) as a:
        member = a.member()
        http = a.till()
        answer = http.get(CODE, params={"mobile": member.mobile, "points": 500})
        body = answer.json()
        assert answer.status_code == 200 and status(body)["code"] == 200
        item = body["response"]["validation_code"]["code"]
        assert item["item_status"] == {"success": "true", "code": 800,
                                       "message": "Validation Code Issued by SMS"}
        assert item["mobile"] == member.mobile and item["points"] == 500
        code = a.sender.last_code(member.id)
        assert code not in answer.text
        http.get(CODE, params={"mobile": member.mobile, "points": 500})
        assert a.sender.last_code(member.id) == code  # re-sent within its validity


@pytest.mark.parametrize(("params", "code"), [
    ({"mobile": "+919899999999", "points": 500}, 816),
    ({"points": 9000}, 803),
    ({"points": "x"}, 801),
])
def test_a_code_that_cannot_be_issued_answers_its_refusal(db_url: str,
                                                          params: dict[str, Any],
                                                          code: int) -> None:
    with api(db_url) as a:
        member = a.member(points=5000)
        body = a.till().get(CODE, params={"mobile": member.mobile, **params}).json()
        assert status(body)["code"] == 500
        assert body["response"]["validation_code"]["code"]["item_status"]["code"] == code
        assert a.sender.sent == []


def test_no_channel_delivering_is_860(db_url: str) -> None:
    with api(db_url, senders=[RecordingSender("sms", fail=True)]) as a:
        member = a.member()
        body = a.till().get(CODE, params={"mobile": member.mobile, "points": 500}).json()
        assert status(body) == {"success": "false", "code": 500,
                                "message": "All requests have failed due to errors"}
        assert body["response"]["validation_code"]["code"]["item_status"] == {
            "success": "false", "code": 860, "message": "Unable to issue OTP"}


# ---------------------------------------------------------------- redeem


def test_the_whole_path_check_code_redeem_and_a_replay(db_url: str) -> None:
    with api(db_url) as a:
        member = a.member(points=5000)
        http = a.till()
        code = code_for(a, http, member.mobile, 500)
        answer = http.post(REDEEM, json=redeem_body(member.mobile, 500, code=code))
        assert answer.status_code == 200
        body = answer.json()
        assert status(body) == {"success": "true", "code": 200, "message": "Success"}
        item = points_item(body)
        assert item["item_status"] == {"success": "true", "code": 800,
                                       "message": "Points redeemed successfully"}
        assert item["points_redeemed"] == 500 and item["redeemed_value"] == "500.00"
        assert item["balance"] == 4500 and item["replayed"] == "false"
        assert item["redemption_id"].startswith("R")
        # The same request again (a till retrying): the first outcome, nothing more taken.
        again = points_item(http.post(REDEEM, json=redeem_body(
            member.mobile, 500, code=code, as_list=True)).json())
        assert again["redemption_id"] == item["redemption_id"]
        assert again["replayed"] == "true" and again["balance"] == 4500
        assert a.service.balance(member.mobile or "").current_points == 4500
        # The same reference for another redemption: 817.
        other = points_item(http.post(REDEEM, json=redeem_body(
            member.mobile, 600, code=code)).json())
        assert other["item_status"]["code"] == 817 and other["redemption_id"] == ""
        assert a.service.audit() == []


@pytest.mark.parametrize(("points", "code", "expected"), [
    (500, None, 824),
    (500, "000000", 808),
    (9000, None, 818),
    (50, None, 821),
    ("abc", None, 801),
])
def test_each_refused_redemption_is_200_with_its_code(db_url: str, points: object,
                                                      code: str | None,
                                                      expected: int) -> None:
    with api(db_url, validation_code_required=expected == 824 or code is not None) as a:
        member = a.member(points=5000)
        http = a.till()
        if code is not None:
            code_for(a, http, member.mobile, 500)
        answer = http.post(REDEEM, json=redeem_body(member.mobile, points, code=code))
        assert answer.status_code == 200
        body = answer.json()
        assert status(body)["code"] == 500
        item = points_item(body)
        assert item["item_status"]["code"] == expected
        assert item["redeemed_value"] == "0.00" and item["redemption_id"] == ""
        assert a.service.balance(member.mobile or "").current_points == 5000


def test_skip_validation_is_honoured_only_for_a_till_allowed_to_skip(db_url: str) -> None:
    with api(db_url) as a:  # VALIDATION_CODE_REQUIRED is on (the default)
        member = a.member(points=5000)
        allowed = a.till("web-shop", skip=True)
        other = a.till("counter-1")
        refused = points_item(other.post(REDEEM, params={"skip_validation": "true"},
                                         json=redeem_body(member.mobile, 500)).json())
        assert refused["item_status"]["code"] == 824
        done = points_item(allowed.post(REDEEM, params={"skip_validation": "true"},
                                        json=redeem_body(member.mobile, 500,
                                                         ref="ref-2")).json())
        assert done["item_status"]["code"] == 800 and done["balance"] == 4500
        # Allowed to skip, but not asking: a code is still required.
        asks_not = points_item(allowed.post(REDEEM, json=redeem_body(
            member.mobile, 500, ref="ref-3")).json())
        assert asks_not["item_status"]["code"] == 824


def test_without_a_reference_one_is_made_and_answered(db_url: str) -> None:
    with api(db_url, validation_code_required=False) as a:
        member = a.member(points=5000)
        item = points_item(a.till().post(REDEEM, json=redeem_body(
            member.mobile, 500, ref=None, redemption_time="2026-03-01 08:00:00",
            notes="till 4", redemption_purpose="checkout",
            custom_fields={"field": [{"name": "store", "value": "S1"}]})).json())
        assert item["item_status"]["code"] == 800
        assert item["external_reference_number"].startswith("api-")


@pytest.mark.parametrize("body", [
    {"root": {"redeem": []}},
    {"root": {"redeem": [{}, {}]}},
    {"root": {}},
    {"redeem": {}},
    {"root": {"redeem": {"points_redeemed": 500, "transaction_number": "B"}}},
    {"root": {"redeem": {"points_redeemed": 500, "customer": {}, "transaction_number": "B"}}},
    [1, 2, 3],
])
def test_a_body_that_cannot_be_read_is_400_in_the_envelope(sqlite_url: str,
                                                           body: Any) -> None:
    with api(sqlite_url) as a:
        answer = a.till().post(REDEEM, json=body)
        assert answer.status_code == 400, answer.text
        assert status(answer.json())["code"] == 400


def test_not_json_too_large_and_xml_are_refused_before_the_engine(sqlite_url: str) -> None:
    with api(sqlite_url, api_max_body_bytes=2048) as a:
        http = a.till()
        not_json = http.post(REDEEM, content=b"{not json", headers={
            "content-type": "application/json"})
        assert not_json.status_code == 400
        assert status(not_json.json()) == {"success": "false", "code": 400,
                                           "message": "the body is not JSON"}
        huge = http.post(REDEEM, json=redeem_body("+919800000001", 500,
                                                  notes="x" * 4000))
        assert huge.status_code == 413 and status(huge.json())["code"] == 413
        xml = http.post(REDEEM, params={"format": "xml"}, json=redeem_body(
            "+919800000001", 500))
        assert xml.status_code == 400 and "format=xml" in status(xml.json())["message"]
        assert [line.action for line in a.service.staff_actions()] == []


# ---------------------------------------------------------------- reverse (v2)


def test_reverse_part_then_the_rest_then_already_reversed(db_url: str) -> None:
    with api(db_url, validation_code_required=False) as a:
        member = a.member(points=5000)
        http = a.till()
        rid = points_item(http.post(REDEEM, json=redeem_body(member.mobile, 500)).json())[
            "redemption_id"]
        ident = {"type": "mobile", "value": member.mobile}
        part = http.post(REVERSE, json={"redemptionId": rid, "pointsToBeReversed": 200,
                                        "identifier": ident}).json()
        assert part["errors"] == [] and part["pointsReversed"] == 200
        assert part["reversalId"].startswith("V") and part["customerId"] == member.id
        assert part["item_status"]["code"] == 800
        rest = http.post(REVERSE, json={"redemptionId": rid}).json()
        assert rest["pointsReversed"] == 300 and rest["balance"] == 5000
        again = http.post(REVERSE, json={"redemptionId": rid}).json()
        assert again["errors"] == [{"code": 3802, "message":
                                    "Points reversal redeemed points already reversed."}]
        assert again["reversalId"] is None and again["pointsReversed"] == 0


@pytest.mark.parametrize(("body", "code"), [
    ({"redemptionId": "RNOSUCHONE00"}, 902),
    ({"pointsToBeReversed": 900}, 901),
    ({"pointsToBeReversed": "x"}, 901),
    ({"identifier": {"type": "PHONE", "value": "OTHER"}}, 904),  # another member's
    ({"identifier": {"type": "mobile", "value": "+919899999999"}}, 816),
])
def test_each_refused_reversal_carries_its_code(db_url: str, body: dict[str, Any],
                                                code: int) -> None:
    with api(db_url, validation_code_required=False) as a:
        member = a.member(points=5000)
        other = a.member(points=10)
        if "identifier" in body and body["identifier"]["value"] == "OTHER":
            body = {"identifier": {"type": "PHONE", "value": other.mobile}}
        http = a.till()
        rid = points_item(http.post(REDEEM, json=redeem_body(member.mobile, 500)).json())[
            "redemption_id"]
        answer = http.post(REVERSE, json={"redemptionId": rid, **body})
        assert answer.status_code == 200
        assert [e["code"] for e in answer.json()["errors"]] == [code]
        assert a.service.balance(member.mobile or "").current_points == 4500


def test_reverse_needs_a_redemption_id_and_a_known_identifier_type(sqlite_url: str) -> None:
    with api(sqlite_url) as a:
        http = a.till()
        for body in ({}, {"redemptionId": "R1", "identifier": {"type": "fax", "value": "1"}}):
            answer = http.post(REVERSE, json=body)
            assert answer.status_code == 400 and status(answer.json())["code"] == 400


# ---------------------------------------------------------------- revert


def test_revert_gives_back_a_transaction_then_refuses_it_again(db_url: str) -> None:
    with api(db_url, validation_code_required=False) as a:
        member = a.member(points=5000)
        http = a.till()
        for ref, points in (("r1", 300), ("r2", 200)):
            http.post(REDEEM, json=redeem_body(member.mobile, points, txn="BILL-7", ref=ref))
        body = http.post(REVERT, json={"root": {"revert": [{
            "transaction_number": "BILL-7", "customer": {"mobile": member.mobile}}]}}).json()
        assert status(body)["code"] == 200
        item = points_item(body)
        assert item["points_reverted"] == 500 and item["balance"] == 5000
        assert len(item["reversal_ids"]) == 2 and item["item_status"]["code"] == 800
        again = points_item(http.post(REVERT, json={"root": {"revert": {
            "transaction_number": "BILL-7"}}}).json())
        assert again["item_status"]["code"] == 812 and again["points_reverted"] == 0


@pytest.mark.parametrize(("txn", "points", "code"), [
    ("BILL-NONE", None, 811),
    ("BILL-1", 100, 810),
    ("EARNED-1", None, 814),
])
def test_each_refused_revert_carries_its_code(db_url: str, txn: str, points: int | None,
                                              code: int) -> None:
    with api(db_url, validation_code_required=False) as a:
        member = a.member(points=5000)
        a.service.earn(member.mobile or "", "EARNED-1", "100.00")
        http = a.till()
        http.post(REDEEM, json=redeem_body(member.mobile, 500, txn="BILL-1"))
        asked: dict[str, Any] = {"transaction_number": txn,
                                 "customer": {"mobile": member.mobile}}
        if points is not None:
            asked["points"] = points
        item = points_item(http.post(REVERT, json={"root": {"revert": asked}}).json())
        assert item["item_status"]["code"] == code


def test_the_audit_names_the_till_for_every_operation(db_url: str) -> None:
    with api(db_url, validation_code_required=False) as a:
        member = a.member(points=5000)
        http = a.till("shop-3")
        http.get(CODE, params={"mobile": member.mobile, "points": 500})
        rid = points_item(http.post(REDEEM, json=redeem_body(member.mobile, 500)).json())[
            "redemption_id"]
        http.post(REDEEM, json=redeem_body(member.mobile, 500))  # a replay
        http.post(REVERSE, json={"redemptionId": rid, "pointsToBeReversed": 100})
        http.post(REVERT, json={"root": {"revert": {"transaction_number": "BILL-1"}}})
        http.post(REVERT, json={"root": {"revert": {"transaction_number": "BILL-1"}}})
        lines = [(x.staff, x.action, x.target, x.allowed, x.detail)
                 for x in reversed(a.service.staff_actions())]
        target = f"mobile:{member.mobile}"
        assert [line[:4] for line in lines] == [
            ("till:shop-3", "validationcode", target, True),
            ("till:shop-3", "redeem", target, True),
            ("till:shop-3", "redeem", target, True),
            ("till:shop-3", "reverse", rid, True),
            ("till:shop-3", "revert", "BILL-1", True),
            ("till:shop-3", "revert", "BILL-1", False),
        ]
        assert lines[0][4] == "800 500 points by sms"
        assert lines[1][4] == f"800 500 points, {rid}"
        assert lines[2][4] == f"800 500 points, {rid} (replayed)"
        assert lines[4][4].startswith("800 400 points, V")
        assert lines[5][4] == "812"


def _deliveries(a: Api) -> list[str]:
    from sqlalchemy import MetaData, select

    with a.service.db.engine.connect() as connection:
        tables = MetaData()
        tables.reflect(connection, only=["code_delivery"])
        table = tables.tables["code_delivery"]
        return [str(s) for s in connection.execute(select(table.c.state)
                                                   .order_by(table.c.id)).scalars()]


def test_codes_go_through_the_outbox_after_commit(sqlite_url: str) -> None:
    with api(sqlite_url) as a:
        member = a.member()
        a.till().get(CODE, params={"mobile": member.mobile, "points": 500})
        assert _deliveries(a) == ["sent"]
    with api(sqlite_url.replace("loyalty.db", "other.db"),
             senders=[RecordingSender("sms", fail=True)]) as b:
        member = b.member()
        b.till().get(CODE, params={"mobile": member.mobile, "points": 500})
        assert _deliveries(b) == ["failed"]


def test_a_code_a_dead_worker_left_unsent_is_sent_by_the_sweeper(db_url: str) -> None:
    import time

    from core import ledger, outbox, redemption
    from core.identifiers import parse_identifier

    with api(db_url, sweep_every=0.05) as a:
        member = a.member()
        assert member.mobile is not None
        mobile = member.mobile

        # A worker committed a code and its delivery, then died before sending it.
        def died_after_commit(session: Any) -> int:
            work = a.service.work(session)
            found = ledger.find_member(session, parse_identifier(mobile, "IN"), lock=True)
            issued = redemption.issue_code(work, found, 500)
            return outbox.enqueue(work, issued.record_id, resent=False, channel_user=None,
                                  chat=None, token=None)
        a.service.db.run(died_after_commit)
        assert a.service.send_overdue_codes() == 0  # not overdue yet: its lease runs
        assert a.sender.sent == [] and _deliveries(a) == ["sending"]
        a.clock.advance(outbox.LEASE.total_seconds() + 1)
        deadline = time.monotonic() + 30
        while not a.sender.sent:
            assert time.monotonic() < deadline, "the sweeper sent nothing"
            time.sleep(0.05)
        assert a.sender.sent[0].member_id == member.id and a.sender.sent[0].points == 500
        deadline = time.monotonic() + 30
        while _deliveries(a) != ["sent"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
