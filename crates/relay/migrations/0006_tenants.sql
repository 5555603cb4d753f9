-- Tenants: a relay may serve many coaches. Tenant 0 is the relay's own coach (the
-- unprefixed paths); the others are made by `coachdesk-relay tenant create` and reached
-- under /t/{name}/. Every row a coach owns names its tenant, and what was unique per relay
-- (a provider key, a token name, a slug, an invitee) is now unique per tenant. SQLite
-- cannot change a table's constraints, so those tables are rebuilt with their rows.
CREATE TABLE tenants (
    id INTEGER PRIMARY KEY AUTOINCREMENT CHECK (id > 0),
    name TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL
);

-- The events keep their sequence numbers, and the sequence its high-water mark (never
-- reused after a purge).
CREATE TEMP TABLE kept_seq AS SELECT name, seq FROM sqlite_sequence WHERE name IN ('events', 'consumers');
CREATE TABLE events_new (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant INTEGER NOT NULL DEFAULT 0,
    provider TEXT NOT NULL,
    key TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    acked_at_ms INTEGER,
    livemode INTEGER,
    UNIQUE (tenant, provider, key)
);
INSERT INTO events_new (seq, provider, key, received_at_ms, body, acked_at_ms, livemode)
    SELECT seq, provider, key, received_at_ms, body, acked_at_ms, livemode FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_unacked ON events (seq) WHERE acked_at_ms IS NULL;
CREATE INDEX events_tenant ON events (tenant, seq);

CREATE TABLE consumers_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant INTEGER NOT NULL DEFAULT 0,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live', 'any')),
    created_at_ms INTEGER NOT NULL,
    last_used_at_ms INTEGER,
    acked_through INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant, name)
);
INSERT INTO consumers_new (id, name, hash, mode, created_at_ms, last_used_at_ms, acked_through)
    SELECT id, name, hash, mode, created_at_ms, last_used_at_ms, acked_through FROM consumers;
DROP TABLE consumers;
ALTER TABLE consumers_new RENAME TO consumers;

-- sqlite_sequence has no key: update the renamed tables' rows, add those that are missing.
UPDATE sqlite_sequence
    SET seq = MAX(seq, (SELECT k.seq FROM kept_seq k WHERE k.name = sqlite_sequence.name))
    WHERE name IN (SELECT name FROM kept_seq);
INSERT INTO sqlite_sequence (name, seq)
    SELECT k.name, k.seq FROM kept_seq k
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence s WHERE s.name = k.name);
DROP TABLE kept_seq;

CREATE TABLE payment_links_new (
    tenant INTEGER NOT NULL DEFAULT 0,
    slug TEXT NOT NULL,
    url TEXT NOT NULL,
    checkout_name TEXT,
    amount_minor INTEGER,
    currency TEXT,
    payment_window_minutes INTEGER,
    booking_url TEXT,
    PRIMARY KEY (tenant, slug)
);
INSERT INTO payment_links_new (slug, url, checkout_name, amount_minor, currency,
                               payment_window_minutes, booking_url)
    SELECT slug, url, checkout_name, amount_minor, currency, payment_window_minutes, booking_url
    FROM payment_links;
DROP TABLE payment_links;
ALTER TABLE payment_links_new RENAME TO payment_links;

CREATE TABLE checkout_sessions_new (
    tenant INTEGER NOT NULL DEFAULT 0,
    invitee TEXT NOT NULL,
    slug TEXT NOT NULL,
    email TEXT,
    expires_at INTEGER NOT NULL,
    session_id TEXT,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, invitee)
);
INSERT INTO checkout_sessions_new (invitee, slug, email, expires_at, session_id, created_at_ms)
    SELECT invitee, slug, email, expires_at, session_id, created_at_ms FROM checkout_sessions;
DROP TABLE checkout_sessions;
ALTER TABLE checkout_sessions_new RENAME TO checkout_sessions;

CREATE TABLE redirect_visits_new (
    tenant INTEGER NOT NULL DEFAULT 0,
    slug TEXT NOT NULL,
    visits INTEGER NOT NULL,
    last_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, slug)
);
INSERT INTO redirect_visits_new (slug, visits, last_at_ms)
    SELECT slug, visits, last_at_ms FROM redirect_visits;
DROP TABLE redirect_visits;
ALTER TABLE redirect_visits_new RENAME TO redirect_visits;

CREATE TABLE invitees_new (
    tenant INTEGER NOT NULL DEFAULT 0,
    invitee TEXT NOT NULL,
    booked_at INTEGER,
    canceled_at INTEGER,
    moved_to TEXT,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, invitee)
);
INSERT INTO invitees_new (invitee, booked_at, canceled_at, moved_to, updated_at_ms)
    SELECT invitee, booked_at, canceled_at, moved_to, updated_at_ms FROM invitees;
DROP TABLE invitees;
ALTER TABLE invitees_new RENAME TO invitees;
