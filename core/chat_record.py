"""An outcome's replies kept with its update's claim, so that a redelivered update is
answered again.

A worker that dies after its transaction committed but before it sent the replies leaves
the member with an outcome they never saw. Telegram then delivers the update again; the
claim says it was handled, and `core.chat` answers with the replies kept here (what
happened, never a second time). Effects are not kept: a code waiting to be sent is the
outbox's (`core.outbox`).

The replies are JSON: the engine's frozen results by class name and fields, refusals by
status code, reason and facts, money as text, times in ISO 8601.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from core import results
from core.chat_io import Button, Keyboard, Outcome, Reply
from core.staff_audit import StaffLine
from core.status import InputError, PointsError, Reason, Status, WrongCode

# The frozen results a reply may carry, by class name.
KEPT: dict[str, type] = {cls.__name__: cls for cls in (
    results.Balance, results.MemberView, results.RedemptionRules, results.Redeemable,
    results.CodeIssued, results.RedemptionResult, results.ReversalResult,
    results.HistoryItem, results.Issued, Status,
    # the staff view's
    results.MemberReport, results.LinkedAccount, results.CodeView, results.LedgerLine,
    results.FraudChange, results.Unlinked, StaffLine)}


def dumps(outcome: Outcome) -> str:
    """The outcome's replies as JSON text (its effects are not kept)."""
    return json.dumps({"replies": [_reply(r) for r in outcome.replies],
                       "settled": outcome.settled, "transition": outcome.transition,
                       "language": outcome.language},
                      separators=(",", ":"))


def loads(text: str) -> Outcome:
    """The outcome `dumps` kept, marked a duplicate."""
    kept = json.loads(text)
    return Outcome(tuple(_unreply(r) for r in kept["replies"]), duplicate=True,
                   settled=kept["settled"], transition=kept["transition"],
                   language=kept.get("language", ""))


def _reply(reply: Reply) -> dict[str, Any]:
    return {"key": reply.key, "values": _encode(dict(reply.values)),
            "buttons": [[[b.key, b.data, _encode(dict(b.values))] for b in row]
                        for row in reply.buttons],
            "keyboard": reply.keyboard.value if reply.keyboard is not None else None}


def _unreply(kept: dict[str, Any]) -> Reply:
    return Reply(kept["key"], _decode(kept["values"]),
                 tuple(tuple(Button(key, data, _decode(values)) for key, data, values in row)
                       for row in kept["buttons"]),
                 Keyboard(kept["keyboard"]) if kept["keyboard"] is not None else None)


def _encode(value: Any) -> Any:
    if isinstance(value, PointsError):
        return {"$": "refusal", "code": value.code, "detail": value.detail,
                "reason": value.reason.value if value.reason else None,
                "facts": _encode(value.facts), "wrong": isinstance(value, WrongCode)}
    if isinstance(value, InputError):
        return {"$": "input", "text": str(value)}
    if isinstance(value, Decimal):
        return {"$": "decimal", "v": str(value)}
    if isinstance(value, datetime):
        return {"$": "time", "v": value.isoformat()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if name not in KEPT:
            raise TypeError(f"a reply carries {name}, which is not kept")
        return {"$": name, **{f.name: _encode(getattr(value, f.name))
                              for f in dataclasses.fields(value)}}
    if isinstance(value, dict):
        return {"$": "dict", "v": {k: _encode(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if not isinstance(value, dict):
        return value
    kind = value.get("$")
    if kind == "dict":
        return {k: _decode(v) for k, v in value["v"].items()}
    if kind == "refusal":
        error = WrongCode if value["wrong"] else PointsError
        reason = Reason(value["reason"]) if value["reason"] else None
        return error(value["code"], value["detail"], reason=reason, **_decode(value["facts"]))
    if kind == "input":
        return InputError(value["text"])
    if kind == "decimal":
        return Decimal(value["v"])
    if kind == "time":
        return datetime.fromisoformat(value["v"])
    cls = KEPT[str(kind)]
    return cls(**{k: _decode(v) for k, v in value.items() if k != "$"})
