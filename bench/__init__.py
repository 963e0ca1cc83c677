"""Benchmarks that print figures and ratios against peers (``make bench``); not tests."""
