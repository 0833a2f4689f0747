-- Guests: people who join one meeting from an invite link without an account. A guest is a
-- user row of its own (so participants, chat history, bars and sessions work as for
-- everyone), marked with the one meeting it may enter; it has no password (it cannot sign
-- in), no e-mail address, and its tokens are refused everywhere but that meeting's room.
ALTER TABLE users ADD COLUMN guest_of TEXT REFERENCES meetings(id) ON DELETE CASCADE;
-- Off by default: a host lets guests in per meeting.
ALTER TABLE meetings ADD COLUMN allow_guests BIGINT NOT NULL DEFAULT 0;
-- Per-person guest links: a revocable token (stored hashed) the host hands to one person.
CREATE TABLE guest_links (
    id         TEXT PRIMARY KEY,
    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    label      TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX guest_links_meeting ON guest_links(meeting_id);
-- Which link a guest came in by: revoking the link ends their sessions.
ALTER TABLE users ADD COLUMN guest_link_id TEXT REFERENCES guest_links(id) ON DELETE SET NULL;
