"""The points API over HTTP: a thin FastAPI adapter over `core.service.PointsService`, in
the real platform's shapes, so that a client written for it works here with nothing but
the base URL changed.

It decides nothing. A request becomes one engine call on one worker thread: the till is
authenticated there too (`PointsService.authenticate_till`; the HTTP Basic dependency is
async and touches no database, so a request is handed to a thread once), then the
operation runs through `PointsService.till_call`, which writes the call's audit line, or,
for isredeemable, `PointsService.till_is_redeemable`, the till and the check in one read
transaction with the line deferred (docs/http-api.md, "The audit"). Its result or refusal
becomes the platform's envelope: `response.status` for the request (200 "Success", or 500
"All requests have failed due to errors" when its one item was refused) and `item_status`
for the item, with the engine's status code and message. Which till may skip a validation
code is the engine's decision (`Tills.skips_validation`), and so is delivery: a validation
code is issued in one transaction with its outbox row and sent after it commits
(`Redeeming.send_validation_code`, through `core.outbox`, as the chat's codes go).

HTTP status on the wire: 200 whenever the request was read and processed, whatever the
outcome (the body carries it: clients differ in what they tolerate, and the platform's
own clients read the body); 400 for a request that cannot be read (a missing or malformed
parameter, a body that is not the documented JSON, `format=xml`), in the same envelope;
401 when authentication fails; 413, 408 and 503 for the server's bounds. See
docs/http-api.md.

Routes:
- `GET /v1.1/points/isredeemable`, `GET /v1.1/points/validationcode`,
  `POST /v1.1/points/redeem`, `POST /v1.1/points/revert` (our own shape: no public one
  exists), `POST /v2/points/reverse`; HTTP Basic with a till's name and the MD5 hex of its
  password.
- `GET /healthz` (200 while the database answers, 503 otherwise), `/openapi.json`, `/docs`.
"""


import asyncio
import contextlib
import logging
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    MutableMapping,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from api.settings import ApiSettings
from core.delivery import CodeSender
from core.results import CodeIssued, RedemptionResult, ReversalResult
from core.service import PointsService
from core.status import PointsError, Status
from core.tills import LoginRefused, TillsUnavailable, TillView

