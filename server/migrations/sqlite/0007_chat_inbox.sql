-- Where a chat commit lands first on SQLite: an append-only table with no index of its own.
-- A commit into `messages` wrote a leaf of each of its two per-meeting indexes for every
-- message (a batch from 50 meetings: 100 pages to the WAL and the fsync); a commit here writes
-- the table's last page or two, whatever the batch. The chat writer moves the rows into
-- `messages` every few seconds in one transaction, where a meeting's index leaf is written
-- once for all its messages since the last move. Readers see both tables (issue 18).
CREATE TABLE chat_inbox (
    id            TEXT NOT NULL,
    meeting_id    TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    sender_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sender_name   TEXT NOT NULL,
    body          TEXT NOT NULL,
    client_msg_id TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
