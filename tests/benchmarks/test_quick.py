"""The benchmarks' own machinery on tiny sizes: the table and report, the bulk loader's
ledger invariant, rows 2 and 3 end to end, and the rows that cannot be measured. Nothing
here looks at a timing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks import (
    api_overhead,
    bot_overhead,
    import_lock,
    postgres_scaleout,
    redemption_cycle,
    scale,
)
from benchmarks.common import (
    Goal,
    Row,
    Section,
    bench_settings,
    format_report,
    format_table,
    ledger_mismatches,
    mobile,
    percentile,
    populate_sqlite,
    sqlite_url,
)
from core.service import PointsService


def test_goal_and_table() -> None:
    assert Goal(">=", 0.3).met(0.3) and not Goal(">=", 0.3).met(0.29)
    assert Goal("<=", 1.5).met(1.5) and not Goal("<=", 1.5).met(1.51)
    rows = [Row("2", "cycle", "10/s", "100/s", 0.1, Goal(">=", 0.3), why="too slow"),
            Row("3a", "scale", "1 ms", "1 ms", 1.0, Goal("<=", 1.5), why="unused"),
            Row("4", "pg", "not measured: off", "-", None, Goal(">=", 2.5))]
    report = format_report([Section(rows, ["a note"], ["detail line"])], quick=True,
                           facts="2 cores")
    lines = report.splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 5 and len({len(line) for line in table}) == 1
    assert "| NO " in table[2] and "| yes " in table[3] and "| - " in table[4]
    assert "row 2 (cycle): too slow" in report and "unused" not in report
    assert "a note" in report and "detail line" in report


def test_percentile() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0], 99) == pytest.approx(1.99)


def test_bulk_load_keeps_the_ledger_invariant(tmp_path: Path) -> None:
    path = tmp_path / "bulk.db"
    populate_sqlite(path, 50, 3)
    assert ledger_mismatches(path) == 0
    service = PointsService(bench_settings(sqlite_url(path)))
    try:
        assert service.audit() == []
        assert service.member_count() == 50
        balance = service.balance(mobile(7))
        assert balance.current_points == sum(e.points for e in
                                             service.ledger_entries(mobile(7)))
    finally:
        service.db.dispose()


def test_rows_2_and_3_run_on_tiny_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redemption_cycle, "QUICK", redemption_cycle.Size(20, 1, 5))
    monkeypatch.setattr(scale, "QUICK", scale.Size(large_members=2_000, samples=100,
                                                   warmup=10))
    cycle = redemption_cycle.run(quick=True)
    sized = scale.run(quick=True)
    assert [r.number for r in cycle.rows] == ["2"]
    assert [r.number for r in sized.rows] == ["3a", "3b"]
    for row in cycle.rows + sized.rows:
        assert row.ratio is not None and row.ratio > 0
    assert any("by layer" in line for line in cycle.details)
    assert any("SEARCH member" in line for line in sized.details)


def test_row_5_runs_on_a_tiny_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_lock, "QUICK", import_lock.Size(rows=200, rounds=1))
    section = import_lock.run(quick=True)
    assert [r.number for r in section.rows] == ["5"]
    assert section.rows[0].name == "import 200 rows: write lock held"
    assert section.rows[0].ratio is not None and section.rows[0].ratio > 0


def test_row_4_is_skipped_when_postgresql_is_unreachable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_TEST_POSTGRES_URL",
                       "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    section = postgres_scaleout.run(quick=True)
    assert section.rows[0].ratio is None
    assert "unreachable" in section.rows[0].figure and section.notes


def test_row_1_says_so_when_the_bot_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot_overhead, "bot_available", lambda: "bot not available (test)")
    section = bot_overhead.run(quick=True)
    assert section.rows[0].figure == "not measured: bot not available"
    assert section.rows[0].ratio is None


@pytest.mark.slow
def test_row_6_runs_on_a_tiny_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both apps served, loaded and profiled: the row, its notes and its profile by layer
    (nothing here looks at the figures)."""
    monkeypatch.setattr(api_overhead, "QUICK", api_overhead.Size(requests=40, runs=1,
                                                                 profiled=20))
    section = api_overhead.run(quick=True)
    assert [r.number for r in section.rows] == ["6a", "6b", "6c"]
    for row in section.rows:
        assert row.ratio is not None and row.ratio > 0
    assert section.rows[0].goal == api_overhead.GOAL
    assert any("scrypt calls during 20 profiled requests" in note for note in section.notes)
    assert any("write transaction(s)" in note for note in section.notes)
    profile = "\n".join(section.details)
    assert "Row 6 profile" in profile and "our adapter (api/)" in profile
    assert "SQLAlchemy Core" in profile and "fastapi" in profile


