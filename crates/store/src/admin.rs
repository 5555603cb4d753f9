//! Support tools over the store: the webhook log (filtered by provider, type, status and
//! day) and CSV exports for bookkeeping.

use coachdesk_views::{InboxEntry, InboxFilter, InboxPayload};
use rusqlite::{params_from_iter, types::Value, OptionalExtension, Row};

use crate::{Store, StoreError};

const ENTRY_COLUMNS: &str =
    "id, provider, provider_key, kind, source, status, booking_id, error, received_at";

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    Bookings,
    Payments,
    Refunds,
}

impl Export {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "bookings" => Some(Self::Bookings),
            "payments" => Some(Self::Payments),
            "refunds" => Some(Self::Refunds),
            _ => None,
        }
    }
}

impl Store {
    /// The webhook log, newest first.
    pub fn list_inbox(&self, filter: &InboxFilter) -> Result<Vec<InboxEntry>, StoreError> {
        let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM inbox WHERE 1 = 1");
        let mut args: Vec<Value> = Vec::new();
        if let Some(provider) = filter.provider.as_deref().filter(|s| !s.is_empty()) {
            sql.push_str(" AND provider = ?");
            args.push(Value::Text(provider.to_owned()));
        }
        if let Some(status) = filter.status.as_deref().filter(|s| !s.is_empty()) {
            sql.push_str(" AND status = ?");
            args.push(Value::Text(status.to_owned()));
        }
        if let Some(kind) = filter
            .kind
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            // The type itself, or every type under it (`checkout.session` → `checkout.session.*`).
            sql.push_str(" AND (kind = ? OR kind LIKE ? ESCAPE '\\')");
            args.push(Value::Text(kind.to_owned()));
            args.push(Value::Text(format!(
                "{}.%",
                kind.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )));
        }
        let day = |field: &str, text: Option<&String>| -> Result<Option<time::Date>, StoreError> {
            let Some(text) = text.map(|t| t.trim()).filter(|t| !t.is_empty()) else {
                return Ok(None);
            };
            time::Date::parse(
                text,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map(Some)
            .map_err(|_| {
                StoreError::Invalid(vec![coachdesk_views::FieldError {
                    field: field.into(),
                    message: format!("\"{text}\" is not a date; use the form 2026-03-31."),
                }])
            })
        };
        if let Some(from) = day("from", filter.from.as_ref())? {
            sql.push_str(" AND received_at >= ?");
            args.push(Value::Text(from.to_string()));
        }
        if let Some(to) = day("to", filter.to.as_ref())? {
            sql.push_str(" AND received_at < ?");
            let next = to
                .next_day()
                .map_or_else(|| "9999".to_owned(), |d| d.to_string());
            args.push(Value::Text(next));
        }
        if let Some(search) = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            sql.push_str(" AND (provider_key = ? OR kind = ? OR booking_id = ?)");
            for _ in 0..3 {
                args.push(Value::Text(search.to_owned()));
            }
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(Value::Integer(i64::from(
            filter.limit.unwrap_or(200).min(1000),
        )));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), entry_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One stored input with its raw body.
    pub fn inbox_payload(&self, id: i64) -> Result<InboxPayload, StoreError> {
        let sql = format!("SELECT {ENTRY_COLUMNS}, body FROM inbox WHERE id = ?1");
        self.conn
            .query_row(&sql, [id], |row| {
                Ok(InboxPayload {
                    entry: entry_from_row(row)?,
                    body: row.get(9)?,
                })
            })
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "stored event",
                id: id.to_string(),
            })
    }

    /// A CSV export (RFC 4180, amounts in major units with their currency).
    pub fn export_csv(&self, what: Export) -> Result<String, StoreError> {
        let sql = match what {
            Export::Bookings => {
                "SELECT b.id, b.state, b.client_name, b.client_email, s.name, b.start_time,
                     b.currency, b.paid_minor, b.refunded_minor, b.invitee_uri
                 FROM bookings b LEFT JOIN session_types s ON s.id = b.session_type_id
                 ORDER BY b.start_time, b.id"
            }
            Export::Payments => {
                "SELECT p.booking_id, p.checkout_session, p.payment_intent, p.status, p.at,
                     p.currency, p.amount_minor, p.carried
                 FROM payments p ORDER BY p.at, p.booking_id"
            }
            Export::Refunds => {
                "SELECT r.booking_id, r.refund_key, r.refund_id, r.payment_intent, r.status,
                     r.created_at, r.currency, r.amount_minor
                 FROM refunds r ORDER BY r.created_at, r.booking_id"
            }
        };
        let header: &[&str] = match what {
            Export::Bookings => &[
                "booking_id",
                "state",
                "client_name",
                "client_email",
                "session_type",
                "start_time",
                "currency",
                "paid",
                "refunded",
                "invitee_uri",
            ],
            Export::Payments => &[
                "booking_id",
                "checkout_session",
                "payment_intent",
                "status",
                "at",
                "currency",
                "amount",
                "carried_from_reschedule",
            ],
            Export::Refunds => &[
                "booking_id",
                "cause",
                "refund_id",
                "payment_intent",
                "status",
                "recorded_at",
                "currency",
                "amount",
            ],
        };
        // Which columns are minor-unit amounts, and where their currency is.
        let (currency_col, amount_cols): (usize, &[usize]) = match what {
            Export::Bookings => (6, &[7, 8]),
            Export::Payments => (5, &[6]),
            Export::Refunds => (6, &[7]),
        };
        let mut out = header.join(",");
        out.push_str("\r\n");
        let mut stmt = self.conn.prepare(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let currency: Option<String> = row.get(currency_col)?;
            let exponent = currency
                .as_deref()
                .and_then(|c| coachdesk_domain::Currency::parse(c).ok());
            let mut cells = Vec::with_capacity(columns);
            for i in 0..columns {
                let value: Value = row.get(i)?;
                let text = match (&value, amount_cols.contains(&i), exponent) {
                    (Value::Integer(minor), true, Some(currency)) => {
                        coachdesk_domain::Money::new(*minor, currency).format_major()
                    }
                    (Value::Integer(n), _, _) => n.to_string(),
                    (Value::Real(f), _, _) => f.to_string(),
                    (Value::Text(t), _, _) => t.clone(),
                    (Value::Null, _, _) | (Value::Blob(_), _, _) => String::new(),
                };
                cells.push(csv_cell(&text));
            }
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        Ok(out)
    }
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<InboxEntry> {
    Ok(InboxEntry {
        id: row.get(0)?,
        provider: row.get(1)?,
        key: row.get(2)?,
        kind: row.get(3)?,
        source: row.get(4)?,
        status: row.get(5)?,
        booking_id: row.get(6)?,
        note: row.get(7)?,
        received_at: row.get(8)?,
    })
}

/// Quotes a cell if it must be; neutralises spreadsheet formulas (a client could type
/// `=HYPERLINK(...)` as their name).
fn csv_cell(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@']) && text.parse::<f64>().is_err() {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if guarded.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("-75.00"), "-75.00");
    }
}
