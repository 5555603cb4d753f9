-- Signing secrets of the Stripe webhook endpoints an app made through Stripe's API and
-- handed over (`PUT /v1/stripe-signing-secrets`), verified beside the configured
-- `stripe_secrets`. Each consumer's set is replaced whole: two during a rotation (the new
-- endpoint's and the retiring one's), one otherwise. Revoking a token forgets them.
CREATE TABLE stripe_secrets (
    consumer_id BIGINT NOT NULL,
    secret TEXT NOT NULL,
    added_at_ms BIGINT NOT NULL,
    PRIMARY KEY (consumer_id, secret)
);
