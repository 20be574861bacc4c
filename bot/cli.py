"""`loyalty-bot`: the one command for staff and scripts.

Points in (earn, import, goodwill), the operations of the points API (member, isredeemable,
validationcode, redeem, revert, reverse, history), the status code catalogue, the ledger
audit, and `run`, which starts the Telegram bot. A refusal prints its status code and
message and exits 1; input no code covers exits 2 with a short explanation.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from core.delivery import CodeMessage, RecordingSender
from core.service import PointsService
from core.settings import load_settings, require_strong_key
from core.status import CATALOGUE, InputError, PointsError, message

app = typer.Typer(help="Loyalty points: the engine's operations for staff and scripts, and "
                       "the Telegram bot.", no_args_is_help=True, add_completion=False)
T = TypeVar("T")


class PrintingSender(RecordingSender):
    """The CLI's channel: the validation code is printed for the operator running it."""

    def send(self, message: CodeMessage) -> str:
        super().send(message)
        typer.echo(f"validation code for member {message.member_id}: {message.code}")
        return "log"


def service(*, delivers_codes: bool = False) -> PointsService:
    """The engine on DATABASE_URL; a command that delivers validation codes first refuses a
    weak SECRET_KEY (899)."""
    settings = load_settings()
    if delivers_codes:
        require_strong_key(settings)
    return PointsService(settings, senders=[PrintingSender("log")])


@contextmanager
def answers() -> Iterator[None]:
    """Turn refusals into their code and message, and a non-zero exit."""
    try:
        yield
    except PointsError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    except InputError as error:
        typer.echo(f"error: {error}", err=True)
        for line in getattr(error, "errors", []):
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(2) from None


def run(action: Callable[[PointsService], T], *, delivers_codes: bool = False) -> T:
    with answers():
        return action(service(delivers_codes=delivers_codes))
    raise AssertionError("unreachable")


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


@app.command()
def codes() -> None:
    """Print every status code and its message, one per line, code first."""
    for code in sorted(CATALOGUE):
        typer.echo(f"{code} {message(code)}")


@app.command()
def member(identifier: str) -> None:
    """Show a member's profile and balance."""
    balance = run(lambda s: s.balance(identifier))
    m = balance.member
    typer.echo(f"member {m.id}: {m.name or '(no name)'}")
    typer.echo(f"  mobile {m.mobile or '-'}  email {m.email or '-'}  "
               f"external id {m.external_id or '-'}")
    typer.echo(f"  type {m.customer_type}  fraud status {m.fraud_status}")
    typer.echo(f"  current points {balance.current_points} (worth {balance.value})")
    typer.echo(f"  lifetime points {balance.lifetime_points}  lifetime purchases "
               f"{balance.lifetime_purchases}")


@app.command()
def isredeemable(identifier: str, points: str,
                 code: Annotated[str | None, typer.Option("--code")] = None) -> None:
    """Check whether POINTS can be redeemed by the member now."""
    result = run(lambda s: s.is_redeemable(identifier, points, code))
    typer.echo(f"{result.status} ({result.points} points worth {result.points_redeem_value})")


@app.command()
def validationcode(identifier: str, points: str) -> None:
    """Issue a validation code for POINTS (printed here: the CLI's channel is the log).
    Refuses a weak SECRET_KEY (899)."""
    issued = run(lambda s: s.issue_validation_code(identifier, points), delivers_codes=True)
    typer.echo(f"{issued.message} ({issued.sends_left} resends left, valid until "
               f"{issued.expires_at:%Y-%m-%d %H:%M:%S} UTC)")


@app.command()
def redeem(
    identifier: str, points: str,
    code: Annotated[str | None, typer.Option("--code", help="the validation code")] = None,
    transaction: Annotated[str, typer.Option("--transaction", help="the bill number")] = "",
    reference: Annotated[str, typer.Option(
        "--reference", help="external reference number (idempotency key)")] = "",
    notes: Annotated[str, typer.Option("--notes")] = "",
    time: Annotated[str | None, typer.Option("--time", help="YYYY-MM-DD HH:MM:SS")] = None,
) -> None:
    """Redeem POINTS with the validation code the member received."""
    ref = reference or f"cli-{uuid.uuid4().hex[:16]}"
    if not reference:
        typer.echo(f"external reference number: {ref} (give it again to retry safely)")
    result = run(lambda s: s.redeem(identifier, points, code, transaction_number=transaction,
                                    external_reference=ref, notes=notes,
                                    redemption_time=time))
    again = " (a retry: answered from the first result)" if result.replayed else ""
    typer.echo(f"{result.status}{again}")
    typer.echo(f"redemption id {result.redemption_id}: {result.points_redeemed} points worth "
               f"{result.redeemed_value}; current points now {result.balance}")


@app.command()
def revert(identifier: str, transaction: str, points: str,
           staff: Annotated[str, typer.Option("--staff")] = "cli") -> None:
    """Give back the points redeemed on a transaction number (all of them)."""
    result = run(lambda s: s.revert(identifier, transaction, points, staff=staff))
    typer.echo(f"reverted {result.points_reversed} points ({', '.join(result.reversal_ids)}); "
               f"current points now {result.balance}")


