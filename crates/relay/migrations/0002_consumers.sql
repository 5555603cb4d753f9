-- Every app install is a consumer: a named token for test or live mode with its own
-- acknowledgement cursor, instead of anonymous tokens sharing one global mark.
CREATE TABLE consumers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL UNIQUE,
    -- 'any' only for tokens made before modes existed: they keep seeing every event.
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live', 'any')),
    created_at_ms INTEGER NOT NULL,
    last_used_at_ms INTEGER,
    acked_through INTEGER NOT NULL DEFAULT 0
);
-- Tokens of before keep working, named legacy-1, legacy-2..., at the old global mark.
INSERT INTO consumers (name, hash, mode, created_at_ms, acked_through)
    SELECT 'legacy-' || rowid, hash, 'any', created_at_ms,
           COALESCE((SELECT through FROM ack_mark WHERE id = 1), 0)
    FROM tokens ORDER BY rowid;
DROP TABLE tokens;
DROP TABLE ack_mark;

-- Which consumers an event is for: NULL every one (Calendly), 0 test mode, 1 live mode
-- (a Stripe event's `livemode`). `acked_at_ms` now means "acknowledged by every consumer
-- it is for", which starts its retention.
ALTER TABLE events ADD COLUMN livemode INTEGER;
UPDATE events SET livemode = json_extract(body, '$.livemode')
    WHERE provider = 'stripe' AND json_valid(body)
      AND json_type(body, '$.livemode') IN ('true', 'false');
CREATE INDEX events_unacked ON events (seq) WHERE acked_at_ms IS NULL;

-- A handed-over Calendly key belongs to the consumer that sent it: one token's renewals
-- never evict another's key, and revoking a token forgets its keys.
ALTER TABLE calendly_keys ADD COLUMN consumer_id INTEGER;
UPDATE calendly_keys SET consumer_id = (SELECT MIN(id) FROM consumers);

-- The relay's identity: a random id made with the database (filled in by the relay right
-- after this migration), so an app can tell a replaced or reset relay from its own.
CREATE TABLE relay_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    relay_id TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
