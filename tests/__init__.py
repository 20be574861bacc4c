"""The test suites, a package: modules import each other as `tests.<suite>.<module>` and
share `tests.support`."""
