-- The id of the API request whose change wrote the row (the SQS message's
-- correlation_id attribute, for a customer), so that the sender's log line for the
-- message names the request that started it.  NULL for rows written before.
ALTER TABLE notification_outbox ADD COLUMN correlation_id text;
