-- A coach's Stripe restricted key (Checkout Sessions: Write), handed over by an app
-- (`PUT /v1/stripe-checkout-key`) so that `/pay` makes each booking its own Checkout
-- Session for a coach without access to the relay's configuration (a hosted relay's
-- tenants). One per consumer; the newest of a tenant's is used. Stored encrypted under a
-- key derived from the index key (see `at_rest.rs`). Revoking a token forgets it.
CREATE TABLE checkout_keys (
    consumer_id INTEGER PRIMARY KEY,
    sealed_key TEXT NOT NULL,
    added_at_ms INTEGER NOT NULL
);
