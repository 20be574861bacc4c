"""`python benchmarks/reliability.py [--quick]`: the reliability drills of issue 5 on SQLite
and on PostgreSQL, and one table of what they held.

Drills (`benchmarks/drills.py`, the same code the tests in tests/reliability/ run):

- concurrent redemptions: N processes redeem different amounts from one member at once;
- the bot under load: members go contact -> /redeem -> Confirm -> code -> 800 at once,
  spread over worker processes that each run their own `Application` and stand-in Bot API;
- SIGKILL: a process redeeming, importing, earning and reversing in a loop is killed at
  random moments and restarted, and the books are audited after every kill;
- SIGKILL at every step: a bot worker is killed at every point of the handling of every
  update of a member's redemption (before and after each commit, after each message the
  Bot API took), the update delivered again to a fresh worker, and the flow goes on: no
  update may be lost, no amount redeemed twice;
- hostile input: Hypothesis draws hostile updates for the bot and hostile import files;
- connections held: a webhook worker limited to 256 file descriptors is held hundreds of
  idle or half-sent connections while real updates come in, each to be answered within
  5 s, with a handful of log lines at most.
- concurrent guesses: threads enter wrong validation codes for one code at once; at most
  OTP_MAX_ATTEMPTS of them may be compared, and the code is void afterwards;
- contact numbers: Hypothesis draws contact numbers (members' numbers without their
  country code, mangled, anything) shared against members from many countries; none may
  link a chat to a member other than the one its international reading names.

For each drill and database the table says how many requests were held, crashes survived,
hostile inputs tried, updates lost and double redemptions (for the drills that count them)
and invariant violations found: the last three must be 0. PostgreSQL is
LOYALTY_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test); each
drill gets a database of its own there, dropped afterwards; when the server cannot be
reached its rows are skipped with a note. Progress goes to stderr, the table to stdout.

Exits 1 when a violation was found or a drill could not run, 0 otherwise. `--quick` (small
sizes, well under a minute) is for CI; the full run takes a few minutes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import drills
from benchmarks.common import log, machine_facts, postgres_url
from tests.support.databases import DEFAULT_POSTGRES_URL, POSTGRES_ENV, own_database


@dataclass(frozen=True)
class Sizes:
    processes: int  # concurrent redemptions against one member
    bot_members: int
    bot_workers: int
    kills: int
    fuzz_examples: int  # hostile updates (and half as many import files)
    held: int  # idle or half-sent connections held against a webhook worker
    held_updates: int  # real updates sent meanwhile
    guessers: int  # simultaneous wrong guesses at one validation code
    guess_rounds: int  # codes guessed at, one after another
    contacts: int  # contact numbers shared
    kill_steps: tuple[str, ...]  # updates of the flow killed in at every point


QUICK = Sizes(processes=20, bot_members=40, bot_workers=2, kills=6, fuzz_examples=100,
              held=300, held_updates=20, guessers=40, guess_rounds=1, contacts=100,
              kill_steps=("confirm", "code"))
FULL = Sizes(processes=50, bot_members=200, bot_workers=4, kills=40, fuzz_examples=1000,
             held=1000, held_updates=100, guessers=40, guess_rounds=10, contacts=1000,
             kill_steps=drills.FLOW)


def plan(sizes: Sizes) -> list[tuple[str, Callable[[str], drills.Outcome]]]:
    return [
        ("concurrent redemptions",
         lambda url: drills.concurrent_redemptions(url, processes=sizes.processes)),
        ("bot under load", lambda url: drills.bot_load(url, members=sizes.bot_members,
                                                       workers=sizes.bot_workers)),
        ("SIGKILL", lambda url: drills.crash_drill(url, kills=sizes.kills)),
        ("SIGKILL at every step", lambda url: drills.kill_every_step(
            url, steps=sizes.kill_steps)),
        ("hostile input", lambda url: drills.fuzz_drill(url, examples=sizes.fuzz_examples)),
        ("connections held", lambda url: drills.held_connections(
            url, held=sizes.held, updates=sizes.held_updates)),
        ("concurrent guesses", lambda url: drills.concurrent_guesses(
            url, guessers=sizes.guessers, rounds=sizes.guess_rounds)),
        ("contact numbers", lambda url: drills.contact_drill(url, examples=sizes.contacts)),
    ]


def format_table(outcomes: Sequence[drills.Outcome]) -> str:
    header = ("drill", "database", "requests held", "crashes survived",
              "hostile inputs tried", "updates lost", "double redemptions",
              "invariant violations", "seconds")

    def counted(value: int | None) -> str:
        return "-" if value is None else f"{value:,}"

    cells = [header] + [
        (o.drill, o.database, f"{o.requests:,}", f"{o.crashes:,}", f"{o.hostile:,}",
         counted(o.lost), counted(o.doubles), f"{len(o.violations):,}", f"{o.seconds:.1f}")
        for o in outcomes]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(c) for c in cells[1:])])


def run(sizes: Sizes, *, postgres: bool = True, workdir: Path | None = None
        ) -> tuple[list[drills.Outcome], list[str]]:
    """Every drill on SQLite, then on PostgreSQL; the outcomes and the notes."""
    outcomes: list[drills.Outcome] = []
    notes: list[str] = []
    base = postgres_url()
    why = drills.unreachable(base) if postgres else "not asked for"
    databases = ["SQLite"] + (["PostgreSQL"] if why is None else [])
    if why is not None:
        notes.append(f"PostgreSQL skipped: {why} ({POSTGRES_ENV} or the default "
                     f"{DEFAULT_POSTGRES_URL})")
    with tempfile.TemporaryDirectory(prefix="reliability-", dir=workdir) as directory:
        for database in databases:
            for n, (name, drill) in enumerate(plan(sizes)):
                log(f"{name} on {database}")
                kind = "sqlite" if database == "SQLite" else "postgres"
                try:
                    with own_database(kind, Path(directory), f"drill{n}.db", base) as url:
                        outcome = drill(url)
                except Exception as error:
                    traceback.print_exc()
                    outcome = drills.Outcome(name, database, violations=[
                        f"the drill failed to run: {type(error).__name__}: {error}"])
                outcomes.append(outcome)
                notes += [f"{outcome.drill} ({outcome.database}): {v}"
                          for v in outcome.violations[:20]]
                if outcome.detail:
                    log(f"  {outcome.detail}; {len(outcome.violations)} violations")
    return outcomes, notes


def report(outcomes: Sequence[drills.Outcome], notes: Sequence[str], *, quick: bool,
           seconds: float) -> str:
    found = sum(len(o.violations) for o in outcomes)
    out = [f"Reliability drills ({'--quick' if quick else 'full run'}); {machine_facts()}; "
           f"{seconds:.0f} s", "", format_table(outcomes), "",
           f"Invariant violations found: {found}" + (" (must be 0)" if found else ""),
           "", "What each drill holds:"]
    out += [f"  - {o.drill} ({o.database}): {o.detail}" for o in outcomes if o.detail]
    if notes:
        out += ["", "Notes:"] + [f"  - {n}" for n in notes]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/reliability.py",
                                     description=__doc__.split("\n\n")[0] if __doc__ else "",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, well under a minute (what CI runs)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    outcomes, notes = run(QUICK if args.quick else FULL, postgres=not args.no_postgres)
    print(report(outcomes, notes, quick=args.quick, seconds=time.perf_counter() - started))
    return 1 if any(o.violations for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
