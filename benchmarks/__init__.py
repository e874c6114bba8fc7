"""Benchmarks of the NumPy reference kernels against torch, and of the course machinery.

Run with ``make bench`` (or ``python benchmarks/run.py --out build/bench``); the report
is ``build/bench/report.md`` with the raw numbers in ``results.json``.
"""