@app.command()
def reverse(redemption: str, points: Annotated[str | None, typer.Argument()] = None,
            identifier: Annotated[str | None, typer.Option("--member")] = None,
            staff: Annotated[str, typer.Option("--staff")] = "cli") -> None:
    """Reverse a redemption (by id or external reference), all that is left or POINTS."""
    result = run(lambda s: s.reverse(redemption, points, identifier=identifier, staff=staff))
    typer.echo(f"reversed {result.points_reversed} points ({result.reversal_ids[0]}); "
               f"current points now {result.balance}")


@app.command()
def history(identifier: str, limit: Annotated[int, typer.Option("--limit")] = 20) -> None:
    """Redemptions and reversals, newest first."""
    items = run(lambda s: s.history(identifier, limit))
    if not items:
        typer.echo("no redemptions yet")
    for item in items:
        when = f"{item.at:%Y-%m-%d %H:%M}"
        if item.kind == "redemption":
            left = (f", {item.points_reversed} reversed" if item.points_reversed else "")
            typer.echo(f"{when}  redeemed {item.points:>8}  {item.id}  on "
                       f"{item.transaction_number}{left}")
        else:
            typer.echo(f"{when}  reversed {item.points:>8}  {item.id}  of {item.redemption_id}")


@app.command()
def earn(identifier: str, bill: str, amount: str) -> None:
    """Loyalty Manager: record a purchase on BILL; issues points at EARN_RATE, once per bill."""
    result = run(lambda s: s.earn(identifier, bill, amount))
    again = " (bill already recorded: nothing more issued)" if result.replayed else ""
    typer.echo(f"issued {result.points} points on bill {bill}{again}; current points now "
               f"{result.balance}")


@app.command("import")
def import_(file: Path) -> None:
    """Data Import: members and balances from a CSV file (all rows or none)."""
    result = run(lambda s: s.import_file(file))
    if result.already_imported:
        typer.echo(f"{file.name} was already imported (batch {result.batch_id}): "
                   "nothing changed")
        return
    typer.echo(f"imported {result.rows} rows: {result.created} new members, "
               f"{result.updated} updated, {result.points} points")


@app.command()
def goodwill(identifier: str, points: str,
             reason: Annotated[str, typer.Option("--reason", help="why (required)")],
             staff: Annotated[str, typer.Option("--staff", help="who gives them")]) -> None:
    """Member Care: issue goodwill points, recorded with who and why."""
    result = run(lambda s: s.goodwill(identifier, points, reason=reason, staff=staff))
    typer.echo(f"issued {result.points} goodwill points ({result.reference}); current points "
               f"now {result.balance}")


@app.command("run")
def run_bot(sandbox: Annotated[bool, typer.Option(
        "--sandbox", help="a test bot on SANDBOX_DATABASE_URL (never DATABASE_URL) with the "
                          "demo members, codes in the chat, /as and /reset for staff")] = False,
            ) -> None:
    """Start the Telegram bot: long polling, or a webhook server when WEBHOOK_URL is set.
    Outside the sandbox it refuses a weak SECRET_KEY and, unless ALLOW_CHAT_CODES=true,
    OTP_CHANNEL chat."""
    # Imported here so the engine's commands start without loading python-telegram-bot.
    from telegram.error import InvalidToken, TelegramError

    from bot.app import build_application, serve
    from bot.settings import load_bot_settings, require_production_ready

    logging.getLogger("bot").setLevel(logging.INFO)
    with answers():
        if sandbox:
            from bot.sandbox import build_sandbox_application, load_sandbox_settings

            settings = load_sandbox_settings()
            application = build_sandbox_application(settings)
        else:
            settings = load_bot_settings()
            require_production_ready(settings)  # a strong key; chat codes only if allowed
            application = build_application(settings)
    try:
        serve(application, settings)
    except InvalidToken:
        typer.echo("the Bot API refused TELEGRAM_BOT_TOKEN: check it with @BotFather", err=True)
        raise typer.Exit(1) from None
    except TelegramError as error:
        typer.echo(f"cannot talk to the Bot API at {settings.telegram_base_url}: {error}",
                   err=True)
        raise typer.Exit(1) from None


@app.command()
def sandbox(
    keep: Annotated[bool, typer.Option(
        "--keep", help="reuse the sandbox database of the last run instead of a fresh one")
    ] = False,
    data_dir: Annotated[Path, typer.Option(
        "--data-dir", help="where the sandbox keeps its database and log")
    ] = Path("sandbox-data"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log more")] = False,
) -> None:
    """Try the bot in this terminal: the real bot with demo members, no token, no network."""
    from bot.terminal import run_terminal

    with answers():
        status = run_terminal(data_dir, keep=keep, verbose=verbose)
    raise typer.Exit(status)


@app.command()
def audit() -> None:
    """Check every ledger invariant; exit 1 when one is broken."""
    problems = run(lambda s: s.audit())
    for line in problems:
        typer.echo(line)
    if problems:
        raise typer.Exit(1)
    typer.echo("the ledger balances: no invariant is broken")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
