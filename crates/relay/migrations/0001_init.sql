-- The relay's schema before migrations were numbered: the webhook queue with one global
-- acknowledgement mark, token hashes, the payment link table and handed-over Calendly keys.
-- A database made by a relay of that time has exactly these tables at user_version 0; it
-- is taken as version 1 without running this file again.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    key TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    acked_at_ms INTEGER,
    UNIQUE (provider, key)
);
CREATE TABLE ack_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    through INTEGER NOT NULL
);
INSERT INTO ack_mark (id, through) VALUES (1, 0);
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE payment_links (
    slug TEXT PRIMARY KEY,
    url TEXT NOT NULL
);
CREATE TABLE calendly_keys (
    key TEXT PRIMARY KEY,
    added_at_ms INTEGER NOT NULL
);
