-- As SQLite's 0003: the session type's price, payment window and scheduling page; one
-- Checkout Session per Calendly invitee; redirect visits per slug.
ALTER TABLE payment_links ADD COLUMN checkout_name TEXT;
ALTER TABLE payment_links ADD COLUMN amount_minor BIGINT;
ALTER TABLE payment_links ADD COLUMN currency TEXT;
ALTER TABLE payment_links ADD COLUMN payment_window_minutes BIGINT;
ALTER TABLE payment_links ADD COLUMN booking_url TEXT;

CREATE TABLE checkout_sessions (
    invitee TEXT PRIMARY KEY,
    slug TEXT NOT NULL,
    email TEXT,
    expires_at BIGINT NOT NULL,
    session_id TEXT,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE redirect_visits (
    slug TEXT PRIMARY KEY,
    visits BIGINT NOT NULL,
    last_at_ms BIGINT NOT NULL
);
