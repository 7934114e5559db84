//! The Merkle node cache in `tree_nodes`: opaque 32-byte values keyed by
//! (chain, level, index). Hashing is done by `syndicate_core::tree`; this
//! file only stores and returns bytes.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::postgres::PgPool;
use syndicate_core::StoreError;
use syndicate_core::merkle::{Hash, NodeId};

use crate::error::{self, STORE, Stage};

fn index(i: u64) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

/// Writes a batch of nodes in one statement; kept nodes are left alone.
pub(crate) async fn put(
    pool: &PgPool,
    chain: &str,
    nodes: &[(NodeId, Hash)],
) -> Result<(), StoreError> {
    if nodes.is_empty() {
        return Ok(());
    }
    let levels: Vec<i16> = nodes.iter().map(|(id, _)| i16::from(id.level)).collect();
    let idxs: Vec<i64> = nodes.iter().map(|(id, _)| index(id.index)).collect();
    let hashes: Vec<Vec<u8>> = nodes.iter().map(|(_, h)| h.to_vec()).collect();
    sqlx::query(
        "INSERT INTO tree_nodes (chain, level, idx, hash)
         SELECT $1, l, i, h FROM UNNEST($2::smallint[], $3::bigint[], $4::bytea[]) AS n(l, i, h)
         ON CONFLICT DO NOTHING",
    )
    .bind(chain)
    .bind(levels)
    .bind(idxs)
    .bind(hashes)
    .execute(pool)
    .await
    .map_err(|e| error::map(e, Stage::Commit))?;
    Ok(())
}

/// Reads nodes in one query, `None` for those not kept.
pub(crate) async fn get(
    pool: &PgPool,
    chain: &str,
    ids: &[NodeId],
) -> Result<Vec<Option<Hash>>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let levels: Vec<i16> = ids.iter().map(|id| i16::from(id.level)).collect();
    let idxs: Vec<i64> = ids.iter().map(|id| index(id.index)).collect();
    let rows = sqlx::query(
        "SELECT t.level, t.idx, t.hash FROM tree_nodes t
         JOIN UNNEST($2::smallint[], $3::bigint[]) AS n(l, i) ON t.level = n.l AND t.idx = n.i
         WHERE t.chain = $1",
    )
    .bind(chain)
    .bind(levels)
    .bind(idxs)
    .fetch_all(pool)
    .await
    .map_err(error::read)?;
    let mut found: HashMap<(i16, i64), Vec<u8>> = HashMap::with_capacity(rows.len());
    for row in rows {
        found.insert(
            (
                row.try_get(0).map_err(error::read)?,
                row.try_get(1).map_err(error::read)?,
            ),
            row.try_get(2).map_err(error::read)?,
        );
    }
    ids.iter()
        .map(
            |id| match found.get(&(i16::from(id.level), index(id.index))) {
                None => Ok(None),
                Some(v) => {
                    Hash::try_from(v.as_slice())
                        .map(Some)
                        .map_err(|_| StoreError::Corrupt {
                            store: STORE,
                            seq: id.index << id.level,
                            reason: format!("tree node {id} is {} bytes, 32 expected", v.len()),
                        })
                }
            },
        )
        .collect()
}

/// One more than the highest leaf index kept, or 0.
pub(crate) async fn leaf_count(pool: &PgPool, chain: &str) -> Result<u64, StoreError> {
    let max: Option<i64> =
        sqlx::query_scalar("SELECT MAX(idx) FROM tree_nodes WHERE chain = $1 AND level = 0")
            .bind(chain)
            .fetch_one(pool)
            .await
            .map_err(error::read)?;
    Ok(max.map_or(0, |m| u64::try_from(m).unwrap_or(0) + 1))
}
