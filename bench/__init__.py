"""Carewire load benchmarks: ``python -m bench.run SCENARIO`` (see bench/README.md)."""
