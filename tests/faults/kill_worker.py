"""A worker container that dies between its commit and the acknowledgement.

``python -m tests.faults.kill_worker URL RECORD_JSON`` delivers one SQS record to
the real ``customers.create_customers``; the notify hook, which runs right after
the create-customer statement committed, ends the process with ``os._exit``, so
Lambda would never return the batch response and SQS would deliver the record again.
"""

import json
import os
import sys

from chalicelib.customers import service as customers
from chalicelib.platform.database import Database

KILLED = 137


def main(url: str, record: dict[str, object]) -> None:
    database = Database(url=lambda: url)
    customers.create_customers(database, [record], notify=lambda outbox_ids: os._exit(KILLED))
    sys.exit("the notify hook was not called: nothing was committed")


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
