-- Each unique index of links now leads with the side it is looked up by: (type, first_id,
-- qualifier) and (type, second_id, qualifier) keep the same uniqueness as the (type, qualifier,
-- side) indexes they replace, and a batch lookup by one side (`side = ANY(ids)`, every
-- qualifier) probes its own index directly. With the old order both indexes matched the
-- lookup's (type, qualifier) prefix; on planner statistics taken while `links` was still empty
-- (a first load), PostgreSQL took the OTHER side's index and filtered every link of the type
-- against each id — a 10,000-id page lookup ran for minutes (BENCHMARKS.md, cluster).
CREATE UNIQUE INDEX links_by_first_side ON links (link_type, first_id, link_qualifier);
CREATE UNIQUE INDEX links_by_second_side ON links (link_type, second_id, link_qualifier);
DROP INDEX links_by_first;
DROP INDEX links_by_second;
