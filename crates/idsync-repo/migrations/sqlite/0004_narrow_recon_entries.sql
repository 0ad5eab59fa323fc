-- Recon decisions (one audit entry per object a reconciliation decides on) as narrow rows of
-- text columns, rendered in IDM's JSON shape on read (src/recon_entry.rs). One B-tree, keyed by
-- the entry's time-ordered id: appends stay at the right edge, reads by id are one probe, and
-- no JSON document is serialized in the writer.
CREATE TABLE recon_entries (
    id                          TEXT PRIMARY KEY,
    timestamp                   INTEGER NOT NULL,
    recon_id                    TEXT,
    mapping                     TEXT,
    situation                   TEXT,
    action                      TEXT,
    source_object_id            TEXT,
    target_object_id            TEXT,
    link_qualifier              TEXT,
    status                      TEXT,
    message                     TEXT,
    message_detail              TEXT,
    exception                   TEXT,
    reconciling                 TEXT,
    ambiguous_target_object_ids TEXT,
    recon_action                TEXT
) WITHOUT ROWID;