def test_row_6_says_so_when_the_api_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_overhead, "api_available", lambda: "the API is not available (test)")
    section = api_overhead.run(quick=True)
    assert section.rows[0].figure.startswith("not measured") and section.rows[0].ratio is None


def test_a_row_without_a_goal_is_reported_without_a_verdict() -> None:
    row = Row("1b", "p50", "2 ms", "1 ms", 2.0, None)
    assert row.met is None and row.verdict == "-"
    cells = [cell.strip() for cell in format_table([row]).splitlines()[2].split("|")]
    assert cells[-3:] == ["-", "-", ""]


def scaleout_run(workers: int, cycles: int, other_cores: float) -> postgres_scaleout.Run:
    """A made-up run of 10 s: `cycles` per worker, 5 ms of worker CPU and 2 ms of backend
    CPU per cycle."""
    return postgres_scaleout.Run(workers, 10.0, (cycles,) * workers,
                                 (cycles * 0.005,) * workers, workers * cycles * 0.002,
                                 2.0, other_cores)


def test_row_4_judges_the_speedup_against_the_free_cores() -> None:
    size = postgres_scaleout.QUICK
    one = scaleout_run(1, 1000, 0.0)  # 100 cycles/s
    # 2 workers, 150 cycles/s together, with 0.5 of the 2 cores busy elsewhere: 1.5x on
    # 1.5 free cores is perfect scaling.
    section = postgres_scaleout._section(one, scaleout_run(2, 750, 0.5), [0, 1], size,
                                         False, "here")
    row = section.rows[0]
    assert row.ratio == pytest.approx(1.0) and row.goal is not None and row.met
    assert "1.50x" in row.figure and "1.50 free" in row.baseline
    assert any("worker(s) 5.00, 5.00 ms, PostgreSQL backend(s) 2.00 ms" in note
               for note in section.notes)
    # The same speedup on 4 free cores with 4 workers is 0.375 of them: missed, and why.
    section = postgres_scaleout._section(one, scaleout_run(4, 375, 0.0), [0, 1, 2, 3], size,
                                         False, "here")
    row = section.rows[0]
    assert row.ratio == pytest.approx(1.5 / 4) and row.met is False and row.why
    # With hardly a core free there is nothing to scale out onto: not judged.
    section = postgres_scaleout._section(one, scaleout_run(2, 750, 1.2), [0, 1], size,
                                         False, "here")
    assert section.rows[0].met is None
    assert any("not judged" in note for note in section.notes)


@pytest.mark.skipif(not os.environ.get("LOYALTY_TEST_POSTGRES_URL"),
                    reason="LOYALTY_TEST_POSTGRES_URL not set")
def test_row_4_runs_on_a_tiny_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_scaleout, "QUICK", postgres_scaleout.Size(0.5, 1, 50))
    section = postgres_scaleout.run(quick=True)
    row = section.rows[0]
    assert row.ratio is not None and row.ratio > 0
    assert any("CPU per redemption" in note for note in section.notes)
    assert section.server_cpu_seconds > 0  # the backends' CPU, seen through /proc
