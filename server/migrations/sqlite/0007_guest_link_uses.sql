-- Personal guest links count the people who entered with them (the host sees it), and may be
-- made single-use. An index for finding a meeting's guests by source, for the per-source cap
-- and for signing them all out when one of them is removed.
ALTER TABLE guest_links ADD COLUMN single_use INTEGER NOT NULL DEFAULT 0;
ALTER TABLE guest_links ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;
CREATE INDEX users_guest_source ON users(guest_of, guest_source) WHERE guest_of IS NOT NULL;
