-- A key whose run failed on the server's side (5xx) is kept as 'retry' instead of being deleted:
-- the client's retry with the same key and request runs again with the same id seed, so it lands on
-- whatever the failed run already created instead of creating it a second time.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_state_check;
ALTER TABLE idempotency_keys
    ADD CONSTRAINT idempotency_keys_state_check CHECK (state IN ('in_flight', 'done', 'retry'));
