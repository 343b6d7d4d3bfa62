"""Benchmarks behind `bench perf`."""
