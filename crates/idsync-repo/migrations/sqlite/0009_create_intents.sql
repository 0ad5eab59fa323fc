-- The sources a reconciliation page meant to create an external target for, committed under
-- the page's fence before the writes go out (ADR 0012). A re-run of the page after its node
-- died adopts the target such a create left, instead of failing or creating a second one.
-- Deleted with the run's target-id registry when the run finishes.
CREATE TABLE create_intents (
    job_id    TEXT NOT NULL,
    source_id TEXT NOT NULL,
    run_id    TEXT NOT NULL,
    PRIMARY KEY (job_id, source_id)
) WITHOUT ROWID;
CREATE INDEX create_intents_by_run ON create_intents (run_id);
