"""Benchmarks of the runtime SDK against its peers, measured in one run on a private local cloud.

Run everything with ``.venv/bin/python -m benchmarks.runtime`` (see benchmarks/README_runtime.md).
"""
