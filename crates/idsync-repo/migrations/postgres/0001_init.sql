-- idsync repository schema for PostgreSQL (cluster mode).
--
-- Conventions:
-- * Ids and names are `text COLLATE "C"`: byte order, the same order as SQLite's BINARY, and
--   cheap comparisons on the hot unique indexes.
-- * Times are `bigint` nanoseconds since the Unix epoch (UTC), written by the nodes' clocks, so
--   that chrono values round-trip exactly and lease arithmetic is plain integer arithmetic.
-- * Revisions are `bigint` counters starting at 1; the API shows them as strings ("1", "2").
-- * `seq` columns (identity) give the commit order where the API promises one.

-- Managed objects: one table for every type. Per-type expression indexes created by
-- `ensure_indexes` are partial (`WHERE object_type = '<type>'`), so they stay as small as a
-- per-type table's would, and a new managed type needs no DDL at write time.
CREATE TABLE objects (
    object_type text COLLATE "C" NOT NULL,
    id          text COLLATE "C" NOT NULL,
    rev         bigint NOT NULL,
    obj         jsonb  NOT NULL,
    PRIMARY KEY (object_type, id)
);

-- Links (docs/configuration.md#mappings): each object is in at most one link per type and qualifier, per side.
CREATE TABLE links (
    id             text COLLATE "C" PRIMARY KEY,
    rev            bigint NOT NULL,
    link_type      text COLLATE "C" NOT NULL,
    link_qualifier text COLLATE "C" NOT NULL,
    first_id       text COLLATE "C" NOT NULL,
    second_id      text COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX links_by_first  ON links (link_type, link_qualifier, first_id);
CREATE UNIQUE INDEX links_by_second ON links (link_type, link_qualifier, second_id);
-- Prefetch reads a mapping's links in id order, in keyset batches.
CREATE INDEX links_by_type_id ON links (link_type, id);

-- Reconciliation runs. One ACTIVE run per mapping, enforced here so that it holds cluster-wide.
CREATE TABLE runs (
    id               text COLLATE "C" PRIMARY KEY,
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    mapping          text COLLATE "C" NOT NULL,
    is_analyze       boolean NOT NULL,
    state            text COLLATE "C" NOT NULL,
    stage            text COLLATE "C" NOT NULL,
    started_ns       bigint,
    ended_ns         bigint,
    cancel_requested boolean NOT NULL DEFAULT false,
    message          text,
    parameters       jsonb NOT NULL,
    summary          jsonb NOT NULL,
    totals           jsonb NOT NULL,
    node_id          text COLLATE "C"
);
CREATE UNIQUE INDEX runs_one_active_per_mapping ON runs (mapping) WHERE state = 'ACTIVE';
CREATE INDEX runs_by_mapping ON runs (mapping, seq);

-- Page statistics are deltas: upserts add to `value`, never overwrite.
CREATE TABLE run_counters (
    run_id  text COLLATE "C" NOT NULL,
    node_id text COLLATE "C" NOT NULL,
    key     text COLLATE "C" NOT NULL,
    value   bigint NOT NULL,
    PRIMARY KEY (run_id, node_id, key)
);

-- Dry-run plan entries (docs/rest.md); `entry` is the REST form, filtered with the jsonb
-- translator.
CREATE TABLE plan_entries (
    run_id text COLLATE "C" NOT NULL,
    id     text COLLATE "C" NOT NULL,
    seq    bigint GENERATED ALWAYS AS IDENTITY,
    entry  jsonb NOT NULL,
    PRIMARY KEY (run_id, id)
);

-- Clustered recon target-id registry (docs/operations.md#running-a-cluster): target ids claimed by source pages.
CREATE TABLE target_ids (
    run_id    text COLLATE "C" NOT NULL,
    target_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, target_id)
);

-- Jobs with leases and fencing tokens. `token` increases on every claim.
CREATE TABLE jobs (
    id             text COLLATE "C" PRIMARY KEY,
    seq            bigint GENERATED ALWAYS AS IDENTITY,
    kind           text COLLATE "C" NOT NULL,
    run_id         text COLLATE "C",
    payload        jsonb NOT NULL,
    state          text COLLATE "C" NOT NULL,
    owner_node     text COLLATE "C",
    lease_until_ns bigint,
    token          bigint NOT NULL DEFAULT 0,
    not_before_ns  bigint,
    created_ns     bigint NOT NULL
);
CREATE INDEX jobs_claimable ON jobs (kind, seq) WHERE state <> 'DONE';
CREATE INDEX jobs_by_run ON jobs (run_id);
CREATE INDEX jobs_by_owner ON jobs (owner_node) WHERE owner_node IS NOT NULL;

-- Cluster membership.
CREATE TABLE nodes (
    node_id           text COLLATE "C" PRIMARY KEY,
    state             text COLLATE "C" NOT NULL,
    startup_ns        bigint,
    shutdown_ns       bigint,
    last_heartbeat_ns bigint NOT NULL
);

-- Named locks (queued-sync mapping locks, docs/operations.md#queued-sync-and-dead-letters).
CREATE TABLE locks (
    name        text COLLATE "C" PRIMARY KEY,
    node_id     text COLLATE "C" NOT NULL,
    token       bigint NOT NULL,
    acquired_ns bigint NOT NULL
);
CREATE INDEX locks_by_node ON locks (node_id);
CREATE SEQUENCE lock_tokens;

-- Queued sync events, persisted with the write that caused them.
CREATE TABLE syncqueue (
    id                  text COLLATE "C" PRIMARY KEY,
    seq                 bigint GENERATED ALWAYS AS IDENTITY,
    rev                 bigint NOT NULL,
    mapping             text COLLATE "C" NOT NULL,
    resource_id         text COLLATE "C" NOT NULL,
    resource_collection text COLLATE "C" NOT NULL,
    sync_action         text COLLATE "C" NOT NULL,
    state               text COLLATE "C" NOT NULL,
    node_id             text COLLATE "C",
    remaining_retries   bigint NOT NULL,
    create_date_ns      bigint NOT NULL,
    object_rev          text,
    old_object          jsonb,
    new_object          jsonb,
    context             jsonb
);
CREATE INDEX syncqueue_by_mapping_state ON syncqueue (mapping, state, create_date_ns, seq);
CREATE INDEX syncqueue_by_resource ON syncqueue (mapping, resource_id);
CREATE INDEX syncqueue_acquired_by_node ON syncqueue (node_id) WHERE state = 'ACQUIRED';

-- Dead letters: the REST entry (what queries filter) plus the whole record needed
-- for a replay.
CREATE TABLE deadletters (
    id      text COLLATE "C" PRIMARY KEY,
    seq     bigint GENERATED ALWAYS AS IDENTITY,
    mapping text COLLATE "C" NOT NULL,
    entry   jsonb NOT NULL,
    letter  jsonb NOT NULL
);
CREATE INDEX deadletters_by_mapping ON deadletters (mapping, seq);

-- Audit: recon and sync entries as JSON, with their hot fields indexed.
CREATE TABLE audit (
    kind         text COLLATE "C" NOT NULL,
    id           text COLLATE "C" NOT NULL,
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    recon_id     text COLLATE "C",
    mapping      text COLLATE "C",
    entry_type   text COLLATE "C",
    timestamp_ns bigint NOT NULL,
    entry        jsonb NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX audit_by_recon ON audit (kind, recon_id);
CREATE INDEX audit_by_mapping ON audit (kind, mapping);
CREATE INDEX audit_by_time ON audit (kind, timestamp_ns);
-- `GET audit/recon?_queryFilter=reconId eq "..."` goes through the jsonb translator.
CREATE INDEX audit_by_recon_ci ON audit (kind, (lower(entry ->> 'reconId') COLLATE "C"));

-- LiveSync tokens per source, advanced in the same transaction as their work.
CREATE TABLE livesync_tokens (
    source     text COLLATE "C" PRIMARY KEY,
    token      jsonb NOT NULL,
    updated_ns bigint NOT NULL
);
