//! The Merkle node cache: opaque 32-byte values keyed by (chain, level,
//! index). Hashing is done by `syndicate_core::tree`; this file only stores
//! and returns bytes.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use syndicate_core::ChainId;
use syndicate_core::merkle::{Hash, NodeId};
use syndicate_core::store::StoreError;

use crate::error::{corrupt, sqlite_error};

/// Schema version 2: the `tree_nodes` table.
pub(crate) const V2: &str = "
CREATE TABLE tree_nodes (
    chain TEXT    NOT NULL,
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL,
    PRIMARY KEY (chain, level, idx)
) STRICT, WITHOUT ROWID;
";

fn index(i: u64) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

/// Writes a batch of nodes in one transaction; kept nodes are left alone.
///
/// # Errors
/// A [`StoreError`] from SQLite.
pub(crate) fn put(
    conn: &mut Connection,
    path: &Path,
    chain: &ChainId,
    nodes: &[(NodeId, Hash)],
) -> Result<(), StoreError> {
    if nodes.is_empty() {
        return Ok(());
    }
    let err = |e| sqlite_error(path, e, false);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO tree_nodes (chain, level, idx, hash) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
            )
            .map_err(err)?;
        for (id, hash) in nodes {
            stmt.execute(params![
                chain.as_str(),
                i64::from(id.level),
                index(id.index),
                &hash[..]
            ])
            .map_err(err)?;
        }
    }
    tx.commit().map_err(|e| sqlite_error(path, e, true))
}

/// Reads nodes, `None` for those not kept.
///
/// # Errors
/// A [`StoreError`] from SQLite, or `Corrupt` for a value not 32 bytes.
pub(crate) fn get(
    conn: &Connection,
    path: &Path,
    chain: &ChainId,
    ids: &[NodeId],
) -> Result<Vec<Option<Hash>>, StoreError> {
    let err = |e| sqlite_error(path, e, false);
    let mut stmt = conn
        .prepare_cached("SELECT hash FROM tree_nodes WHERE chain = ?1 AND level = ?2 AND idx = ?3")
        .map_err(err)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let value: Option<Vec<u8>> = stmt
            .query_row(
                params![chain.as_str(), i64::from(id.level), index(id.index)],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        out.push(match value {
            None => None,
            Some(v) => Some(v.try_into().map_err(|v: Vec<u8>| {
                corrupt(
                    id.index << id.level,
                    format!("tree node {id} is {} bytes, 32 expected", v.len()),
                )
            })?),
        });
    }
    Ok(out)
}

/// One more than the highest leaf index kept, or 0.
///
/// # Errors
/// A [`StoreError`] from SQLite.
pub(crate) fn leaf_count(
    conn: &Connection,
    path: &Path,
    chain: &ChainId,
) -> Result<u64, StoreError> {
    let max: Option<i64> = conn
        .prepare_cached("SELECT MAX(idx) FROM tree_nodes WHERE chain = ?1 AND level = 0")
        .and_then(|mut s| s.query_row(params![chain.as_str()], |r| r.get(0)))
        .map_err(|e| sqlite_error(path, e, false))?;
    Ok(max.map_or(0, |m| u64::try_from(m).unwrap_or(0) + 1))
}
