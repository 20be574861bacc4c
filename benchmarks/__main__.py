"""`python -m benchmarks [--quick] [--rows 2,3]`: run the benchmark rows and print one
table (figure, same-run baseline, ratio, goal, met), why each missed goal was missed, and
the details some rows add (the redemption cycle's profile).

Exits 0 whether goals are met or not; exits 1 only when a benchmark itself failed to run,
so CI (`--quick`) keeps the benchmarks working without judging the numbers.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from collections.abc import Sequence

from benchmarks.common import (
    Goal,
    Interference,
    Section,
    format_report,
    load_average,
    log,
    machine_facts,
    not_measured,
)

# (row number, module, name, goal): the order they run in; the table is sorted by number.
ROWS: tuple[tuple[str, str, str, Goal], ...] = (
    ("2", "benchmarks.redemption_cycle", "redemption cycle (chat), SQLite WAL",
     Goal(">=", 0.3)),
    ("3", "benchmarks.scale", "scale", Goal("<=", 1.5)),
    ("4", "benchmarks.postgres_scaleout", "PostgreSQL scale-out", Goal(">=", 0.625)),
    ("5", "benchmarks.import_lock", "import: write lock held", Goal("<=", 3.0)),
    ("1", "benchmarks.bot_overhead", "bot overhead", Goal(">=", 0.5)),
    ("6", "benchmarks.api_overhead", "API isredeemable throughput", Goal(">=", 0.5)),
)


# Other processes' CPU use (in cores) above which a row's figures are flagged.
NOISY_CORES = 0.25


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, under a minute (what CI runs)")
    parser.add_argument("--rows", default="",
                        help="comma-separated row numbers to run (default: all)")
    args = parser.parse_args(argv)
    wanted = {r.strip() for r in args.rows.split(",") if r.strip()}
    sections: list[tuple[str, Section]] = []
    failed = False
    started = time.perf_counter()
    load = load_average()
    for number, module_name, name, goal in ROWS:
        if wanted and number not in wanted:
            continue
        log(f"row {number}: {name}")
        interference = Interference()
        try:
            module = importlib.import_module(module_name)
            section: Section = module.run(args.quick)
        except Exception as error:
            traceback.print_exc()
            failed = True
            section = Section([not_measured(number, name, goal,
                                            f"failed: {type(error).__name__}: {error}")])
        others = interference.cores(section.server_cpu_seconds)
        if others > NOISY_CORES:
            section.notes.append(
                f"row {number}: other processes kept ~{others:.1f} cores busy while it ran, "
                f"so its figures are less reliable; run again on a quiet machine")
        sections.append((number, section))
    sections.sort(key=lambda item: item[0])
    log(f"done in {time.perf_counter() - started:.0f} s")
    facts = f"{machine_facts()}; load average at start {load}"
    print(format_report([s for _, s in sections], quick=args.quick, facts=facts))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
