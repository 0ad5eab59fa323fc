-- Audit queries go through the jsonb translator (`entry ->> …`, see postgres/audit.rs), and a
-- reconId filter uses audit_by_recon_ci; retention deletes by (kind, timestamp_ns). Nothing
-- reads the plain recon_id and mapping columns through an index. Both indexes cost a B-tree
-- insert per audit entry — one entry per reconciled object — on a key that is the same for a
-- whole run, so every concurrent page commit of a run inserts into the same last leaf page.
-- (The SQLite schema dropped its recon_id index for the same reason, sqlite/0002.)
DROP INDEX IF EXISTS audit_by_recon;
DROP INDEX IF EXISTS audit_by_mapping;
