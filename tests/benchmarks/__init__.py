"""The benchmarks suite: the benchmarks run small (`--quick`) and checked."""
