-- Queue events in commit order (docs/adr/0009-queue-commit-order.md): SQLite has one writer
-- at a time, so `seq` (taken at insert) is already commit order; the poll no longer orders by
-- `create_date`, the writing process's clock.
DROP INDEX sync_queue_pending;
CREATE INDEX sync_queue_pending ON sync_queue (mapping, seq) WHERE state = 'PENDING';
DROP INDEX sync_queue_acquired_resource;
CREATE INDEX sync_queue_acquired_resource ON sync_queue (mapping, resource_id, seq)
    WHERE state = 'ACQUIRED';
