"""The reliability suite: load, crash and hostile-input drills (benchmarks/drills.py)."""
