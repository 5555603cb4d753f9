-- Client data sealed for each coach's apps. An app install registers its public keys
-- (`PUT /v1/app-keys`); from then on every event of its tenant is stored only sealed for
-- the keys of all the tenant's apps (`sealed`, with an empty `body`). Revoking a token
-- forgets its keys.
CREATE TABLE app_keys (
    consumer_id INTEGER NOT NULL,
    public_key TEXT NOT NULL,
    added_at_ms INTEGER NOT NULL,
    PRIMARY KEY (consumer_id, public_key)
);
ALTER TABLE events ADD COLUMN sealed BLOB;
