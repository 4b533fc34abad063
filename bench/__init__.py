"""Benchmarks (run as scripts, not collected as tests)."""
