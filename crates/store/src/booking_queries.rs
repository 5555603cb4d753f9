//! Reading bookings for the app: the filtered list, one booking's detail, the inbox.

use coachdesk_domain::BookingState;
use coachdesk_protocol::ipc::{AuditEntry, BookingDetail, BookingFilter, BookingSummary};
use rusqlite::{params_from_iter, types::Value, OptionalExtension, Row};

use crate::{Store, StoreError};

const SUMMARY_COLUMNS: &str = "b.id, b.state, b.attention, b.client_name, b.client_email, \
     s.name, b.start_time, b.paid_minor, b.refunded_minor, b.currency";

/// The most rows one list call returns.
pub const MAX_LIST: u32 = 500;

impl Store {
    /// Bookings matching the filter, latest session first.
    pub fn list_bookings(&self, filter: &BookingFilter) -> Result<Vec<BookingSummary>, StoreError> {
        let mut sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM bookings b LEFT JOIN session_types s ON s.id = b.session_type_id WHERE 1 = 1"
        );
        let mut args: Vec<Value> = Vec::new();
        if let Some(state) = filter.state.as_deref().filter(|s| !s.is_empty()) {
            if BookingState::parse(state).is_none() {
                return Err(StoreError::Invalid(vec![
                    coachdesk_protocol::ipc::FieldError {
                        field: "state".into(),
                        message: format!("\"{state}\" is not a booking state."),
                    },
                ]));
            }
            sql.push_str(" AND b.state = ?");
            args.push(Value::Text(state.to_owned()));
        }
        if let Some(id) = filter.session_type_id.as_deref().filter(|s| !s.is_empty()) {
            sql.push_str(" AND b.session_type_id = ?");
            args.push(Value::Text(id.to_owned()));
        }
        if let Some(search) = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            sql.push_str(
                " AND (b.client_email = ? COLLATE NOCASE OR b.client_email LIKE ? ESCAPE '\\' \
                 OR b.client_name LIKE ? ESCAPE '\\' OR b.invitee_uri = ? OR b.invitee_uuid = ? OR b.id = ? \
                 OR b.id IN (SELECT booking_id FROM payments WHERE payment_intent = ? OR checkout_session = ?) \
                 OR b.id IN (SELECT booking_id FROM refunds WHERE refund_id = ?))",
            );
            let like = format!(
                "%{}%",
                search
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            for value in [
                search, &like, &like, search, search, search, search, search, search,
            ] {
                args.push(Value::Text(value.to_owned()));
            }
        }
        sql.push_str(" ORDER BY b.start_time DESC, b.id LIMIT ?");
        args.push(Value::Integer(i64::from(
            filter.limit.unwrap_or(200).min(MAX_LIST),
        )));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), summary_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One booking with its audit timeline and the raw events behind it.
    pub fn booking_detail(&self, id: &str) -> Result<BookingDetail, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, b.invitee_uri, \
             (SELECT payment_intent FROM payments p WHERE p.booking_id = b.id AND p.status = 'succeeded' ORDER BY at LIMIT 1) \
             FROM bookings b LEFT JOIN session_types s ON s.id = b.session_type_id WHERE b.id = ?1"
        );
        let found = self
            .conn
            .query_row(&sql, [id], |row| {
                Ok((
                    summary_from_row(row)?,
                    row.get::<_, Option<String>>(10)?,
                    row.get::<_, Option<String>>(11)?,
                ))
            })
            .optional()?;
        let Some((summary, invitee_uri, payment_intent)) = found else {
            return Err(StoreError::NotFound {
                what: "booking",
                id: id.to_owned(),
            });
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, from_state, to_state, cause, summary FROM audit_log WHERE booking_id = ?1 ORDER BY id",
        )?;
        let audit = stmt
            .query_map([id], |row| {
                Ok(AuditEntry {
                    at: row.get(0)?,
                    from_state: row.get(1)?,
                    to_state: row.get(2)?,
                    cause: row.get(3)?,
                    summary: row.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(BookingDetail {
            summary,
            invitee_uri,
            payment_intent,
            audit,
        })
    }

    /// Counts of inbox rows by status (for sync health and tests).
    pub fn inbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT status, COUNT(*) FROM inbox GROUP BY status ORDER BY status")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<BookingSummary> {
    let paid_minor: i64 = row.get(7)?;
    let refunded_minor: i64 = row.get(8)?;
    let currency: Option<String> = row.get(9)?;
    Ok(BookingSummary {
        id: row.get(0)?,
        state: row.get(1)?,
        needs_attention: row.get(2)?,
        client_name: row.get(3)?,
        client_email: row.get(4)?,
        session_type_name: row.get(5)?,
        start_time: row.get(6)?,
        paid_minor,
        refunded_minor,
        currency,
    })
}
