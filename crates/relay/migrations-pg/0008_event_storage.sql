-- A sealed body is random bytes: compressing it is wasted work, so it is stored as it is.
-- And a webhook of a few KiB stays in its row (up to the page's limit) rather than moving
-- to the TOAST table, which would cost a second insert and index entry per event.
ALTER TABLE events ALTER COLUMN sealed SET STORAGE EXTERNAL;
ALTER TABLE events SET (toast_tuple_target = 8160);
