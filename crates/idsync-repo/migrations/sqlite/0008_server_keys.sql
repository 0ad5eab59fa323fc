-- Secret keys every node of a cluster shares (the REST paging cookies' HMAC key): created once
-- by the first node that needs one, read by the others.
CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    key  BLOB NOT NULL
);
