-- The Calendly event type's scheduling page, as Calendly listed it when the coach linked
-- it: the relay's "payment time has passed" and "cancelled" pages link to it so a client
-- can book again.
ALTER TABLE event_type_mappings ADD COLUMN scheduling_url TEXT;
