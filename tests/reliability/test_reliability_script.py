"""`benchmarks/reliability.py`: runs every drill, prints the table, and exits 1 when a
violation was found or a drill could not run (tiny sizes, SQLite only: the drills
themselves are held to their sizes by the other tests here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import drills, reliability

ROOT = Path(__file__).resolve().parents[2]


def test_the_drills_run_and_the_table_shows_zero_violations(tmp_path: Path) -> None:
    tiny = reliability.Sizes(processes=4, bot_members=4, bot_workers=2, kills=2,
                             fuzz_examples=10, held=20, held_updates=2, guessers=8,
                             guess_rounds=1, contacts=10, kill_steps=("code",))
    outcomes, notes = reliability.run(tiny, postgres=False, workdir=tmp_path)
    assert [o.database for o in outcomes] == ["SQLite"] * 8
    assert [o.violations for o in outcomes] == [[]] * 8
    assert outcomes[2].crashes == 2 and outcomes[4].hostile == 15
    # Killed at each of the 3 points of the code's update: nothing lost, nothing twice.
    assert (outcomes[3].crashes, outcomes[3].lost, outcomes[3].doubles) == (3, 0, 0)
    assert [o.drill for o in outcomes[5:]] == ["connections held while real updates are served",
                                               "concurrent guesses compared",
                                               "contact numbers tried"]
    assert outcomes[5].requests == 22  # connections held and updates answered
    assert outcomes[6].hostile == 8 and outcomes[7].hostile == 10
    text = reliability.report(outcomes, notes, quick=True, seconds=1.0)
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 10 and len({len(line) for line in table}) == 1
    assert "invariant violations" in table[0] and "crashes survived" in table[0]
    assert "updates lost" in table[0] and "double redemptions" in table[0]
    assert "Invariant violations found: 0" in text
    assert "PostgreSQL skipped: not asked for" in text


def test_a_violation_or_a_drill_that_cannot_run_exits_1(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(url: str) -> drills.Outcome:
        return drills.Outcome("broken", "SQLite", requests=1,
                              violations=["member 1: current points 5 != ledger sum 4"])

    def failing(url: str) -> drills.Outcome:
        raise RuntimeError("no such table")

    monkeypatch.setattr(reliability, "plan", lambda sizes: [("broken", broken),
                                                            ("failing", failing)])
    assert reliability.main(["--quick", "--no-postgres"]) == 1
    out = capsys.readouterr().out
    assert "Invariant violations found: 2 (must be 0)" in out
    assert "current points 5 != ledger sum 4" in out
    assert "the drill failed to run: RuntimeError: no such table" in out


def test_it_runs_as_a_script_from_anywhere(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reliability.py"),
                           "--help"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout
