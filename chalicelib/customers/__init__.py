"""Create Customer: the API queues the request, the SQS worker creates the customer exactly once.

- ``messages``: the queue message (``CreateCustomer``, pinned);
- ``service``: ``request_customer`` (the API) and ``create_customers`` (the worker);
- ``repository``: the SQL (one statement per record).

May import: ``chalicelib.platform`` and the shared vocabulary.  Not another feature
(the worker is given a ``notify`` callable), not ``chalicelib.web``.
"""
