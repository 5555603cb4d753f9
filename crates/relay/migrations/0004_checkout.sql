-- What the relay needs to make each booking its own Stripe Checkout Session, and the
-- post-booking redirect visits it counts per slug.

-- The session type's price and payment window (NULL: an app of before pushed only the
-- link, so the relay redirects to it), and its Calendly scheduling page.
ALTER TABLE payment_links ADD COLUMN checkout_name TEXT;
ALTER TABLE payment_links ADD COLUMN amount_minor INTEGER;
ALTER TABLE payment_links ADD COLUMN currency TEXT;
ALTER TABLE payment_links ADD COLUMN payment_window_minutes INTEGER;
ALTER TABLE payment_links ADD COLUMN booking_url TEXT;

-- One row per Calendly invitee (a booking): claimed at its first /pay visit with the
-- terms of its session, so concurrent visits send Stripe identical requests under one
-- Idempotency-Key; `session_id` once Stripe made the session.
CREATE TABLE checkout_sessions (
    invitee TEXT PRIMARY KEY,
    slug TEXT NOT NULL,
    email TEXT,
    expires_at INTEGER NOT NULL,
    session_id TEXT,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE redirect_visits (
    slug TEXT PRIMARY KEY,
    visits INTEGER NOT NULL,
    last_at_ms INTEGER NOT NULL
);
