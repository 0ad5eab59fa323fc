-- Links as one clustered B-tree keyed by the side reconciliation looks them up by, plus the
-- other side's unique index and the id's: three B-trees per link instead of five (the rowid
-- table, the id's implied index, both sides' unique indexes and (link_type, id)). Listing the
-- links of a type in id order walks the id index.
CREATE TABLE links_v2 (
    link_type      TEXT NOT NULL,
    first_id       TEXT NOT NULL,
    link_qualifier TEXT NOT NULL,
    second_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    rev            INTEGER NOT NULL,
    PRIMARY KEY (link_type, first_id, link_qualifier)
) WITHOUT ROWID;
INSERT INTO links_v2 (link_type, first_id, link_qualifier, second_id, id, rev)
    SELECT link_type, first_id, link_qualifier, second_id, id, rev FROM links;
DROP TABLE links;
ALTER TABLE links_v2 RENAME TO links;
CREATE UNIQUE INDEX links_by_second_side ON links (link_type, second_id, link_qualifier);
CREATE UNIQUE INDEX links_by_id ON links (id);
