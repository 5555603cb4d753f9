-- Events are deduplicated by a keyed hash of their provider key (see `index.rs`), not the
-- key itself. `index_check` identifies the key the stored hashes were made with, so a
-- relay started with another key refuses to run instead of storing every retry twice.
-- Events stored before are re-keyed by the relay, in the transaction that fills it in.
ALTER TABLE relay_identity ADD COLUMN index_check TEXT;
