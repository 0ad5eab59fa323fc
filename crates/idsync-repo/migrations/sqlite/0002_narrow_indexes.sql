-- Every index is paid on each write of its table, and a queued event is written three times
-- (queued, acquired, deleted). The queue's indexes now hold only the rows their queries look
-- for: the poll reads PENDING events of a mapping in commit order; the per-object order check
-- and crash recovery read ACQUIRED events (by object, by node). An event is in one of them at a
-- time, so each write touches fewer B-trees. The queue statistics read both partial indexes.
DROP INDEX sync_queue_poll;
CREATE INDEX sync_queue_pending ON sync_queue (mapping, create_date, seq) WHERE state = 'PENDING';
DROP INDEX sync_queue_node;
CREATE INDEX sync_queue_acquired_node ON sync_queue (node_id) WHERE state = 'ACQUIRED';
DROP INDEX sync_queue_resource;
-- (create_date, seq) make it cover the order check and the queue statistics.
CREATE INDEX sync_queue_acquired_resource ON sync_queue (mapping, resource_id, create_date, seq)
    WHERE state = 'ACQUIRED';
-- Audit queries filter the JSON entry (and `_id` by the id column); no query reads by recon_id,
-- and recon writes one entry per object.
DROP INDEX audit_recon;
-- Links: each unique index leads with the side it is looked up by — (type, first_id,
-- qualifier) keeps the uniqueness of (type, qualifier, first_id) and also serves the batch
-- lookup by first id over every qualifier, which needed an index of its own before.
DROP INDEX links_first;
DROP INDEX links_type_first;
CREATE UNIQUE INDEX links_by_first_side ON links (link_type, first_id, link_qualifier);
DROP INDEX links_second;
DROP INDEX links_type_second;
CREATE UNIQUE INDEX links_by_second_side ON links (link_type, second_id, link_qualifier);
