//! Schema migrations: the numbered SQL files in `migrations/`, applied in order.
//!
//! `PRAGMA user_version` holds the last applied number; each file runs in its own
//! transaction with the version bump, so a crash mid-way leaves the previous version.

use rusqlite::Connection;

use crate::StoreError;

/// Every migration, in order. A test checks this list against the directory.
pub(crate) const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "0001_init.sql",
        include_str!("../../../migrations/0001_init.sql"),
    ),
    (
        2,
        "0002_stripe_setup.sql",
        include_str!("../../../migrations/0002_stripe_setup.sql"),
    ),
    (
        3,
        "0003_refund_approval.sql",
        include_str!("../../../migrations/0003_refund_approval.sql"),
    ),
    (
        4,
        "0004_booking_list_indexes.sql",
        include_str!("../../../migrations/0004_booking_list_indexes.sql"),
    ),
    (
        5,
        "0005_dashboard_indexes.sql",
        include_str!("../../../migrations/0005_dashboard_indexes.sql"),
    ),
    (
        6,
        "0006_booking_metric_columns.sql",
        include_str!("../../../migrations/0006_booking_metric_columns.sql"),
    ),
    (
        7,
        "0007_event_type_booking_page.sql",
        include_str!("../../../migrations/0007_event_type_booking_page.sql"),
    ),
];

pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for (version, _, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", version))
            .map_err(|source| StoreError::Migration {
                version: *version,
                source,
            })?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_migrations_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|m| m.1.to_owned()).collect();
        assert_eq!(files, listed);
        for (index, (version, name, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, index + 1);
            assert!(name.starts_with(&format!("{version:04}_")));
        }
    }

    /// Migration 6 fills the metric columns of existing bookings with exactly what the
    /// store writes for new ones.
    #[test]
    fn the_metric_columns_are_backfilled_as_the_store_writes_them() {
        let mut store = crate::Store::open_in_memory().unwrap();
        let now = time::macros::datetime!(2026-06-01 12:00 UTC);
        crate::samples::seed(&mut store, now, 200);
        let conn = &store.conn;
        let columns =
            "SELECT id, booked_at, cancelled_at, rescheduled_from FROM bookings ORDER BY id";
        let read = || -> Vec<[Option<String>; 4]> {
            conn.prepare(columns)
                .unwrap()
                .query_map([], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let written = read();
        assert!(written.iter().any(|r| r[2].is_some()), "some are cancelled");
        assert!(
            written.iter().any(|r| r[3].is_some()),
            "some are reschedules"
        );
        assert!(
            written.iter().all(|r| r[1].is_some()),
            "every booking was booked"
        );

        conn.execute_batch(
            "UPDATE bookings SET booked_at = NULL, cancelled_at = NULL, rescheduled_from = NULL",
        )
        .unwrap();
        let sql = MIGRATIONS[5].2;
        let backfill = &sql[sql.find("UPDATE bookings").expect("the backfill")..];
        conn.execute_batch(backfill).unwrap();
        assert_eq!(read(), written);
    }

    #[test]
    fn migrating_twice_is_a_no_op_and_newer_schemas_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}
