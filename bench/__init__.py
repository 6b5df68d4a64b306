"""Benchmarks of graphstore-async against references measured in the same run (`make bench`, SPEC §10)."""
