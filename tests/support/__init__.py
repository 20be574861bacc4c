"""What the suites under tests/ and the benchmarks share, in one place each: a clock the
test moves (`clock`), the Data Import file writer (`members`), settings isolation
(`settings`) and a database of a test's own that is dropped afterwards (`databases`).

Imported as `tests.support.<module>`; the benchmarks import it too (run them from the
repository's root: `python -m benchmarks`)."""
