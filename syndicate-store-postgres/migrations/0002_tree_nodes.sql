-- syndicate PostgreSQL store, schema version 2: the Merkle node cache.
-- Hashes of complete subtrees of each chain's RFC 9162 tree (2^level leaves
-- starting at idx << level), computed by syndicate-core and stored as opaque
-- 32-byte values. The cache is not trusted: a wrong node only makes a proof
-- fail verification. A node never changes once written.
CREATE TABLE tree_nodes (
    chain TEXT     NOT NULL,
    level SMALLINT NOT NULL,
    idx   BIGINT   NOT NULL,
    hash  BYTEA    NOT NULL,
    CONSTRAINT tree_nodes_pk PRIMARY KEY (chain, level, idx)
);
