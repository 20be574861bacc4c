"""`loyalty-bot`: the one command for staff and scripts.

Points in (earn, import, goodwill), the operations of the points API (member, isredeemable,
validationcode, redeem, revert, reverse, history), the status code catalogue, the ledger
audit, `run`, which starts the Telegram bot, `api`, which serves the points API over
HTTP, and `api-client`, which manages the API's tills.

Exit codes: 0 success; 1 a refusal, with its status code and message on one line (a
database that cannot be reached or stays locked is 815, 889 for points coming in; a bad
setting 888 or 899), or an import file refused for its bad rows; 2 wrong usage (typer's
own errors, and input no status code covers, such as an amount of money that does not
parse). Never a traceback, unless `-v` asks for one. Negative numbers are values, not
options: `isredeemable X -100` answers 801.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand
from typer.models import CommandFunctionType

from core.chat import Chats
from core.delivery import CodeMessage, RecordingSender
from core.service import Balance, ImportRejected, PointsService
from core.settings import load_settings, require_strong_key
from core.status import CATALOGUE, InputError, PointsError, message
from core.times import show

T = TypeVar("T")
# A token that is a negative number (or looks like one: "-1.5"), never an option.
_NEGATIVE = re.compile(r"-[0-9.]")


def negatives_as_values(args: list[str], params: Sequence[Any]) -> list[str]:
    """`args` with every negative number moved behind "--", so that click takes it as a
    value: options (and their values) first, in order, then the values, in order."""
    if not any(_NEGATIVE.match(arg) for arg in args):
        return args
    takes_value = {name: not (param.is_flag or param.count)
                   for param in params if param.param_type_name == "option"
                   for name in (*param.opts, *param.secondary_opts)}
    options: list[str] = []
    values: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            values += rest
            break
        if arg in takes_value:
            options.append(arg)
            if takes_value[arg] and rest:
                options.append(rest.pop(0))
        elif arg.startswith("-") and not _NEGATIVE.match(arg):
            options.append(arg)  # --name=value, or an unknown option click will name
        else:
            values.append(arg)
    return [*options, "--", *values]


class Command(TyperCommand):
    """A command whose negative numbers are values (`redeem X -100` answers 801)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, negatives_as_values(args, self.get_params(ctx)))


