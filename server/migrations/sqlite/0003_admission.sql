-- Admission is a fact stored once per user and meeting: set when a host admits the user or
-- they enter a meeting without a waiting room. It is the only thing that lets anyone past the
-- waiting room, the lock and the passcode again; leaving or dropping while waiting never sets
-- it. A bar (denied at the waiting room, removed from the call) is stored apart from the
-- status, so a later 'left' cannot undo it; it holds until a host re-admits the user.
ALTER TABLE participants ADD COLUMN admitted_at INTEGER;
ALTER TABLE participants ADD COLUMN barred_at INTEGER;
ALTER TABLE participants ADD COLUMN barred_reason TEXT;
UPDATE participants SET admitted_at = first_joined_at WHERE first_joined_at IS NOT NULL;
UPDATE participants SET barred_at = created_at, barred_reason = 'removed' WHERE status = 'denied';
