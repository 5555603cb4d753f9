-- The bookings list at scale: every filter's index ends in (start_time, id), the list's
-- order, so a page is read in order without sorting the whole result and a deep page only
-- steps over index entries. The email, name and invitee UUID ride along in the unfiltered
-- and by-state indexes so a search is answered from the index, reading only matching rows.
DROP INDEX IF EXISTS bookings_start;
DROP INDEX IF EXISTS bookings_state_start;
DROP INDEX IF EXISTS bookings_session_type;
CREATE INDEX bookings_list ON bookings(start_time, id, client_email, client_name, invitee_uuid);
CREATE INDEX bookings_state_list ON bookings(state, start_time, id, client_email, client_name);
CREATE INDEX bookings_session_type_list ON bookings(session_type_id, start_time, id);

-- Searching by a payment intent also finds bookings through their refunds.
CREATE INDEX IF NOT EXISTS refunds_payment_intent ON refunds(payment_intent);
