"""Demonstration: the Sa Kaeo demo of `make run`, the national dataset of `tidtam demo-data`, and
the LINE stand-in. May import documents, app and everything below them."""
