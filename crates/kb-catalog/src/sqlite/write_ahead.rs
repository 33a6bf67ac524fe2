//! Write-ahead records (pending points, tombstones) dropped once their points are settled.

use kb_core::{CatalogError, DocumentId};

use crate::sql::db_err;

/// Whose write-ahead records to drop.
pub(crate) enum WriteAhead<'a> {
    /// One point, by id.
    Point(&'a str),
    /// Every point the `chunks` table lists for a document.
    PointsOf(&'a DocumentId),
}

/// Drop the pending records and tombstones of `points`, inside the caller's transaction.
pub(crate) async fn forget_write_ahead(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    points: WriteAhead<'_>,
) -> Result<(), CatalogError> {
    let (filter, key) = match points {
        WriteAhead::Point(id) => ("= ?", id),
        WriteAhead::PointsOf(doc) => (
            "IN (SELECT point_id FROM chunks WHERE doc_id = ?)",
            doc.as_str(),
        ),
    };
    for table in ["pending_points", "tombstones"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE point_id {filter}"))
            .bind(key)
            .execute(&mut **tx)
            .await
            .map_err(db_err("clear write-ahead records"))?;
    }
    Ok(())
}
