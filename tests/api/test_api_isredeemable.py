"""`GET /v1.1/points/isredeemable` over real HTTP: the platform's envelope, each refusal
class with the engine's code, a code checked (a wrong one counted), `issue_otp`, and the
requests that cannot be read (400, in the envelope)."""

from __future__ import annotations

import pytest

from tests.api.api_harness import api, status

PATH = "/v1.1/points/isredeemable"


def test_a_check_that_passes_answers_800_in_the_envelope(db_url: str) -> None:
    with api(db_url) as a:
        member = a.member(points=5000)
        http = a.till()
        answer = http.get(PATH, params={"mobile": member.mobile, "points": 500})
        assert answer.status_code == 200
        body = answer.json()
        assert status(body) == {"success": "true", "code": 200, "message": "Success"}
        item = body["response"]["points"]["redeemable"]
        assert item["mobile"] == member.mobile and item["points"] == 500
        assert item["is_redeemable"] == "true"
        assert item["points_redeem_value"] == "500.00"
        assert item["item_status"] == {"success": "true", "code": 800,
                                       "message": "Points can be redeemed"}
        assert a.sender.sent == []  # a check sends nothing


@pytest.mark.parametrize(("params", "code"), [
    ({"points": "abc"}, 801),
    ({"points": "-5"}, 801),
    ({"points": 6000}, 803),
    ({"points": 50}, 821),
    ({"points": 200_000}, 819),
    ({"points": 500, "mobile": "+919899999999"}, 816),
    ({"points": 500, "mobile": "not a number"}, 802),
    ({"points": 500, "validation_code": "000000"}, 808),
])
def test_each_refusal_is_200_with_its_code(db_url: str, params: dict[str, object],
                                           code: int) -> None:
    with api(db_url) as a:
        member = a.member(points=5000)
        http = a.till()
        answer = http.get(PATH, params={"mobile": member.mobile, **params})
        assert answer.status_code == 200
        body = answer.json()
        assert status(body) == {"success": "false", "code": 500,
                                "message": "All requests have failed due to errors"}
        item = body["response"]["points"]["redeemable"]
        assert item["is_redeemable"] == "false"
        assert item["item_status"]["success"] == "false"
        assert item["item_status"]["code"] == code


def test_members_who_may_not_redeem_are_refused_with_their_code(db_url: str) -> None:
    with api(db_url) as a:
        fraud = a.member(fraud_status="MARKED")
        campaign = a.member(type="campaign")
        http = a.till()
        codes = [http.get(PATH, params={"mobile": m.mobile, "points": 500}).json()
                 ["response"]["points"]["redeemable"]["item_status"]["code"]
                 for m in (fraud, campaign)]
        assert codes == [809, 686]


def test_email_and_external_id_name_the_member_too(db_url: str) -> None:
    with api(db_url) as a:
        by_email = a.member(email="asha@example.com", mobile=None)
        by_id = a.member(external_id="EXT-1", mobile=None)
        http = a.till()
        for params in ({"email": by_email.email}, {"external_id": by_id.external_id}):
            item = http.get(PATH, params={**params, "points": 500}).json()[
                "response"]["points"]["redeemable"]
            assert item["item_status"]["code"] == 800, params


def test_a_right_code_is_checked_not_used_up_and_issue_otp_sends_one(db_url: str) -> None:
    with api(db_url) as a:
        member = a.member()
        http = a.till()
        item = http.get(PATH, params={"mobile": member.mobile, "points": 500,
                                      "issue_otp": "true"}).json()["response"]["points"][
            "redeemable"]
        assert item["item_status"]["code"] == 800 and item["is_redeemable"] == "true"
        code = a.sender.last_code(member.id)
        assert code not in str(item)
        for _ in range(2):  # checked twice: not used up
            again = http.get(PATH, params={"mobile": member.mobile, "points": 500,
                                           "validation_code": code}).json()
            assert again["response"]["points"]["redeemable"]["item_status"]["code"] == 800


def test_issue_otp_that_cannot_be_sent_is_a_warning(db_url: str) -> None:
    from core.delivery import RecordingSender

    with api(db_url, senders=[RecordingSender("sms", fail=True)]) as a:
        member = a.member()
        item = a.till().get(PATH, params={"mobile": member.mobile, "points": 500,
                                          "issue_otp": "true"}).json()["response"]["points"][
            "redeemable"]
        assert item["is_redeemable"] == "true"
        assert item["item_status"] == {"success": "true", "code": 860,
                                       "message": "Unable to issue OTP"}


@pytest.mark.parametrize(("params", "says"), [
    ({"points": 500}, "exactly one of mobile, email, external_id"),
    ({"points": 500, "mobile": "+919800000001", "email": "a@example.com"},
     "exactly one of mobile, email, external_id"),
    ({"mobile": "+919800000001"}, "points"),
    ({"mobile": "+919800000001", "points": 500, "format": "xml"}, "format=xml"),
    ({"mobile": "+919800000001", "points": 500, "format": "yaml"}, "format must be json"),
    ({"mobile": "+919800000001", "points": 500, "issue_otp": "maybe"}, "issue_otp"),
])
def test_a_request_that_cannot_be_read_is_400_in_the_envelope(
        sqlite_url: str, params: dict[str, object], says: str) -> None:
    with api(sqlite_url) as a:
        answer = a.till().get(PATH, params=params)
        assert answer.status_code == 400
        body = answer.json()
        assert status(body)["success"] == "false" and status(body)["code"] == 400
        assert says in status(body)["message"]
