-- Accounts, sessions, one-time e-mail codes, meetings, participants, audit log.
-- Times are UTC milliseconds since the Unix epoch; flags are 0/1.

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    username          TEXT NOT NULL UNIQUE,
    email             TEXT NOT NULL,
    email_key         TEXT NOT NULL UNIQUE,   -- lowercased: uniqueness is case-insensitive
    password_hash     TEXT NOT NULL,          -- argon2id PHC string
    email_verified_at INTEGER,
    created_at        INTEGER NOT NULL
);

-- A session is a family of refresh tokens descending from one sign-in.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    revoke_reason TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,              -- SHA-256 of the opaque token
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

CREATE TABLE email_codes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify', 'reset')),
    code_hash  TEXT NOT NULL,                 -- HMAC-SHA-256 with the server's code secret
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    used_at    INTEGER
);
CREATE INDEX email_codes_user ON email_codes(user_id, purpose, created_at);

CREATE TABLE meetings (
    id            TEXT PRIMARY KEY,
    code          TEXT NOT NULL UNIQUE,
    title         TEXT NOT NULL,
    host_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    passcode_hash TEXT,
    waiting_room  INTEGER NOT NULL DEFAULT 0,
    locked        INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    ended_at      INTEGER
);

CREATE TABLE participants (
    meeting_id      TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('host', 'cohost', 'participant')),
    status          TEXT NOT NULL CHECK (status IN ('invited', 'waiting', 'joined', 'left', 'denied')),
    created_at      INTEGER NOT NULL,
    first_joined_at INTEGER,
    joined_at       INTEGER,
    left_at         INTEGER,
    PRIMARY KEY (meeting_id, user_id)
);
CREATE INDEX participants_user ON participants(user_id);

CREATE TABLE audit_log (
    id       TEXT PRIMARY KEY,
    at       INTEGER NOT NULL,
    actor_id TEXT,
    action   TEXT NOT NULL,
    target   TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);
