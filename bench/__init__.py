"""Benchmarks: Caseclock against the raw-Temporal floor and a DBOS peer (see docs/BENCHMARKS.md)."""
