-- Coachdesk's local store. Applied in order at start-up; never edit a released file,
-- add a new numbered one.

CREATE TABLE session_types (
    id                     TEXT PRIMARY KEY,
    slug                   TEXT NOT NULL UNIQUE,
    name                   TEXT NOT NULL,
    duration_minutes       INTEGER NOT NULL CHECK (duration_minutes > 0),
    price_minor            INTEGER NOT NULL CHECK (price_minor > 0),
    currency               TEXT NOT NULL CHECK (length(currency) = 3),
    refund_policy          TEXT NOT NULL,            -- JSON list of tiers
    payment_window_minutes INTEGER NOT NULL DEFAULT 1440,
    archived               INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
    stripe_product_id      TEXT,
    stripe_price_id        TEXT,
    payment_link_url       TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);

-- Which Calendly event type sells which session type.
CREATE TABLE event_type_mappings (
    calendly_event_type_uri TEXT PRIMARY KEY,
    session_type_id         TEXT NOT NULL REFERENCES session_types(id),
    event_type_name         TEXT,
    mapped_at               TEXT NOT NULL
);
CREATE INDEX event_type_mappings_session_type ON event_type_mappings(session_type_id);

-- One row per booking: the aggregate's facts as JSON plus columns to list and search by.
CREATE TABLE bookings (
    id              TEXT PRIMARY KEY,
    invitee_uri     TEXT UNIQUE,
    invitee_uuid    TEXT UNIQUE,
    state           TEXT NOT NULL,
    attention       TEXT,                            -- first reason's sentence, NULL if none
    attention_codes TEXT NOT NULL DEFAULT '',        -- space-separated codes
    session_type_id TEXT REFERENCES session_types(id),
    client_name     TEXT,
    client_email    TEXT,
    start_time      TEXT,
    currency        TEXT,
    paid_minor      INTEGER NOT NULL DEFAULT 0,
    refunded_minor  INTEGER NOT NULL DEFAULT 0,
    facts           TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX bookings_start ON bookings(start_time);
CREATE INDEX bookings_state_start ON bookings(state, start_time);
CREATE INDEX bookings_email ON bookings(client_email COLLATE NOCASE);
CREATE INDEX bookings_session_type ON bookings(session_type_id, start_time);

-- Payments by Checkout Session; a reschedule copies the row to the new booking (carried = 1).
CREATE TABLE payments (
    booking_id       TEXT NOT NULL REFERENCES bookings(id),
    checkout_session TEXT NOT NULL,
    payment_intent   TEXT,
    amount_minor     INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    status           TEXT NOT NULL,
    carried          INTEGER NOT NULL DEFAULT 0,
    at               TEXT NOT NULL,
    PRIMARY KEY (booking_id, checkout_session)
);
CREATE INDEX payments_intent ON payments(payment_intent);
CREATE INDEX payments_session ON payments(checkout_session);

CREATE TABLE refunds (
    booking_id     TEXT NOT NULL REFERENCES bookings(id),
    refund_key     TEXT NOT NULL,                    -- our cause, or Stripe's id for outside refunds
    refund_id      TEXT,
    payment_intent TEXT,
    amount_minor   INTEGER NOT NULL,
    currency       TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     TEXT NOT NULL,                    -- when this app first knew of it
    PRIMARY KEY (booking_id, refund_key)
);
CREATE INDEX refunds_refund_id ON refunds(refund_id);

-- Every raw event in: provider webhooks, reconciliation reads, coach actions, timers and
-- effect outcomes. The UNIQUE key makes a second delivery a no-op.
CREATE TABLE inbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    provider     TEXT NOT NULL,                      -- stripe, calendly, coach, internal
    provider_key TEXT NOT NULL,
    kind         TEXT NOT NULL,
    body         TEXT NOT NULL,
    source       TEXT NOT NULL,                      -- relay, reconcile, replay, app
    status       TEXT NOT NULL,                      -- applied, ignored, parked, failed
    booking_id   TEXT REFERENCES bookings(id) DEFERRABLE INITIALLY DEFERRED,
    error        TEXT,
    received_at  TEXT NOT NULL,
    applied_at   TEXT,
    UNIQUE (provider, provider_key)
);
CREATE INDEX inbox_parked ON inbox(id) WHERE status = 'parked';
CREATE INDEX inbox_booking ON inbox(booking_id);

-- Append-only: every transition with its cause.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    booking_id TEXT NOT NULL REFERENCES bookings(id),
    inbox_id   INTEGER REFERENCES inbox(id),
    at         TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    cause      TEXT NOT NULL,
    event_kind TEXT NOT NULL,
    summary    TEXT NOT NULL
);
CREATE INDEX audit_log_booking ON audit_log(booking_id, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Effects to run, written in the same transaction as the transition that asked for them.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    booking_id      TEXT NOT NULL REFERENCES bookings(id),
    effect_key      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,                   -- also Stripe's Idempotency-Key (unique: it is booking + effect key)
    status          TEXT NOT NULL DEFAULT 'pending', -- pending, done, failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_at          TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    done_at         TEXT,
    UNIQUE (booking_id, effect_key)
);
CREATE INDEX outbox_due ON outbox(due_at) WHERE status = 'pending';

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
