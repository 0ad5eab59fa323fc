-- Queue events in commit order (docs/adr/0009-queue-commit-order.md). `seq` used to be taken
-- when a row was inserted and the poll ordered by `create_date_ns`, the writing node's clock
-- read before its commit: two transactions that commit in the opposite order of their inserts,
-- or nodes whose clocks disagree, had their events run out of order. Now each event takes its
-- `seq` when its transaction commits: a deferred trigger runs at COMMIT, takes a
-- transaction-scoped advisory lock (held until the commit has ended, so the next committer
-- numbers its events only after this one's are visible) and renumbers the transaction's
-- events from the same identity sequence. `seq` order is then commit order, and an event never
-- becomes visible behind one that a consumer may already have taken.
CREATE FUNCTION syncqueue_commit_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The key: "idsynq" in ASCII (the other advisory keys are "idsync" and "idsynd").
    PERFORM pg_advisory_xact_lock(115880154984049);
    UPDATE syncqueue SET seq = DEFAULT WHERE id = NEW.id;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER syncqueue_commit_seq AFTER INSERT ON syncqueue
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION syncqueue_commit_seq();
-- The poll reads PENDING events of a mapping by `seq` alone.
DROP INDEX syncqueue_pending;
CREATE INDEX syncqueue_pending ON syncqueue (mapping, seq) WHERE state = 'PENDING';
