-- idsync SQLite schema v1. Times are INTEGER microseconds since the Unix epoch (UTC) so that
-- comparisons and ordering are plain integer comparisons. JSON is TEXT.

CREATE TABLE objects (
    object_type TEXT NOT NULL,
    id          TEXT NOT NULL,
    rev         INTEGER NOT NULL,
    obj         TEXT NOT NULL,
    PRIMARY KEY (object_type, id)
);

CREATE TABLE links (
    id             TEXT PRIMARY KEY,
    rev            INTEGER NOT NULL,
    link_type      TEXT NOT NULL,
    link_qualifier TEXT NOT NULL,
    first_id       TEXT NOT NULL,
    second_id      TEXT NOT NULL
);
CREATE UNIQUE INDEX links_first ON links (link_type, link_qualifier, first_id);
CREATE UNIQUE INDEX links_second ON links (link_type, link_qualifier, second_id);
CREATE INDEX links_type_first ON links (link_type, first_id);
CREATE INDEX links_type_second ON links (link_type, second_id);
CREATE INDEX links_type_id ON links (link_type, id);

CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    mapping          TEXT NOT NULL,
    analyze          INTEGER NOT NULL,
    state            TEXT NOT NULL,
    stage            TEXT NOT NULL,
    started          INTEGER NOT NULL,
    ended            INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    message          TEXT,
    parameters       TEXT NOT NULL,
    summary          TEXT NOT NULL,
    totals           TEXT NOT NULL,
    node_id          TEXT NOT NULL
);
-- One active run per mapping, enforced by the database.
CREATE UNIQUE INDEX runs_one_active ON runs (mapping) WHERE state = 'ACTIVE';
CREATE INDEX runs_mapping_started ON runs (mapping, started);

CREATE TABLE run_counters (
    run_id  TEXT NOT NULL,
    node_id TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   INTEGER NOT NULL,
    PRIMARY KEY (run_id, node_id, key)
) WITHOUT ROWID;

CREATE TABLE plan_entries (
    run_id TEXT NOT NULL,
    id     TEXT NOT NULL,
    entry  TEXT NOT NULL,
    PRIMARY KEY (run_id, id)
);

CREATE TABLE target_ids (
    run_id    TEXT NOT NULL,
    target_id TEXT NOT NULL,
    PRIMARY KEY (run_id, target_id)
) WITHOUT ROWID;

CREATE TABLE jobs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    run_id      TEXT,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL,
    owner_node  TEXT,
    lease_until INTEGER,
    token       INTEGER NOT NULL,
    not_before  INTEGER,
    created     INTEGER NOT NULL
);
CREATE INDEX jobs_claim ON jobs (kind, state, created);
CREATE INDEX jobs_run ON jobs (run_id);
CREATE INDEX jobs_owner ON jobs (owner_node);

CREATE TABLE nodes (
    id             TEXT PRIMARY KEY,
    state          TEXT NOT NULL,
    startup        INTEGER NOT NULL,
    shutdown       INTEGER,
    last_heartbeat INTEGER NOT NULL
);

-- A lock row survives its release (node_id NULL) so that its token keeps increasing.
CREATE TABLE locks (
    name     TEXT PRIMARY KEY,
    node_id  TEXT,
    token    INTEGER NOT NULL,
    acquired INTEGER NOT NULL
);

CREATE TABLE sync_queue (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT NOT NULL UNIQUE,
    rev                 INTEGER NOT NULL,
    mapping             TEXT NOT NULL,
    resource_id         TEXT NOT NULL,
    resource_collection TEXT NOT NULL,
    sync_action         TEXT NOT NULL,
    state               TEXT NOT NULL,
    node_id             TEXT,
    remaining_retries   INTEGER NOT NULL,
    create_date         INTEGER NOT NULL,
    old_object          TEXT,
    new_object          TEXT,
    object_rev          TEXT,
    context             TEXT NOT NULL
);
CREATE INDEX sync_queue_poll ON sync_queue (mapping, state, create_date, seq);
CREATE INDEX sync_queue_node ON sync_queue (node_id);
CREATE INDEX sync_queue_resource ON sync_queue (mapping, resource_id, state);

CREATE TABLE dead_letters (
    id            TEXT PRIMARY KEY,
    event         TEXT NOT NULL,
    failure_cause TEXT NOT NULL,
    retries       INTEGER NOT NULL,
    failed_date   INTEGER NOT NULL,
    -- The REST shape, rendered once: dead letters never change.
    doc           TEXT NOT NULL
);

CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    timestamp  INTEGER NOT NULL,
    recon_id   TEXT,
    mapping    TEXT,
    entry_type TEXT,
    entry      TEXT NOT NULL
);
CREATE INDEX audit_kind_time ON audit (kind, timestamp);
-- Few indexes on purpose: recon writes one entry per object, and every index is paid per entry.
-- Lookups are by run (and entry type) or by id; retention deletes by time.
CREATE INDEX audit_recon ON audit (kind, recon_id, entry_type);
CREATE INDEX audit_id ON audit (kind, id);

CREATE TABLE sync_tokens (
    source TEXT PRIMARY KEY,
    token  TEXT NOT NULL
);
