"""Schemathesis against our own OpenAPI: the app served for real (uvicorn on a free port,
a SQLite file with demo members and two tills), every operation of `/openapi.json` called
over real HTTP with cases generated from the schema, authenticated as a till (one allowed
to skip validation, so that redemptions really happen). No answer may be a 5xx; every
answer's status must be one the schema documents for the operation, its content type the
declared one, its body valid against the declared schema; and whatever was generated, the
ledger audit stays clean.

Bounded (`MODES`: so many cases per operation, valid by the schema and not) and
derandomized (the same cases every run: no flaky CI), so that it runs in CI in seconds. Generated
identifiers are mostly nobody and generated points mostly not a number; a drawn share of
the cases names a demo member instead, and some ask for a plausible amount, so the
engine's paths past "unknown member" and 801 are reached too (redemptions included).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.tills import md5hex
from tests.api.api_harness import Api, api

# Cases per operation: valid by the schema, and not (a wrong type, a missing field...).
MODES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 15}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
POINTS = (100, 150, 500, 120, 10**12)  # amounts drawn for the cases that name a member
DEMO = (  # (points, lifetime points, customer type, fraud status)
    (5000, 5000, "loyalty", "NONE"),
    (120, 120, "loyalty", "NONE"),
    (5000, 5000, "campaign", "NONE"),
    (5000, 5000, "loyalty", "MARKED"),
)


def demo_members(a: Api) -> list[str]:
    mobiles = []
    for points, lifetime, kind, fraud in DEMO:
        member = a.member(points=points, lifetime_points=lifetime, type=kind,
                          fraud_status=fraud)
        assert member.mobile is not None
        mobiles.append(member.mobile)
    return mobiles


def name_a_member(case: Any, mobile: str, points: int | None) -> None:
    """Point `case` at a real member where it names a customer (query or body), and ask
    for `points` (when given) where it asks for points."""
    if isinstance(case.query, dict) and "points" in case.query:  # isredeemable, validationcode
        others = ("email", "external_id")
        case.query = {**{k: v for k, v in case.query.items() if k not in others},
                      "mobile": mobile}
        if points is not None:
            case.query["points"] = str(points)
    body = case.body
    if isinstance(body, dict):
        root = body.get("root")
        if isinstance(root, dict):
            for item in (root.get("redeem"), root.get("revert")):
                for one in item if isinstance(item, list) else [item]:
                    if isinstance(one, dict) and isinstance(one.get("customer"), dict):
                        one["customer"] = {"mobile": mobile}
                        if points is not None and "points_redeemed" in one:
                            one["points_redeemed"] = points


def item_codes(response: Any) -> list[int]:
    """The item status codes anywhere in a JSON answer."""
    found: list[int] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            status = value.get("item_status")
            if isinstance(status, dict) and isinstance(status.get("code"), int):
                found.append(status["code"])
            for inner in value.values():
                walk(inner)
    with contextlib.suppress(ValueError):
        walk(response.json())
    return found


@pytest.mark.slow
def test_our_openapi_finds_no_server_error(sqlite_url: str) -> None:
    with api(sqlite_url) as a:
        mobiles = demo_members(a)
        made = a.service.add_till("schema-till", skip_validation_allowed=True)
        token = base64.b64encode(f"schema-till:{md5hex(made.password)}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        schema = schemathesis.openapi.from_url(f"{a.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        paths = {operation.path for operation in operations}
        assert {"/v1.1/points/isredeemable", "/v1.1/points/validationcode",
                "/v1.1/points/redeem", "/v1.1/points/revert", "/v2/points/reverse"} <= paths
        answered: dict[int, int] = {}
        codes: Counter[int] = Counter()
        for operation, mode in itertools.product(operations, MODES):

            @settings(max_examples=MODES[mode], deadline=None, database=None,
                      derandomize=True, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(mode),
                   member=st.sampled_from([*mobiles, None]),
                   points=st.sampled_from([*POINTS, None]))
            def call(case: Any, member: str | None, points: int | None) -> None:
                if member is not None:
                    name_a_member(case, member, points)
                response = case.call(base_url=a.url, headers=headers, timeout=30)
                answered[response.status_code] = answered.get(response.status_code, 0) + 1
                codes.update(item_codes(response))
                case.validate_response(response, checks=CHECKS)

            call()
        assert a.service.audit() == []
        # The run reached the engine's answers, not only refusals to read requests: some
        # redemptions went through, and some were refused by a rule.
        assert answered.get(200, 0) > 0, answered
        assert codes[800] > 0 and set(codes) - {800}, codes


@pytest.mark.parametrize("path", ["/v1.1/points/isredeemable", "/v1.1/points/redeem"])
def test_without_credentials_is_401_not_a_server_error(sqlite_url: str, path: str) -> None:
    """What schemathesis sends without the header: refused with 401, in the envelope."""
    with api(sqlite_url) as a:
        http = a.client()
        answer = (http.get(path, params={"mobile": "+919800000001", "points": 100})
                  if "isredeemable" in path else http.post(path, json={}))
        assert answer.status_code == 401
        assert answer.json()["response"]["status"]["code"] == 401
