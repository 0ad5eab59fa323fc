-- Recon decisions (one audit entry per reconciled object) as narrow rows of text columns,
-- rendered as IDM's JSON on read (src/recon_entry.rs, postgres/audit.rs): no jsonb document
-- built per object, one B-tree (the id's) instead of the audit table's three.
CREATE TABLE recon_entries (
    id                          text COLLATE "C" PRIMARY KEY,
    timestamp_ns                bigint NOT NULL,
    recon_id                    text,
    mapping                     text,
    situation                   text,
    action                      text,
    source_object_id            text,
    target_object_id            text,
    link_qualifier              text,
    status                      text,
    message                     text,
    message_detail              text,
    exception                   text,
    reconciling                 text,
    ambiguous_target_object_ids text,
    recon_action                text
);
