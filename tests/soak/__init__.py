"""The concurrency soak: ``python -m tests.soak`` (``make soak``) and its short run in ``make test``.

- ``runner``: the processes, their load, and the invariants checked by SQL afterwards;
- ``actions``: one process's "container" and the random things it does;
- ``test_soak``: the short soak the test suite runs.
"""