log = logging.getLogger(__name__)
# What any route may answer besides 200 (FastAPI's own 422 never travels: see `invalid`).
PROBLEM = {"content": {"application/json": {"example": {"response": {"status": {
    "success": "false", "code": 400, "message": "give exactly one of mobile, email, "
                                                "external_id"}}}}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The request cannot be read (the envelope, code 400)", **PROBLEM},
    401: {"description": "Authentication failed (the envelope, code 401)"},
    "4XX": {"description": "Not found, wrong method, body too late (408) or too large "
                           "(413): the envelope"},
    503: {"description": "Too many requests at once, or the database did not answer"},
}
SWEEP_EVERY = 15.0  # seconds between sweeps for codes a dead worker left unsent
HEALTH_TIMEOUT = 5.0  # seconds /healthz waits for the database before answering 503
ALL_FAILED = "All requests have failed due to errors"
KINDS = ("mobile", "email", "external_id")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# ---------------------------------------------------------------- the envelope


def _flag(value: bool) -> str:
    return "true" if value else "false"


def request_status(code: int, message: str) -> dict[str, Any]:
    """The request-level status: success only for 200."""
    return {"success": _flag(code == 200), "code": code, "message": message}


def item_status(status: Status, *, success: bool | None = None) -> dict[str, Any]:
    """An item's status: the engine's code and message."""
    ok = status.success if success is None else success
    return {"success": _flag(ok), "code": status.code, "message": status.message}


def envelope(item_ok: bool, **payload: Any) -> dict[str, Any]:
    """The platform's answer for one item: 200 "Success", or 500 when it was refused."""
    status = request_status(200, "Success") if item_ok else request_status(500, ALL_FAILED)
    return {"response": {"status": status, **payload}}


def problem(code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A request that was not processed (400, 401, 408, 413, 503...): the envelope with
    the same code on the wire and in `response.status`."""
    return JSONResponse({"response": {"status": request_status(code, message)}},
                        status_code=code, headers=headers)


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


@dataclass(frozen=True)
class Caller:
    """What a request says of its till: HTTP Basic's name and secret, and its address."""

    name: str
    secret: str
    address: str


@contextlib.contextmanager
def login(who: Caller) -> Iterator[None]:
    """A login refused becomes 401, a database that did not answer 503."""
    try:
        yield
    except TillsUnavailable as failure:
        raise Unavailable(failure.status.message) from None
    except LoginRefused as refused:
        log.info("API login refused (%s) for till %r from %s", refused.reason,
                 who.name[:64], who.address)
        raise Unauthorized(refused.retry_after) from None


class Unreadable(Exception):
    """A request that cannot be read: 400 with `message`."""


class Unavailable(Exception):
    """The till could not be checked (the database did not answer): 503 with `message`."""


class Unauthorized(Exception):
    """Authentication failed: 401 (never saying why: that is in the audit)."""

    def __init__(self, retry_after: int | None = None) -> None:
        super().__init__("authentication failed")
        self.retry_after = retry_after


# ---------------------------------------------------------------- the server's bounds


class BoundedBody:
    """ASGI middleware: a request's body is read whole before the app sees it, at most
    `max_bytes` (413, from Content-Length alone when it says so) within `timeout` seconds
    (408); the app then reads it from memory."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _answer(scope, receive, send, problem(
                413, f"the body is larger than {self.max_bytes} bytes"))
            return
        body = bytearray()
        deadline = asyncio.get_running_loop().time() + self.timeout
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                await _answer(scope, receive, send, problem(
                    408, f"the body did not arrive within {self.timeout:g} seconds"))
                return
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await _answer(scope, receive, send, problem(
                    413, f"the body is larger than {self.max_bytes} bytes"))
                return
            if not message.get("more_body"):
                break
        whole: list[Message] = [{"type": "http.request", "body": bytes(body),
                                 "more_body": False}]

        async def replay() -> Message:
            return whole.pop() if whole else await receive()
        await self.app(scope, replay, send)


async def _answer(scope: Scope, receive: Receive, send: Send, response: JSONResponse) -> None:
    response.headers["connection"] = "close"
    await response(scope, receive, send)


# ---------------------------------------------------------------- request bodies


class Customer(BaseModel):
    model_config = ConfigDict(extra="allow")
    mobile: str | None = None
    email: str | None = None
    external_id: str | None = None


class CustomField(BaseModel):
    name: str
    value: Any = None


class CustomFields(BaseModel):
    field: list[CustomField] | CustomField | None = None


class RedeemItem(BaseModel):
    """One redemption, as the platform documents it."""

    model_config = ConfigDict(extra="allow")
    points_redeemed: int | str
    customer: Customer
    transaction_number: str
    # The idempotency key: the same one again answers the first outcome. Made here (and
    # answered) when missing, as the CLI does.
    external_reference_number: str | None = None
    validation_code: str | None = None
    redemption_time: str | None = Field(None, description="YYYY-MM-DD HH:MM:SS")
    notes: str | None = None
    redemption_purpose: str | None = None
    custom_fields: CustomFields | None = None


class RedeemRoot(BaseModel):
    redeem: RedeemItem | list[RedeemItem]


class RedeemBody(BaseModel):
    root: RedeemRoot


class RevertItem(BaseModel):
    """One revert (our own shape): all that is left on a transaction number is given back;
    `points`, when given, must be that (810 otherwise). Without a customer: whoever
    redeemed on it."""

    model_config = ConfigDict(extra="allow")
    transaction_number: str
    customer: Customer | None = None
    points: int | str | None = None


class RevertRoot(BaseModel):
    revert: RevertItem | list[RevertItem]


class RevertBody(BaseModel):
    root: RevertRoot


class ReverseIdentifier(BaseModel):
    type: str = Field(description="mobile, email or externalId (also PHONE, EMAIL, ID)")
    value: str


class ReverseBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    redemptionId: str
    pointsToBeReversed: int | str | None = None
    identifier: ReverseIdentifier | None = None


# ---------------------------------------------------------------- reading requests


def one_identifier(mobile: str | None, email: str | None, external_id: str | None) -> str:
    """The one identifier given, typed for the engine (``mobile:...``); 400 for none or
    several."""
    given = [(kind, value) for kind, value in zip(KINDS, (mobile, email, external_id),
                                                  strict=True)
             if value is not None and value.strip()]
    if len(given) != 1:
        raise Unreadable("give exactly one of mobile, email, external_id")
    kind, value = given[0]
    return f"{kind}:{value.strip()}"


def echoed(mobile: str | None, email: str | None, external_id: str | None) -> dict[str, str]:
    return {"mobile": mobile or "", "email": email or "", "external_id": external_id or ""}


def single(item: Any, what: str) -> Any:
    """`root.<what>` as an object, or a list of exactly one."""
    if isinstance(item, list):
        if len(item) != 1:
            raise Unreadable(f"root.{what} takes one {what} per call (it has {len(item)})")
        return item[0]
    return item


_REVERSE_KINDS = {"mobile": "mobile", "phone": "mobile", "email": "email",
                  "externalid": "external_id", "external_id": "external_id",
                  "id": "external_id"}


def reverse_identifier(identifier: ReverseIdentifier | None) -> str | None:
    if identifier is None:
        return None
    kind = _REVERSE_KINDS.get(identifier.type.strip().lower())
    if kind is None:
        raise Unreadable("identifier.type must be mobile, email or externalId")
    return f"{kind}:{identifier.value.strip()}"


async def json_only(fmt: Annotated[str, Query(alias="format", description="json (xml: not yet)")]
              = "json") -> None:
    if fmt.strip().lower() == "xml":
        raise Unreadable("format=xml is not served yet: use format=json (the default)")
    if fmt.strip().lower() != "json":
        raise Unreadable("format must be json")


# ---------------------------------------------------------------- the app


def server_options(settings: ApiSettings) -> dict[str, Any]:
    """uvicorn's options for the API's bounds: keep-alive API_IDLE_TIMEOUT_SECONDS,
    headers API_MAX_HEADER_BYTES, API_MAX_CONNECTIONS connections and requests at once per
    worker (503 beyond); X-Forwarded-For believed from API_TRUSTED_PROXIES only. (Bodies
    are bounded by `BoundedBody`.)"""
    trusted = settings.api_trusted_proxies
    return {"timeout_keep_alive": int(max(1, settings.api_idle_timeout_seconds)),
            "limit_concurrency": settings.api_max_connections,
            "h11_max_incomplete_event_size": settings.api_max_header_bytes,
            "proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None,
            "server_header": False, "access_log": False}


def create_app(settings: ApiSettings, service: PointsService | None = None,
               senders: Sequence[CodeSender] = (), *,
               sweep_every: float = SWEEP_EVERY) -> FastAPI:
    """The API over `service` (default: a new engine on `settings` that sends codes with
    `senders`; closed when the app stops). Every `sweep_every` seconds it sends the codes a
    dead worker left unsent (`PointsService.send_overdue_codes`)."""
    engine = service or PointsService(settings, senders=senders)
    owned = service is None
    health_pool = ThreadPoolExecutor(1, thread_name_prefix="api-health")
    sweep_pool = ThreadPoolExecutor(1, thread_name_prefix="api-sweep")

    async def sweep() -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(sweep_every)
            try:
                sent = await loop.run_in_executor(sweep_pool, engine.send_overdue_codes)
            except Exception as error:
                log.warning("could not send overdue validation codes: %s",
                            type(error).__name__)
            else:
                if sent:
                    log.info("sent %d validation codes a worker had left", sent)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(sweep())
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            health_pool.shutdown(wait=False, cancel_futures=True)
            sweep_pool.shutdown(wait=False, cancel_futures=True)
            if owned:
                engine.close()

    app = FastAPI(title="Loyalty points API", version="1.1",
                  description="The points API (v1.1): isredeemable, validationcode, redeem, "
                              "revert, and the v2 reverse. HTTP Basic: a till's name and "
                              "the MD5 hex of its password. HTTP 200 whenever a request "
                              "was processed: the body's status codes carry the outcome.",
                  lifespan=lifespan, responses=RESPONSES)
    app.state.service = engine
    app.add_middleware(BoundedBody, max_bytes=settings.api_max_body_bytes,
                       timeout=settings.api_body_timeout_seconds)
    basic = HTTPBasic(auto_error=False, realm="points")

    @app.exception_handler(Unreadable)
    async def unreadable(_: Request, error: Unreadable) -> JSONResponse:
        return problem(400, str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        if first.get("type") == "json_invalid":
            return problem(400, "the body is not JSON")
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return problem(400, f"{where}: {first.get('msg', 'not readable')}" if where
                       else "the request cannot be read")

    @app.exception_handler(Unauthorized)
    async def unauthorized(_: Request, error: Unauthorized) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Basic realm="points"'}
        if error.retry_after is not None:
            headers["Retry-After"] = str(error.retry_after)
        return problem(401, "Authentication failed", headers)

    @app.exception_handler(Unavailable)
    async def unavailable(_: Request, error: Unavailable) -> JSONResponse:
        return problem(503, str(error), {"Retry-After": "1"})

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 401:
            return await unauthorized(_, Unauthorized())
        return problem(error.status_code, str(error.detail), dict(error.headers or {}))

    @app.exception_handler(Exception)
    async def broken(_: Request, error: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error("API request failed, error id %s", error_id, exc_info=error)
        return problem(500, f"Unable to process the request (error id {error_id})")

    async def caller(request: Request, credentials: Annotated[
            HTTPBasicCredentials | None, Depends(basic)]) -> Caller:
        """Who says they call (401 without HTTP Basic): checked by the endpoint, on the
        one worker thread it runs on (async here: no database, no thread hand-off)."""
        if credentials is None:
            raise Unauthorized()
        return Caller(credentials.username, credentials.password,
                      request.client.host if request.client else "unknown")

    def authenticated(who: Caller) -> TillView:
        """The calling till (401 otherwise; 503 when the database did not answer)."""
        with login(who):
            return engine.authenticate_till(who.name, who.secret, who.address)
        raise AssertionError("unreachable")  # pragma: no cover

    Till = Annotated[Caller, Depends(caller)]
    Json = Depends(json_only)
    IdParam = Annotated[str | None, Query(description="one of mobile, email, external_id")]

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(health_pool, engine.ping),
                                   HEALTH_TIMEOUT)
        except Exception:
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/v1.1/points/isredeemable", dependencies=[Json])
    def isredeemable(who_calls: Till, points: Annotated[str, Query()],
                     mobile: IdParam = None, email: IdParam = None,
                     external_id: IdParam = None, validation_code: str | None = None,
                     issue_otp: bool = False, skip_validation: bool = False,
                     ) -> dict[str, Any]:
        """Whether `points` can be redeemed by the member now; with `validation_code`,
        the code is checked (not used up); with `issue_otp`, a code is sent as well.
        `skip_validation` changes nothing here: a check never needs a code."""
        try:
            who = one_identifier(mobile, email, external_id)
        except Unreadable:
            authenticated(who_calls)  # 401 before 400, as for every other endpoint
            raise
        item: dict[str, Any] = {**echoed(mobile, email, external_id), "points": points}
        with login(who_calls):
            caller, found = engine.till_is_redeemable(
                who_calls.name, who_calls.secret, who_calls.address, who, points,
                validation_code)
        if isinstance(found, PointsError):
            refusal = found
            return envelope(False, points={"redeemable": {
                **item, "is_redeemable": "false", "points_redeem_value": "0.00",
                "points_currency_ratio": str(engine.settings.points_currency_ratio),
                "item_status": item_status(refusal.status)}})
        status = item_status(found.status)
        if issue_otp:
            try:
                issue(caller, who, points)
            except PointsError as refusal:
                # A warning: the points can be redeemed, the code did not go out.
                status = item_status(refusal.status, success=True)
        return envelope(True, points={"redeemable": {
            **item, "points": found.points, "is_redeemable": "true",
            "points_redeem_value": _money(found.points_redeem_value),
            "points_currency_ratio": str(engine.settings.points_currency_ratio),
            "item_status": status}})

    def issue(caller: TillView, who: str, points: str) -> CodeIssued:
        return engine.till_call(caller, "validationcode", who,
                                lambda: engine.send_validation_code(who, points),
                                lambda r: f"{r.points} points by {'+'.join(r.channels)}")

    @app.get("/v1.1/points/validationcode", dependencies=[Json])
    def validationcode(who_calls: Till, points: Annotated[str, Query()],
                       mobile: IdParam = None, email: IdParam = None,
                       external_id: IdParam = None) -> dict[str, Any]:
        """Send the member a validation code for `points` (the same code again within
        its validity) on their registered mobile and email: never in the response."""
        caller = authenticated(who_calls)
        who = one_identifier(mobile, email, external_id)
        item: dict[str, Any] = {**echoed(mobile, email, external_id), "points": points}
        try:
            issued = issue(caller, who, points)
        except PointsError as refusal:
            return envelope(False, validation_code={"code": {
                **item, "item_status": item_status(refusal.status)}})
        return envelope(True, validation_code={"code": {
            **item, "points": issued.points,
            "item_status": item_status(Status(800, issued.message))}})

    @app.post("/v1.1/points/redeem", dependencies=[Json])
    def redeem(who_calls: Till, body: RedeemBody,
               skip_validation: bool = False) -> dict[str, Any]:
        """Redeem points against a bill. `external_reference_number` is the idempotency
        key: the same request again answers the first outcome (nothing more is debited).
        `skip_validation` is honoured only for a till allowed to skip validation."""
        caller = authenticated(who_calls)
        asked: RedeemItem = single(body.root.redeem, "redeem")
        c = asked.customer
        who = one_identifier(c.mobile, c.email, c.external_id)
        reference = asked.external_reference_number or f"api-{uuid.uuid4().hex}"
        notes = " ".join(part for part in (asked.redemption_purpose, asked.notes) if part)
        skip = engine.skips_validation(caller, skip_validation)
        item: dict[str, Any] = {**echoed(c.mobile, c.email, c.external_id),
                                "transaction_number": asked.transaction_number,
                                "external_reference_number": reference}
        try:
            done: RedemptionResult = engine.till_call(
                caller, "redeem", who,
                lambda: engine.redeem(who, asked.points_redeemed, asked.validation_code,
                                      transaction_number=asked.transaction_number,
                                      external_reference=reference, notes=notes,
                                      redemption_time=asked.redemption_time,
                                      skip_validation=skip),
                lambda r: (f"{r.points_redeemed} points, {r.redemption_id}"
                           + (" (replayed)" if r.replayed else "")))
        except PointsError as refusal:
            return envelope(False, responses={"points": {
                **item, "points_redeemed": asked.points_redeemed, "redemption_id": "",
                "redeemed_value": "0.00", "item_status": item_status(refusal.status)}})
        return envelope(True, responses={"points": {
            **item, "points_redeemed": done.points_redeemed,
            "redemption_id": done.redemption_id,
            "redeemed_value": _money(done.redeemed_value), "balance": done.current_points,
            "points_reversed": done.points_reversed, "replayed": _flag(done.replayed),
            "item_status": item_status(done.status)}})

    @app.post("/v1.1/points/revert", dependencies=[Json])
    def revert(who_calls: Till, body: RevertBody) -> dict[str, Any]:
        """Give back all the points redeemed on a transaction number (codes 810 to 814).
        Our own shape: the platform publishes none."""
        caller = authenticated(who_calls)
        asked: RevertItem = single(body.root.revert, "revert")
        c = asked.customer or Customer()
        who = (one_identifier(c.mobile, c.email, c.external_id)
               if any((c.mobile, c.email, c.external_id)) else None)
        item: dict[str, Any] = {**echoed(c.mobile, c.email, c.external_id),
                                "transaction_number": asked.transaction_number}
        try:
            done: ReversalResult = engine.till_call(
                caller, "revert", asked.transaction_number,
                lambda: engine.revert(who, asked.transaction_number, asked.points),
                lambda r: f"{r.points_reversed} points, {', '.join(r.reversal_ids)}")
        except PointsError as refusal:
            return envelope(False, responses={"points": {
                **item, "points_reverted": 0, "reversal_ids": [],
                "item_status": item_status(refusal.status)}})
        return envelope(True, responses={"points": {
            **item, "points_reverted": done.points_reversed,
            "reversal_ids": list(done.reversal_ids),
            "redemption_ids": list(done.redemption_ids), "balance": done.balance,
            "item_status": item_status(done.status)}})

    @app.post("/v2/points/reverse", dependencies=[Json])
    def reverse(who_calls: Till, body: ReverseBody) -> dict[str, Any]:
        """Reverse one redemption, all that is left of it or `pointsToBeReversed` (codes
        901 to 904, 3802). The platform's v2 shape: flat, with `errors`."""
        caller = authenticated(who_calls)
        who = reverse_identifier(body.identifier)
        wanted = body.pointsToBeReversed
        answer: dict[str, Any] = {
            "redemptionId": body.redemptionId, "reversalId": None,
            "pointsToBeReversed": wanted, "pointsReversed": 0, "customerId": None,
            "identifier": body.identifier.model_dump() if body.identifier else None,
            "warnings": [], "errors": []}
        try:
            done: ReversalResult = engine.till_call(
                caller, "reverse", body.redemptionId,
                lambda: engine.reverse(body.redemptionId, wanted, identifier=who),
                lambda r: f"{r.points_reversed} points, {r.reversal_ids[0]}")
        except PointsError as refusal:
            return {**answer, "errors": [{"code": refusal.code,
                                          "message": refusal.status.message}],
                    "item_status": item_status(refusal.status)}
        return {**answer, "reversalId": done.reversal_ids[0],
                "pointsReversed": done.points_reversed, "customerId": done.member_id,
                "balance": done.balance, "item_status": item_status(done.status)}

    return app


__all__ = [
    "ApiSettings",
    "create_app",
    "envelope",
    "item_status",
    "problem",
    "request_status",
    "server_options",
]
