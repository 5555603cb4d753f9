-- What verified Calendly deliveries said about each invitee (a booking), for /pay: when
-- it was booked (its payment deadline counts from then), and whether it was cancelled or
-- moved to a new invitee by a reschedule (then it is no longer sold).
CREATE TABLE invitees (
    invitee TEXT PRIMARY KEY,
    booked_at INTEGER,
    canceled_at INTEGER,
    moved_to TEXT,
    updated_at_ms INTEGER NOT NULL
);
