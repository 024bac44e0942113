//! Rows read by column name into plain structs.
//!
//! [`from_row!`](crate::store::rows::from_row) implements [`sqlx::FromRow`] for a struct by
//! reading each field from the column of the same name (or the one given), as
//! `#[derive(sqlx::FromRow)]` would. The derive is not used because sqlx forwards its driver
//! features to its macro crate: enabling it builds a second copy of SQLite, of both drivers
//! and of tokio for the compiler host, which doubles a clean build on two cores. The macro
//! also gives the struct a `COLUMNS` list for its `SELECT`, so the query and the struct
//! cannot disagree on order, and a renamed column fails loudly ("no column found") instead
//! of landing in the wrong field.
//!
//! Conversions from these rows to the store's own types (parsing `kind`, JSON documents and
//! timestamps) live next to those types.

use sqlx::any::AnyRow;
use sqlx::FromRow;

use super::StoreResult;

/// Implements [`sqlx::FromRow`] for `AnyRow` and an associated `COLUMNS` constant (the
/// column names, comma-separated, in field order) for a struct whose fields are listed.
///
/// ```ignore
/// from_row!(MemberRow { id = "member_id", kind = "member_kind", display });
/// ```
///
/// Every field must be listed (the struct literal it builds is checked by the compiler); a
/// field named differently from its column gives the column after `=`.
macro_rules! from_row {
    ($ty:ident { $first:ident $(= $first_col:literal)? $(, $field:ident $(= $col:literal)?)* $(,)? }) => {
        impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for $ty {
            fn from_row(row: &'r sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                Ok(Self {
                    $first: row.try_get($crate::store::rows::column!($first $(= $first_col)?))?,
                    $($field: row.try_get($crate::store::rows::column!($field $(= $col)?))?,)*
                })
            }
        }

        impl $ty {
            /// The columns this row is read from, for its `SELECT`.
            #[allow(dead_code)]
            pub(crate) const COLUMNS: &'static str = concat!(
                $crate::store::rows::column!($first $(= $first_col)?)
                $(, ", ", $crate::store::rows::column!($field $(= $col)?))*
            );
        }
    };
}

/// The column a field is read from: its own name, or the one given after `=`.
macro_rules! column {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident = $col:literal) => {
        $col
    };
}

pub(crate) use {column, from_row};

/// Decodes every row into `T`.
pub(crate) fn decode<T>(rows: &[AnyRow]) -> StoreResult<Vec<T>>
where
    T: for<'r> FromRow<'r, AnyRow>,
{
    Ok(rows.iter().map(T::from_row).collect::<Result<_, _>>()?)
}

/// A row of `resources`, as every whole-resource query selects it
/// (`SELECT {ResourceRow::COLUMNS} FROM resources …`).
#[derive(Debug)]
pub(crate) struct ResourceRow {
    pub(crate) seq: i64,
    pub(crate) kind: String,
    pub(crate) id: String,
    pub(crate) name: String,
    /// The document as JSON text.
    pub(crate) doc: String,
    pub(crate) version: i64,
    /// Milliseconds since the epoch.
    pub(crate) created_at: i64,
    /// Milliseconds since the epoch.
    pub(crate) updated_at: i64,
}

from_row!(ResourceRow {
    seq,
    kind,
    id,
    name,
    doc,
    version,
    created_at,
    updated_at
});

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Pair {
        id: String,
        kind: String,
        note: Option<String>,
    }
    from_row!(Pair {
        id = "member_id",
        kind,
        note = "display"
    });

    #[test]
    fn columns_follow_the_fields_and_their_renames() {
        assert_eq!(Pair::COLUMNS, "member_id, kind, display");
        assert_eq!(
            ResourceRow::COLUMNS,
            "seq, kind, id, name, doc, version, created_at, updated_at"
        );
    }

    #[tokio::test]
    async fn a_row_is_read_by_name_whatever_the_column_order() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect("sqlite::memory:").await.unwrap();
        let rows = sqlx::query("SELECT NULL AS display, 'User' AS kind, 'u1' AS member_id")
            .fetch_all(&pool)
            .await
            .unwrap();
        let got: Vec<Pair> = decode(&rows).unwrap();
        assert_eq!(
            got,
            [Pair {
                id: "u1".into(),
                kind: "User".into(),
                note: None
            }]
        );
        // A missing column is an error, not a shifted read.
        let rows = sqlx::query("SELECT 'u1' AS member_id, 'User' AS kind")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert!(decode::<Pair>(&rows).is_err());
    }
}
