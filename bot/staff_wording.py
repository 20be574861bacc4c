"""What the bot says to staff: the wording of the staff commands' replies (`/member`,
`/goodwill` and its Confirm step, `/revert`, `/reverse`, `/unlink`, `/fraud`,
`/stafflog`), merged into `bot.replies.WORDING` by their message keys (`STAFF_WORDING`).

Staff texts are in English and speak to staff about the member ("their last ledger
entries", never "your"); status codes show the seed's message word for word. A staff reply
is kept within one Telegram message (`fit`): long free text (reasons, notes) is shortened,
and a list that would not fit says how many lines it left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import tzinfo
from typing import Any

from core.i18n import Texts
from core.results import (
    CodeView,
    FraudChange,
    Issued,
    LedgerLine,
    LinkedAccount,
    MemberReport,
    MemberView,
    ReversalResult,
    Unlinked,
)
from core.staff_audit import StaffLine
from core.status import InputError, PointsError
from core.times import show

STAFF_HELP = ("Staff:\n"
              "/member IDENTIFIER – the member's profile, balance, linked Telegram account, "
              "validation code, fraud status and last ledger entries\n"
              "/goodwill IDENTIFIER POINTS REASON [ref:REFERENCE] – give goodwill points "
              "(a reference issues once)\n"
              "/revert TRANSACTION_NUMBER [POINTS] [IDENTIFIER] – give back a transaction's "
              "points\n"
              "/reverse REDEMPTION_ID [POINTS] – reverse a redemption, all or part\n"
              "/unlink IDENTIFIER – unlink the member's Telegram account (a lost phone)\n"
              "/fraud IDENTIFIER STATUS REASON – set the member's fraud status\n"
              "/stafflog [member=IDENTIFIER] [staff=WHO] [limit=N] – who did what, and when")
MESSAGE_MOST = 4000  # Telegram takes 4,096 characters; room for the sandbox's mark
FREE_TEXT_MOST = 80  # a reason or a note in a list


def fit(text: str, most: int = MESSAGE_MOST) -> str:
    """`text` within one message: cut at a line, saying so."""
    if len(text) <= most:
        return text
    cut = text[:most - 40].rsplit("\n", 1)[0]
    return f"{cut}\n… (cut to fit one message)"


def short(text: str | None, most: int = FREE_TEXT_MOST) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= most else text[:most - 1] + "…"


def coded(error: PointsError) -> str:
    """A status code with the seed's message, and the detail."""
    text = f"{error.status.code} {error.status.message}"
    return f"{text}\n({error.detail})" if error.detail else text


def staff_refused(error: PointsError | InputError, usage: str, action: str = "") -> str:
    """A refused staff command: what was refused, the status code and message, or what
    was wrong with the input and how the command goes."""
    head = {"goodwill": "No goodwill points were issued.",
            "fraud": "The fraud status was not changed.",
            "unlink": "Nothing was unlinked."}.get(action, "")
    head = f"{head}\n" if head else ""
    if isinstance(error, PointsError):
        return f"{head}{coded(error)}"
    return f"{head}{error}\nUsage: {usage}"


def who_is(m: MemberView) -> str:
    return f"member {m.id} ({m.name or 'no name'}, {m.mobile or m.email or m.external_id})"


def linked_account(linked: LinkedAccount | None, zone: tzinfo) -> str:
    if linked is None:
        return "Linked Telegram account: none"
    name = f" ({short(linked.name, 60)})" if linked.name else ""
    return (f"Linked Telegram account: {linked.user}{name}, verified "
            f"{show(linked.verified_at, zone)}")


def code_view(code: CodeView | None, zone: tzinfo) -> str:
    if code is None:
        return "Validation code: none sent"
    return (f"Validation code: {code.state}, for {code.points:,} points, issued "
            f"{show(code.issued_at, zone)}, expires {show(code.expires_at, zone)}, "
            f"{code.attempts_left} attempts left, {code.sends_left} sends left")


def fraud_line(status: str, change: FraudChange | None, zone: tzinfo) -> str:
    if change is None:
        return f"Fraud status: {status}"
    return (f"Fraud status: {status} (set from {change.before} by {change.staff} at "
            f"{show(change.at, zone)}: {short(change.reason)})")


def ledger_line(line: LedgerLine, zone: tzinfo) -> str:
    """One ledger entry with who and why where known."""
    when, points = show(line.at, zone), f"{line.points:+,}"
    by = f" by {line.staff}" if line.staff else ""
    why = f": {short(line.reason)}" if line.reason else ""
    if line.source == "redemption":
        note = f" ({short(line.reason)})" if line.reason else ""
        return f"{when}  redeemed {points}  {line.reference} on {line.transaction_number}{note}"
    if line.source == "reversal":
        return f"{when}  reversed {points}  {line.reference} of {line.redemption_id}{by}{why}"
    if line.source == "earn":
        return f"{when}  earned {points}  on bill {line.transaction_number or line.reference}"
    if line.source == "import":
        return f"{when}  imported {points}  {line.reference}{why}"
    return f"{when}  {line.source} {points}  {line.reference}{by}{why}"


