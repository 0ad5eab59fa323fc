-- The host a node runs on (its host name), written by every heartbeat: nodes that share a host
-- share its cores, so each runs its share of the host's page jobs (maxConcurrentJobs).
ALTER TABLE nodes ADD COLUMN host text COLLATE "C";
