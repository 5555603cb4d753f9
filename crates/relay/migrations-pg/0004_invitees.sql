-- As SQLite's 0005: what verified Calendly deliveries said about each invitee.
CREATE TABLE invitees (
    invitee TEXT PRIMARY KEY,
    booked_at BIGINT,
    canceled_at BIGINT,
    moved_to TEXT,
    updated_at_ms BIGINT NOT NULL
);
