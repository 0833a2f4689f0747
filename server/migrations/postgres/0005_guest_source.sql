-- Where a guest came in from, as a keyed hash of the address bucket (never the address):
-- a guest a host removed or turned away cannot come back through the open link as a "new"
-- guest from the same address while the meeting lasts.
ALTER TABLE users ADD COLUMN guest_source TEXT;