class Cli(typer.Typer):
    """The app: every command is a `Command`."""

    def command(self, name: str | None = None, **kwargs: Any
                ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        kwargs.setdefault("cls", Command)
        return super().command(name, **kwargs)


app = Cli(help="Loyalty points: the engine's operations for staff and scripts, and the "
               "Telegram bot.", no_args_is_help=True, add_completion=False)


class PrintingSender(RecordingSender):
    """The CLI's channel: the validation code is printed for the operator running it."""

    def send(self, message: CodeMessage) -> str:
        super().send(message)
        typer.echo(f"validation code for member {message.member_id}: {message.code}")
        return "log"


def service(transient_code: int = 815, *, delivers_codes: bool = False) -> PointsService:
    """The engine on DATABASE_URL; a database that cannot be reached (or stays locked)
    while it starts answers `transient_code`. A command that delivers validation codes
    first refuses a weak SECRET_KEY (899). Says on stderr which database it opened (a
    relative SQLite path is relative to the directory the command runs in)."""
    settings = load_settings()
    if delivers_codes:
        require_strong_key(settings)
    try:
        engine = PointsService(settings, senders=[PrintingSender("log")])
    except PointsError as error:
        if error.code != 815 or transient_code == 815:
            raise
        raise PointsError(transient_code, error.detail, reason=error.reason,
                          **error.facts) from error.__cause__
    typer.echo(f"database: {engine.location()}", err=True)
    return engine


def warn_if_empty(engine: PointsService) -> None:
    """An unknown member in a database without any: most likely the wrong database."""
    try:
        empty = engine.member_count() == 0
    except Exception:  # the refusal itself is what the operator needs to see
        return
    if empty:
        typer.echo(f"warning: the database ({engine.location()}) holds no members: is "
                   "DATABASE_URL right? (a relative sqlite:/// path is relative to the "
                   "current directory)", err=True)


class Options:
    """The global options of this run (set by `main`)."""

    verbose = False


@contextmanager
def answers() -> Iterator[None]:
    """Turn refusals into their code and message on one line, and a non-zero exit (the
    traceback behind them too, with -v)."""
    try:
        yield
    except PointsError as error:
        if Options.verbose and error.__cause__ is not None:
            typer.echo("".join(traceback.format_exception(error)), err=True, nl=False)
        cause = error.facts.get("cause")  # the database driver's words, for the operator
        typer.echo(f"{error}: {cause}" if cause else str(error), err=True)
        raise typer.Exit(1) from None
    except InputError as error:
        typer.echo(f"error: {error}", err=True)
        for line in getattr(error, "errors", []):
            typer.echo(f"  {line}", err=True)
        # A file refused for its rows is a refusal; other bad input is wrong usage.
        raise typer.Exit(1 if isinstance(error, ImportRejected) else 2) from None


def run(action: Callable[[PointsService], T], *, transient_code: int = 815,
        delivers_codes: bool = False) -> T:
    with answers():
        engine = service(transient_code, delivers_codes=delivers_codes)
        try:
            return action(engine)
        except PointsError as refusal:
            if refusal.code == 816:
                warn_if_empty(engine)
            raise
    raise AssertionError("unreachable")


class BriefFormatter(logging.Formatter):
    """Log lines without tracebacks (they are for -v)."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text:
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None,
                                            "exc_text": None})
        return super().format(record)


@app.callback()
def main(verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="log more, and show the traceback behind a failure")] = False,
         ) -> None:
    Options.verbose = verbose
    root = logging.getLogger()
    if not root.handlers:  # a host that configured logging (a test runner) keeps its own
        handler = logging.StreamHandler()
        kind = logging.Formatter if verbose else BriefFormatter
        handler.setFormatter(kind("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO if verbose else logging.WARNING)
        # Retries are worth a line only with -v: the answer says how it ended.
        logging.getLogger("core.db").setLevel(logging.NOTSET if verbose else logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)


@app.command()
def codes() -> None:
    """Print every status code and its message, one per line, code first."""
    for code in sorted(CATALOGUE):
        typer.echo(f"{code} {message(code)}")


MEMBER_HELP = ("the member: mobile, email or external id (or typed: mobile:..., email:..., "
               "external_id:...)")
POINTS_HELP = "points: a positive whole number"
Member = Annotated[str, typer.Argument(help=MEMBER_HELP, show_default=False)]
Points = Annotated[str, typer.Argument(help=POINTS_HELP, show_default=False)]
Staff = Annotated[str, typer.Option("--staff", help="who does it (recorded)")]


@app.command()
def member(identifier: Member) -> None:
    """Show a member's profile, linked Telegram account and balance."""
    def look(s: PointsService) -> tuple[Balance, str | None]:
        found = s.balance(identifier)
        return found, Chats(s).linked_user(found.member.id)

    balance, linked = run(look)
    m = balance.member
    typer.echo(f"member {m.id}: {m.name or '(no name)'}")
    typer.echo(f"  mobile {m.mobile or '-'}  email {m.email or '-'}  "
               f"external id {m.external_id or '-'}")
    typer.echo(f"  type {m.customer_type}  fraud status {m.fraud_status}")
    typer.echo(f"  linked Telegram account {linked or '-'}")
    typer.echo(f"  current points {balance.current_points} (worth {balance.value})")
    typer.echo(f"  lifetime points {balance.lifetime_points}  lifetime purchases "
               f"{balance.lifetime_purchases}")


@app.command()
def isredeemable(identifier: Member, points: Points,
                 code: Annotated[str | None, typer.Option(
                     "--code", help="a validation code to check (not used up)")] = None,
                 ) -> None:
    """Check whether POINTS can be redeemed by the member now."""
    result = run(lambda s: s.is_redeemable(identifier, points, code))
    typer.echo(f"{result.status} ({result.points} points worth {result.points_redeem_value})")


@app.command()
def validationcode(identifier: Member, points: Points) -> None:
    """Issue a validation code for POINTS (printed here: the CLI's channel is the log).
    Refuses a weak SECRET_KEY (899)."""
    issued, zone = run(lambda s: (s.issue_validation_code(identifier, points), s.settings.zone),
                       delivers_codes=True)
    typer.echo(f"{issued.message} ({issued.sends_left} resends left, valid until "
               f"{show(issued.expires_at, zone, seconds=True)})")


@app.command()
def redeem(
    identifier: Member, points: Points,
    transaction: Annotated[str, typer.Option(
        "--transaction", help="the transaction number (the bill)", show_default=False)],
    code: Annotated[str | None, typer.Option("--code", help="the validation code")] = None,
    reference: Annotated[str, typer.Option(
        "--reference", help="external reference number (idempotency key)")] = "",
    notes: Annotated[str, typer.Option("--notes", help="kept with the redemption")] = "",
    time: Annotated[str | None, typer.Option(
        "--time", help="YYYY-MM-DD HH:MM:SS in ORG_TIMEZONE, or with an offset (+05:30)")
    ] = None,
) -> None:
    """Redeem POINTS with the validation code the member received."""
    ref = reference or f"cli-{uuid.uuid4().hex[:16]}"
    if not reference:
        typer.echo(f"external reference number: {ref} (give it again to retry safely)")
    result, zone = run(lambda s: (s.redeem(identifier, points, code,
                                           transaction_number=transaction,
                                           external_reference=ref, notes=notes,
                                           redemption_time=time), s.settings.zone))
    again = " (a retry: answered from the first result)" if result.replayed else ""
    typer.echo(f"{result.status}{again}")
    back = (f"; {result.points_reversed} reversed since" if result.points_reversed else "")
    typer.echo(f"redemption id {result.redemption_id}: {result.points_redeemed} points worth "
               f"{result.redeemed_value} at {show(result.redemption_time, zone)}{back}; "
               f"current points now {result.current_points}")


@app.command()
def revert(transaction: Annotated[str, typer.Argument(
               help="the transaction number redeemed on", show_default=False)],
           points: Annotated[str | None, typer.Argument(
               help="what is left to revert on it (checked); default: all of it",
               show_default=False)] = None,
           identifier: Annotated[str | None, typer.Argument(
               help=f"{MEMBER_HELP}; default: whoever redeemed on it",
               show_default=False)] = None,
           staff: Staff = "cli") -> None:
    """Give back all the points redeemed on a transaction number (as /revert in the chat)."""
    result = run(lambda s: s.revert(identifier, transaction, points, staff=staff))
    typer.echo(f"reverted {result.points_reversed} points ({', '.join(result.reversal_ids)}); "
               f"current points now {result.balance}")


@app.command()
def reverse(redemption: Annotated[str, typer.Argument(
                help="the redemption id or its external reference number",
                show_default=False)],
            points: Annotated[str | None, typer.Argument(
                help="how many to reverse; default: all that is left",
                show_default=False)] = None,
            identifier: Annotated[str | None, typer.Option(
                "--member", help=f"{MEMBER_HELP}, checked against the redemption's")] = None,
            staff: Staff = "cli") -> None:
    """Reverse a redemption (by id or external reference), all that is left or POINTS."""
    result = run(lambda s: s.reverse(redemption, points, identifier=identifier, staff=staff))
    typer.echo(f"reversed {result.points_reversed} points ({result.reversal_ids[0]}); "
               f"current points now {result.balance}")


@app.command()
def history(identifier: Member, limit: Annotated[int, typer.Option(
        "--limit", min=1, help="how many lines at most (1 or more)")] = 20) -> None:
    """Redemptions and reversals, newest first."""
    items, zone = run(lambda s: (s.history(identifier, limit), s.settings.zone))
    if not items:
        typer.echo("no redemptions yet")
    for item in items:
        when = show(item.at, zone)
        if item.kind == "redemption":
            left = (f", {item.points_reversed} reversed" if item.points_reversed else "")
            typer.echo(f"{when}  redeemed {item.points:>8}  {item.id}  on "
                       f"{item.transaction_number}{left}")
        else:
            typer.echo(f"{when}  reversed {item.points:>8}  {item.id}  of {item.redemption_id}")


@app.command()
def earn(identifier: Member,
         bill: Annotated[str, typer.Argument(help="the bill number (once per bill)",
                                             show_default=False)],
         amount: Annotated[str, typer.Argument(
             help="the purchase amount: digits, at most two decimals, no exponent "
                  "(2500.00)", show_default=False)]) -> None:
    """Loyalty Manager: record a purchase on BILL; issues points at EARN_RATE, once per bill."""
    result = run(lambda s: s.earn(identifier, bill, amount), transient_code=889)
    again = " (bill already recorded: nothing more issued)" if result.replayed else ""
    typer.echo(f"issued {result.points} points on bill {bill}{again}; current points now "
               f"{result.balance}")


@app.command("import")
def import_(file: Annotated[Path, typer.Argument(
        help="a CSV file with the columns of the README", show_default=False)]) -> None:
    """Data Import: members and balances from a CSV file (all rows or none)."""
    result = run(lambda s: s.import_file(file), transient_code=889)
    if result.already_imported:
        typer.echo(f"{file.name} was already imported (batch {result.batch_id}): "
                   "nothing changed")
        return
    typer.echo(f"imported {result.rows} rows: {result.created} new members, "
               f"{result.updated} updated, {result.points} points")


@app.command()
def goodwill(identifier: Member, points: Points,
             reason: Annotated[str, typer.Option("--reason", help="why (required)",
                                                 show_default=False)],
             staff: Annotated[str, typer.Option("--staff", help="who gives them",
                                                show_default=False)]) -> None:
    """Member Care: issue goodwill points, recorded with who and why."""
    result = run(lambda s: s.goodwill(identifier, points, reason=reason, staff=staff),
                 transient_code=889)
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
    from bot.logsafe import use_log_format
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
    logging.getLogger("core.db").setLevel(logging.NOTSET)  # a running bot logs its retries
    use_log_format(settings.log_format)  # LOG_FORMAT=json: one JSON object per line
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


@app.command("api")
def api_server() -> None:
    """Serve the points API over HTTP (FastAPI on uvicorn) on API_LISTEN:API_PORT, with
    API_WORKERS workers (several only on PostgreSQL). Codes go out on OTP_CHANNEL (sms,
    email). Refuses a weak SECRET_KEY (899)."""
    # Imported here so the engine's commands start without loading FastAPI.
    from bot.api_server import load_serve_settings, serve
    from bot.logsafe import use_log_format

    logging.getLogger("api").setLevel(logging.INFO)
    with answers():
        settings = load_serve_settings()
    logging.getLogger("core.db").setLevel(logging.NOTSET)  # a running server logs retries
    use_log_format(settings.log_format)
    typer.echo(f"serving the points API on http://{settings.api_listen}:{settings.api_port} "
               f"({settings.api_workers} worker{'s' if settings.api_workers > 1 else ''})",
               err=True)
    serve(settings)


tills_app = Cli(help="The API's clients (tills): add, list, disable, rotate.",
                no_args_is_help=True)
app.add_typer(tills_app, name="api-client")
TillName = Annotated[str, typer.Argument(help="the till's name (its HTTP Basic username)",
                                         show_default=False)]


def _show_password(password: str) -> None:
    typer.echo(f"password: {password}")
    typer.echo("(shown once: it is not stored. Clients send its MD5 hex as the HTTP Basic "
               "password.)", err=True)


@tills_app.command("add")
def till_add(name: TillName, allow_skip_validation: Annotated[bool, typer.Option(
        "--allow-skip-validation", help="its redemptions may go without a validation code "
                                        "when it asks (skip_validation)")] = False) -> None:
    """Create a till and print its password, once."""
    made = run(lambda s: s.add_till(name, skip_validation_allowed=allow_skip_validation))
    typer.echo(f"till {made.till.name} added"
               + (" (may skip validation)" if made.till.skip_validation_allowed else ""))
    _show_password(made.password)


@tills_app.command("list")
def till_list() -> None:
    """The tills, with what they may do and their state."""
    tills, zone = run(lambda s: (s.tills(), s.settings.zone))
    if not tills:
        typer.echo("no tills yet (add one with `loyalty-bot api-client add NAME`)")
    for t in tills:
        state = "enabled" if t.enabled else "disabled"
        skip = "  may skip validation" if t.skip_validation_allowed else ""
        rotated = f"  rotated {show(t.rotated_at, zone)}" if t.rotated_at else ""
        typer.echo(f"{t.name}  {state}{skip}  created {show(t.created_at, zone)}{rotated}")


@tills_app.command("disable")
def till_disable(name: TillName) -> None:
    """Refuse a till from now on."""
    done = run(lambda s: s.disable_till(name))
    typer.echo(f"till {done.name} disabled")


@tills_app.command("rotate")
def till_rotate(name: TillName) -> None:
    """Give a till a new password (the old one stops working) and print it, once."""
    made = run(lambda s: s.rotate_till(name))
    typer.echo(f"till {made.till.name}: new password")
    _show_password(made.password)


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
