-- Chat history keyed by SQLite's rowid instead of its text id: the id's own index was never
-- read, and each message wrote a page of it in a random place (ULIDs from many meetings);
-- rows now append to the end of the table, one page for a whole batch. A message is written
-- to three B-trees instead of four (the signaling benchmark's commits, issue 18). The id
-- stays in each row and is still unique: a ULID is drawn per message.
CREATE TABLE messages_by_rowid (
    id            TEXT NOT NULL,
    meeting_id    TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    sender_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sender_name   TEXT NOT NULL,
    body          TEXT NOT NULL,
    client_msg_id TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (meeting_id, seq),
    UNIQUE (meeting_id, sender_id, client_msg_id)
);
INSERT INTO messages_by_rowid (id, meeting_id, seq, sender_id, sender_name, body, client_msg_id, created_at)
    SELECT id, meeting_id, seq, sender_id, sender_name, body, client_msg_id, created_at
    FROM messages ORDER BY meeting_id, seq;
DROP TABLE messages;
ALTER TABLE messages_by_rowid RENAME TO messages;
