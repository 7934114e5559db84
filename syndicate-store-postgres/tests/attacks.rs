//! The gate attacks of the conformance kit on a real PostgreSQL server:
//! several handles (pools) on one database, rows edited by a separate
//! superuser connection behind their backs (with the append-only trigger
//! bypassed, as the owner of the database can).

use std::sync::Arc;

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use syndicate_core::conformance::{Column, Fixture, RawEdit};
use syndicate_core::{ChainId, EventStore, StoreError};
use syndicate_store_postgres::PostgresStore;
use syndicate_store_postgres::testing::fresh_database;

struct Database {
    url: String,
}

#[async_trait::async_trait]
impl Fixture for Database {
    async fn open(&self) -> Result<Arc<dyn EventStore>, StoreError> {
        let chain = ChainId::new("attacks").expect("chain id");
        Ok(Arc::new(PostgresStore::open(&self.url, chain).await?))
    }

    async fn tamper(&self, edit: RawEdit) {
        let mut conn = PgConnection::connect(&self.url)
            .await
            .expect("a raw connection");
        sqlx::raw_sql("SET session_replication_role = replica")
            .execute(&mut conn)
            .await
            .expect("bypass the append-only trigger");
        let changed = match edit {
            RawEdit::SetColumn { seq, column, value } => {
                let value_sql = match column {
                    Column::At => "$1::text::timestamptz",
                    _ => "$1",
                };
                let sql = format!(
                    "UPDATE events SET {} = {value_sql} WHERE chain = 'attacks' AND seq = $2",
                    column.name()
                );
                sqlx::query(AssertSqlSafe(sql))
                    .bind(value)
                    .bind(i64::try_from(seq).expect("seq"))
                    .execute(&mut conn)
                    .await
                    .map(|r| r.rows_affected())
            }
            RawEdit::DeleteRow { seq } => {
                let deleted =
                    sqlx::query("DELETE FROM events WHERE chain = 'attacks' AND seq = $1")
                        .bind(i64::try_from(seq).expect("seq"))
                        .execute(&mut conn)
                        .await
                        .map(|r| r.rows_affected());
                // Whoever deletes the last row also moves the head row back,
                // so the next append fills the gap.
                sqlx::raw_sql(
                    "UPDATE heads SET seq = e.seq, hash = e.hash, at = e.at \
                     FROM (SELECT seq, hash, at FROM events WHERE chain = 'attacks' \
                           ORDER BY seq DESC LIMIT 1) e WHERE heads.chain = 'attacks'",
                )
                .execute(&mut conn)
                .await
                .expect("move the head row");
                deleted
            }
            RawEdit::AddSchemaObject => sqlx::raw_sql(
                "CREATE FUNCTION foreign_swallow() RETURNS trigger LANGUAGE plpgsql \
                 AS $$ BEGIN RETURN NULL; END $$; \
                 CREATE TRIGGER foreign_swallow BEFORE INSERT ON events \
                 FOR EACH ROW EXECUTE FUNCTION foreign_swallow()",
            )
            .execute(&mut conn)
            .await
            .map(|_| 1),
            RawEdit::SetBytes {
                seq,
                canonical,
                hash,
            } => sqlx::query(
                "UPDATE events SET canonical = $1, hash = $2 WHERE chain = 'attacks' AND seq = $3",
            )
            .bind(canonical)
            .bind(hash)
            .bind(i64::try_from(seq).expect("seq"))
            .execute(&mut conn)
            .await
            .map(|r| r.rows_affected()),
            RawEdit::SwapSeqs { a, b } => sqlx::raw_sql(AssertSqlSafe(format!(
                "UPDATE events SET seq = -1 WHERE chain = 'attacks' AND seq = {a}; \
                 UPDATE events SET seq = {a} WHERE chain = 'attacks' AND seq = {b}; \
                 UPDATE events SET seq = {b} WHERE chain = 'attacks' AND seq = -1;"
            )))
            .execute(&mut conn)
            .await
            .map(|_| 1),
            RawEdit::InsertRow { event } => {
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "UPDATE events SET seq = -(seq + 1) WHERE chain = 'attacks' AND seq >= {at}; \
                     UPDATE events SET seq = -seq WHERE chain = 'attacks' AND seq < 0;",
                    at = event.seq
                )))
                .execute(&mut conn)
                .await
                .expect("move the later rows up");
                let col = &event.columns;
                sqlx::query(
                    "INSERT INTO events \
                     (chain, seq, hash, canonical, at, session, kind, actor, request_id, once) \
                     VALUES ('attacks', $1, $2, $3, $4::text::timestamptz, $5, $6, $7, $8, $9)",
                )
                .bind(i64::try_from(event.seq).expect("seq"))
                .bind(event.hash.to_string())
                .bind(&event.canonical)
                .bind(&col.at)
                .bind(&col.session)
                .bind(&col.kind)
                .bind(&col.actor)
                .bind(&col.request_id)
                .bind(&col.once)
                .execute(&mut conn)
                .await
                .map(|r| r.rows_affected())
            }
            other => panic!("edit {other:?} is not known to this fixture"),
        }
        .expect("the raw edit applies");
        assert_eq!(changed, 1, "the raw edit must change one row");
        let _ = conn.close().await;
    }
}

syndicate_core::attack_tests!(postgres, {
    match fresh_database(module_path!()).await {
        Some(url) => Database { url },
        None => return,
    }
});
