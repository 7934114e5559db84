-- syndicate PostgreSQL store, schema version 1.
-- Applied once, inside one transaction, by PostgresStore::open or
-- `syndicate store migrate --store URL`; recorded in syndicate_schema_version.

-- One row per event, exactly as sealed by syndicate-core. `canonical` holds
-- the RFC 8785 bytes of the envelope and `hash` their digest as 64 lower-case
-- hex characters; every other column is extracted from those bytes for
-- queries, and the verifier checks that each still equals the field inside.
CREATE TABLE events (
    chain      TEXT        NOT NULL,
    seq        BIGINT      NOT NULL,
    hash       TEXT        NOT NULL,
    canonical  BYTEA       NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    session    TEXT        NOT NULL,
    kind       TEXT        NOT NULL,
    actor      TEXT        NOT NULL,
    request_id TEXT,
    once       TEXT,
    CONSTRAINT events_chain_seq PRIMARY KEY (chain, seq),
    -- Single-use keys: a second event with the same key on the same chain is
    -- refused by the database itself (SQLSTATE 23505).
    CONSTRAINT events_chain_once UNIQUE (chain, once)
);

CREATE INDEX events_session ON events (chain, session, seq);
CREATE INDEX events_kind ON events (chain, kind, seq);
CREATE INDEX events_actor ON events (chain, actor, seq);
CREATE INDEX events_request_id ON events (chain, request_id, seq) WHERE request_id IS NOT NULL;
CREATE INDEX events_at ON events (chain, at, seq);

-- One row per chain: the lock every appender takes (SELECT ... FOR UPDATE)
-- and the head it seals against. seq, hash and at are NULL for an empty
-- chain. The events table stays the source of truth: the verifier never
-- reads this table.
CREATE TABLE heads (
    chain TEXT        PRIMARY KEY,
    seq   BIGINT,
    hash  TEXT,
    at    TIMESTAMPTZ
);

-- Events are append-only: UPDATE, DELETE and TRUNCATE are refused. This is a
-- guard against mistakes, not the guarantee (an owner can disable triggers);
-- the guarantee is that the chain verifies.
CREATE FUNCTION syndicate_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'syndicate events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'corrections are new events (kind annotation), never edits';
END;
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION syndicate_events_append_only();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION syndicate_events_append_only();
