-- As SQLite's 0008: the check of the key that event keys are hashed with.
ALTER TABLE relay_identity ADD COLUMN index_check TEXT;
