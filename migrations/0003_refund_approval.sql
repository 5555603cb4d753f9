-- A refund held while "automatic refunds" was off records when the coach approved it, so
-- the executor runs it instead of holding it again.
ALTER TABLE outbox ADD COLUMN approved_at TEXT;
