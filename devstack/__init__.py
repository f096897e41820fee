"""Local stand-ins for external services: what `make run` and the tests talk to instead of the real ones."""
