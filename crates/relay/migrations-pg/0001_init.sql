-- The relay's schema on PostgreSQL, as SQLite's migrations 0001 and 0002 leave it: the
-- webhook queue, the consumers with their cursors, the payment link table, handed-over
-- Calendly keys and the relay's identity. Applied by the relay in one transaction.

-- Sequence numbers come from their own sequence, never reset by a purge. Writers hold an
-- advisory lock while they insert, so numbers are committed in the order they are taken
-- even with several relay processes: a cursor never skips an event committed late.
CREATE SEQUENCE event_seq AS BIGINT;
CREATE TABLE events (
    seq BIGINT PRIMARY KEY DEFAULT nextval('event_seq'),
    provider TEXT NOT NULL,
    key TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    body TEXT NOT NULL,
    -- Acknowledged by every consumer the event is for: starts its retention.
    acked_at_ms BIGINT,
    -- Which consumers it is for: NULL every one (Calendly), false test, true live.
    livemode BOOLEAN,
    UNIQUE (provider, key)
);
ALTER SEQUENCE event_seq OWNED BY events.seq;
CREATE INDEX events_unacked ON events (seq) WHERE acked_at_ms IS NULL;
CREATE INDEX events_acked_at ON events (acked_at_ms) WHERE acked_at_ms IS NOT NULL;
CREATE INDEX events_received_at ON events (received_at_ms);

CREATE TABLE consumers (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live', 'any')),
    created_at_ms BIGINT NOT NULL,
    last_used_at_ms BIGINT,
    acked_through BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE payment_links (
    slug TEXT PRIMARY KEY,
    url TEXT NOT NULL
);

-- `ord` breaks ties between keys added in the same millisecond (SQLite's rowid).
CREATE TABLE calendly_keys (
    key TEXT PRIMARY KEY,
    added_at_ms BIGINT NOT NULL,
    consumer_id BIGINT,
    ord BIGSERIAL NOT NULL
);

CREATE TABLE relay_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    relay_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
