-- As SQLite's 0007: app keys, and events stored only sealed for them.
CREATE TABLE app_keys (
    consumer_id BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    added_at_ms BIGINT NOT NULL,
    PRIMARY KEY (consumer_id, public_key)
);
ALTER TABLE events ADD COLUMN sealed BYTEA;
