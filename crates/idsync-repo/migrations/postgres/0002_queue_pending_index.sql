-- The queue poll scans PENDING events of one mapping in commit order. Every acquire and every
-- delete leaves a dead entry in an index that covers all states (state is a key, so updates are
-- never HOT); a partial index over PENDING rows only stays small and keeps the poll short even
-- when vacuum lags behind (autovacuum may be off on a server).
CREATE INDEX syncqueue_pending ON syncqueue (mapping, create_date_ns, seq) WHERE state = 'PENDING';
ALTER TABLE syncqueue SET (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0.0, autovacuum_vacuum_insert_threshold = 5000);
