-- Cheaper audit inserts and queue statistics (issue 20: the queue's drain rate).
--
-- `audit.seq` was `AUTOINCREMENT`, which makes every INSERT statement also update the
-- `sqlite_sequence` row of the table — one more B-tree write per audit entry, and a queued
-- event or a sync writes one entry each. Nothing reads `seq` (entries are found by kind and
-- time, or by kind and id), so the table is rebuilt with a plain rowid.
CREATE TABLE audit_v2 (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    timestamp  INTEGER NOT NULL,
    recon_id   TEXT,
    mapping    TEXT,
    entry_type TEXT,
    entry      TEXT NOT NULL
);
INSERT INTO audit_v2 (seq, id, kind, timestamp, recon_id, mapping, entry_type, entry)
    SELECT seq, id, kind, timestamp, recon_id, mapping, entry_type, entry FROM audit;
DROP TABLE audit;
ALTER TABLE audit_v2 RENAME TO audit;
CREATE INDEX audit_kind_time ON audit (kind, timestamp);
CREATE INDEX audit_id ON audit (kind, id);

-- The queue statistics (depth and oldest event per mapping, read once a second by every
-- consumer and by `GET sync/queue`) took MIN(create_date) from the rows themselves: a read of
-- every queued row, 60–90 ms with 50,000 events waiting. With create_date (and state, without
-- which SQLite does not take a partial index as covering) in the partial indexes they are
-- answered from the indexes alone.
DROP INDEX sync_queue_pending;
CREATE INDEX sync_queue_pending ON sync_queue (mapping, seq, create_date, state) WHERE state = 'PENDING';
DROP INDEX sync_queue_acquired_resource;
CREATE INDEX sync_queue_acquired_resource ON sync_queue (mapping, resource_id, seq, create_date, state)
    WHERE state = 'ACQUIRED';

-- Every event is written into and deleted from each index it is in while ACQUIRED; the
-- (node_id) index served only the return of a node's events to PENDING (at a stop, or when the
-- node is found down), which now walks the ACQUIRED index above — the events in flight, at
-- most `maxQueueSize` per node and mapping.
DROP INDEX sync_queue_acquired_node;
