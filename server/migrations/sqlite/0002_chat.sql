-- Chat history: stored before it is broadcast; seq is gap-free per meeting.
CREATE TABLE messages (
    id            TEXT PRIMARY KEY,
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
