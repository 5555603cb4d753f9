-- The dashboard at scale: alerts count the period's webhooks and payments by time, and the
-- needs-attention list reads only flagged bookings, soonest session first.
CREATE INDEX IF NOT EXISTS inbox_received ON inbox(received_at, provider, status);
CREATE INDEX IF NOT EXISTS payments_at ON payments(at, status, carried);
CREATE INDEX IF NOT EXISTS bookings_attention ON bookings(start_time) WHERE attention IS NOT NULL;