def member_profile(report: MemberReport | None, zone: tzinfo) -> str:
    if report is None:  # a reply kept from before the report (a redelivery): ask again
        return "Send /member again to see the member."
    b, m = report.balance, report.balance.member
    lines = [f"Member {m.id}: {m.name or '(no name)'}",
             f"Mobile {m.mobile or '-'}, email {m.email or '-'}, external id "
             f"{m.external_id or '-'}",
             f"Type {m.customer_type}",
             fraud_line(m.fraud_status, report.fraud_change, zone),
             linked_account(report.linked, zone),
             code_view(report.code, zone),
             f"Their current points: {b.current_points:,} (worth {b.value}); lifetime "
             f"points {b.lifetime_points:,}; lifetime purchases {b.lifetime_purchases:,.2f}",
             ""]
    if report.entries:
        lines.append("Their last ledger entries:")
        lines += [ledger_line(e, zone) for e in report.entries]
    else:
        lines.append("No ledger entries yet.")
    return fit("\n".join(lines))


def goodwill_issued(issued: Issued, member: MemberView | None, reference: str | None) -> str:
    whom = f" to {who_is(member)}" if member is not None else ""
    if issued.replayed:
        return (f"Reference {reference} was already used for this grant ({issued.reference}): "
                f"nothing more was issued{whom}. Their current points: {issued.balance:,}.")
    ref = f", reference {reference}" if reference else ""
    return (f"Issued {issued.points:,} goodwill points ({issued.reference}{ref}){whom}; "
            f"their current points now {issued.balance:,}.")


def goodwill_confirm(member: MemberView, points: int, reason: str, reference: str | None
                     ) -> str:
    ref = f"\nReference: {reference}" if reference else ""
    return (f"Give {points:,} goodwill points to {who_is(member)}?\nReason: {short(reason)}"
            f"{ref}\nPress Confirm to issue them, or Cancel.")


def reverted(result: ReversalResult) -> str:
    return (f"Reverted {result.points_reversed:,} points ({', '.join(result.reversal_ids)}); "
            f"their current points now {result.balance:,}.")


def reversed_(result: ReversalResult) -> str:
    return (f"Reversed {result.points_reversed:,} points ({', '.join(result.reversal_ids)}); "
            f"their current points now {result.balance:,}.")


def unlinked(done: Unlinked) -> str:
    if done.linked is None:
        return f"No Telegram account was linked to {who_is(done.member)}: nothing changed."
    name = f" ({short(done.linked.name, 60)})" if done.linked.name else ""
    return (f"Unlinked Telegram account {done.linked.user}{name} from {who_is(done.member)}. "
            "They must share their phone number again to use the bot; a pending validation "
            "code was voided.")


def fraud_set(member: MemberView, change: FraudChange) -> str:
    same = " (unchanged)" if change.before == change.after else ""
    return (f"Fraud status of {who_is(member)}: {change.before} -> {change.after}{same}. "
            f"Recorded: {short(change.reason)}")


def staff_log(lines: Sequence[StaffLine], filters: Mapping[str, str], zone: tzinfo) -> str:
    shown = ", ".join(f"{k} {v}" for k, v in filters.items())
    head = f"Staff log ({shown}), newest first:" if shown else "Staff log, newest first:"
    if not lines:
        return f"{head}\nnothing recorded."
    out = [head]
    for line in lines:
        mark = "REFUSED " if line.refused else ""
        out.append(f"{show(line.at, zone)}  {line.staff}  {mark}{line.action} "
                   f"{short(line.target, 40)}: {short(line.detail)}")
    return fit("\n".join(out))


Values = Mapping[str, Any]
STAFF_WORDING: dict[str, Callable[[Values, Texts], str]] = {
    "staff_refused": lambda v, t: staff_refused(v["refusal"], v["usage"], v.get("action", "")),
    "member_profile": lambda v, t: member_profile(v.get("report"), t.zone),
    "goodwill_issued": lambda v, t: goodwill_issued(v["issued"], v.get("member"),
                                                    v.get("reference")),
    "goodwill_confirm": lambda v, t: goodwill_confirm(v["member"], v["points"], v["reason"],
                                                      v.get("reference")),
    "goodwill_confirm_hint": lambda v, t: (
        f"Press Confirm to issue {v['points']:,} goodwill points, or Cancel."),
    "goodwill_cancelled": lambda v, t: (
        f"Cancelled: the {v['points']:,} goodwill points were not issued."),
    "reverted": lambda v, t: reverted(v["result"]),
    "reversed": lambda v, t: reversed_(v["result"]),
    "unlinked": lambda v, t: unlinked(v["unlinked"]),
    "fraud_set": lambda v, t: fraud_set(v["member"], v["change"]),
    "staff_log": lambda v, t: staff_log(v["lines"], v.get("filters", {}), t.zone),
}
