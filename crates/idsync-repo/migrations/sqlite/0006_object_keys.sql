-- Managed objects as one clustered B-tree keyed by (type, id), and their searchable properties
-- as narrow key rows written in Rust (src/sqlite/keys.rs) instead of three JSON expression
-- indexes per property: an object write touches one B-tree plus one row per indexed value.
-- `ensure_indexes` records the indexed properties and builds their keys (again) at startup.
CREATE TABLE objects_v2 (
    object_type TEXT NOT NULL,
    id          TEXT NOT NULL,
    rev         INTEGER NOT NULL,
    obj         TEXT NOT NULL,
    PRIMARY KEY (object_type, id)
) WITHOUT ROWID;
INSERT INTO objects_v2 (object_type, id, rev, obj) SELECT object_type, id, rev, obj FROM objects;
DROP TABLE objects;
ALTER TABLE objects_v2 RENAME TO objects;

CREATE TABLE indexed_properties (
    object_type TEXT NOT NULL,
    prop        TEXT NOT NULL,
    PRIMARY KEY (object_type, prop)
) WITHOUT ROWID;

CREATE TABLE object_keys (
    object_type TEXT NOT NULL,
    prop        TEXT NOT NULL,
    key         TEXT NOT NULL,
    id          TEXT NOT NULL,
    PRIMARY KEY (object_type, prop, key, id)
) WITHOUT ROWID;
