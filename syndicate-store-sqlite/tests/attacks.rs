//! The gate attacks of the conformance kit on a real SQLite file: several
//! handles (connections) on one file, rows edited with a separate
//! connection behind their backs.

use std::path::PathBuf;
use std::sync::Arc;

use syndicate_core::conformance::{Fixture, RawEdit};
use syndicate_core::{ChainId, EventStore, StoreError};
use syndicate_store_sqlite::{SqliteOptions, SqliteStore};

struct SqliteFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SqliteFile {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("attacks.db");
        SqliteFile { _dir: dir, path }
    }
}

#[async_trait::async_trait]
impl Fixture for SqliteFile {
    async fn open(&self) -> Result<Arc<dyn EventStore>, StoreError> {
        let chain = ChainId::new("attacks").expect("chain id");
        let store = SqliteStore::open(&self.path, chain, SqliteOptions::default()).await?;
        Ok(Arc::new(store))
    }

    async fn tamper(&self, edit: RawEdit) {
        let conn = rusqlite::Connection::open(&self.path).expect("a raw connection");
        let changed = match edit {
            RawEdit::SetColumn { seq, column, value } => conn.execute(
                &format!("UPDATE events SET {} = ?1 WHERE seq = ?2", column.name()),
                rusqlite::params![value, seq as i64],
            ),
            RawEdit::DeleteRow { seq } => {
                conn.execute("DELETE FROM events WHERE seq = ?1", [seq as i64])
            }
            RawEdit::AddSchemaObject => conn
                .execute("CREATE INDEX foreign_actor ON events (actor)", [])
                .map(|_| 1),
            RawEdit::SetBytes {
                seq,
                canonical,
                hash,
            } => conn.execute(
                "UPDATE events SET canonical = ?1, hash = ?2 WHERE seq = ?3",
                rusqlite::params![canonical, hash, seq as i64],
            ),
            RawEdit::SwapSeqs { a, b } => conn
                .execute_batch(&format!(
                    "UPDATE events SET seq = -1 WHERE seq = {a};
                     UPDATE events SET seq = {a} WHERE seq = {b};
                     UPDATE events SET seq = {b} WHERE seq = -1;"
                ))
                .map(|_| 1),
            RawEdit::InsertRow { event } => {
                conn.execute_batch(&format!(
                    "UPDATE events SET seq = -(seq + 1) WHERE seq >= {at};
                     UPDATE events SET seq = -seq WHERE seq < 0;",
                    at = event.seq
                ))
                .expect("move the later rows up");
                let col = &event.columns;
                conn.execute(
                    "INSERT INTO events \
                     (chain, seq, hash, canonical, at, session, kind, actor, request_id, once) \
                     VALUES ('attacks', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    rusqlite::params![
                        event.seq as i64,
                        event.hash.to_string(),
                        event.canonical,
                        col.at,
                        col.session,
                        col.kind,
                        col.actor,
                        col.request_id,
                        col.once
                    ],
                )
            }
            other => panic!("edit {other:?} is not known to this fixture"),
        }
        .expect("the raw edit applies");
        assert_eq!(changed, 1, "the raw edit must change one row");
    }
}

syndicate_core::attack_tests!(sqlite, { SqliteFile::new() });
