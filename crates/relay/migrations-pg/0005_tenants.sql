-- As SQLite's 0006: tenants. Tenant 0 is the relay's own coach; every row a coach owns
-- names its tenant, and what was unique per relay is unique per tenant.
CREATE TABLE tenants (
    id BIGSERIAL PRIMARY KEY CHECK (id > 0),
    name TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL
);

ALTER TABLE events ADD COLUMN tenant BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events DROP CONSTRAINT events_provider_key_key;
ALTER TABLE events ADD UNIQUE (tenant, provider, key);
CREATE INDEX events_tenant ON events (tenant, seq);

ALTER TABLE consumers ADD COLUMN tenant BIGINT NOT NULL DEFAULT 0;
ALTER TABLE consumers DROP CONSTRAINT consumers_name_key;
ALTER TABLE consumers ADD UNIQUE (tenant, name);

ALTER TABLE payment_links ADD COLUMN tenant BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payment_links DROP CONSTRAINT payment_links_pkey;
ALTER TABLE payment_links ADD PRIMARY KEY (tenant, slug);

ALTER TABLE checkout_sessions ADD COLUMN tenant BIGINT NOT NULL DEFAULT 0;
ALTER TABLE checkout_sessions DROP CONSTRAINT checkout_sessions_pkey;
ALTER TABLE checkout_sessions ADD PRIMARY KEY (tenant, invitee);

ALTER TABLE redirect_visits ADD COLUMN tenant BIGINT NOT NULL DEFAULT 0;
ALTER TABLE redirect_visits DROP CONSTRAINT redirect_visits_pkey;
ALTER TABLE redirect_visits ADD PRIMARY KEY (tenant, slug);

ALTER TABLE invitees ADD COLUMN tenant BIGINT NOT NULL DEFAULT 0;
ALTER TABLE invitees DROP CONSTRAINT invitees_pkey;
ALTER TABLE invitees ADD PRIMARY KEY (tenant, invitee);
