-- As SQLite's 0009: each consumer's handed-over Stripe restricted key, encrypted.
CREATE TABLE checkout_keys (
    consumer_id BIGINT PRIMARY KEY,
    sealed_key TEXT NOT NULL,
    added_at_ms BIGINT NOT NULL
);
