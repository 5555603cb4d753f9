-- Stripe set-up of a session type: which version of its name and price the Stripe
-- product, price and payment link were made for. `version` grows when the name, price or
-- currency changes (Stripe prices cannot change, so a new set-up is needed); the
-- Idempotency-Keys of the set-up are derived from id + version.
ALTER TABLE session_types ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE session_types ADD COLUMN stripe_version INTEGER;
ALTER TABLE session_types ADD COLUMN stripe_payment_link_id TEXT;
