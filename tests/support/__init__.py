"""Helpers and fixtures the test folders share, each defined once."""
