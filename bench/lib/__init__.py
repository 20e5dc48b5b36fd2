"""Helpers of `make bench` (bench/run.py): statistics, comparison, estate, load and probes."""
