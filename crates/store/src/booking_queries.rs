//! Reading bookings for the app: the filtered, searched and paged list, one booking's
//! detail, the inbox counts.
//!
//! Every filter, the search and the paging run in SQL on indexed columns, so the list
//! costs the same with ten bookings or ten thousand: the window only ever receives one
//! page. A search is read by its shape (a Stripe id, an invitee URI, an email, a name)
//! and answered from the index that holds that kind of id.

use coachdesk_domain::{BookingId, BookingState};
use coachdesk_views::{
    AttentionItem, AuditEntry, BookingDetail, BookingFilter, BookingPage, BookingSummary,
    FieldError, OfferedActions,
};
use rusqlite::{params_from_iter, types::Value, OptionalExtension, Row};
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::{Store, StoreError};

const SUMMARY_COLUMNS: &str = "b.id, b.state, b.attention, b.client_name, b.client_email, \
     s.name, b.start_time, b.paid_minor, b.refunded_minor, b.currency";

/// The most rows one list call returns.
pub const MAX_LIST: u32 = 500;

/// The page size when the filter names none.
pub const DEFAULT_PAGE: u32 = 50;

/// What a search text is taken to be, from its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    /// `pi_…`: a Stripe payment intent.
    PaymentIntent,
    /// `cs_…`: a Stripe Checkout Session.
    CheckoutSession,
    /// `re_…` / `pyr_…`: a Stripe refund.
    Refund,
    /// `bk_…`: this app's booking id.
    BookingId,
    /// `https://…`: a Calendly invitee URI.
    InviteeUri,
    /// Contains `@`: (part of) the client's email.
    Email,
    /// Anything else: part of the client's name or email, or an invitee UUID.
    Text,
}

impl SearchKind {
    /// Reads the kind of a (trimmed, non-empty) search text.
    pub fn of(search: &str) -> Self {
        let starts = |prefix: &str| search.starts_with(prefix) && search.len() > prefix.len();
        if starts("pi_") {
            Self::PaymentIntent
        } else if starts("cs_") {
            Self::CheckoutSession
        } else if starts("re_") || starts("pyr_") {
            Self::Refund
        } else if starts("bk_") {
            Self::BookingId
        } else if starts("https://") || starts("http://") {
            Self::InviteeUri
        } else if search.contains('@') {
            Self::Email
        } else {
            Self::Text
        }
    }
}

/// A `WHERE` clause and its arguments.
struct Clause {
    sql: String,
    args: Vec<Value>,
    /// The list's order: latest session first, or soonest first.
    order: &'static str,
}

fn invalid(field: &str, message: String) -> StoreError {
    StoreError::Invalid(vec![FieldError {
        field: field.into(),
        message,
    }])
}

/// `YYYY-MM-DD` as a date, or a field error naming the field.
fn day(field: &str, text: &str) -> Result<Date, StoreError> {
    Date::parse(text.trim(), format_description!("[year]-[month]-[day]")).map_err(|_| {
        invalid(
            field,
            format!("\"{text}\" is not a date; use the form 2026-03-31."),
        )
    })
}

fn day_text(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// `name@domain.tld`: something before the `@`, a dot in the domain, no spaces.
fn is_whole_address(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !text.contains(char::is_whitespace)
                && domain
                    .split_once('.')
                    .is_some_and(|(host, tld)| !host.is_empty() && tld.len() >= 2)
        }
        None => false,
    }
}

/// `%text%` for LIKE, with the wildcards in `text` taken literally.
fn contains(text: &str) -> String {
    format!(
        "%{}%",
        text.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

fn non_empty(value: Option<&String>) -> Option<&str> {
    value.map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The filter as SQL over `bookings b`.
fn clause(filter: &BookingFilter) -> Result<Clause, StoreError> {
    let mut sql = String::from("1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let text = |s: &str| Value::Text(s.to_owned());
    if let Some(state) = non_empty(filter.state.as_ref()) {
        if BookingState::parse(state).is_none() {
            return Err(invalid(
                "state",
                format!("\"{state}\" is not a booking state."),
            ));
        }
        sql.push_str(" AND b.state = ?");
        args.push(text(state));
    }
    if let Some(id) = non_empty(filter.session_type_id.as_ref()) {
        sql.push_str(" AND b.session_type_id = ?");
        args.push(text(id));
    }
    let from = non_empty(filter.from.as_ref())
        .map(|d| day("from", d))
        .transpose()?;
    let to = non_empty(filter.to.as_ref())
        .map(|d| day("to", d))
        .transpose()?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(invalid(
                "to",
                "The end date is before the start date; swap them.".into(),
            ));
        }
    }
    if let Some(from) = from {
        // RFC 3339 text sorts as time: "2026-03-31" sorts before "2026-03-31T00:00:00Z".
        sql.push_str(" AND b.start_time >= ?");
        args.push(Value::Text(day_text(from)));
    }
    if let Some(to) = to {
        sql.push_str(" AND b.start_time < ?");
        let next = to
            .next_day()
            .map_or_else(|| "9999-12-32".to_owned(), day_text);
        args.push(Value::Text(next));
    }
    if let Some(search) = non_empty(filter.search.as_ref()) {
        let kind = SearchKind::of(search);
        let (condition, values): (&str, Vec<String>) = match kind {
            SearchKind::PaymentIntent => (
                "b.id IN (SELECT booking_id FROM payments WHERE payment_intent = ? \
                 UNION SELECT booking_id FROM refunds WHERE payment_intent = ?)",
                vec![search.into(), search.into()],
            ),
            SearchKind::CheckoutSession => (
                "b.id IN (SELECT booking_id FROM payments WHERE checkout_session = ?)",
                vec![search.into()],
            ),
            SearchKind::Refund => (
                "b.id IN (SELECT booking_id FROM refunds WHERE refund_id = ?)",
                vec![search.into()],
            ),
            SearchKind::BookingId => ("b.id = ?", vec![search.into()]),
            SearchKind::InviteeUri => ("b.invitee_uri = ?", vec![search.into()]),
            // A whole address is looked up in the email index; part of one is searched.
            SearchKind::Email if is_whole_address(search) => {
                ("b.client_email = ? COLLATE NOCASE", vec![search.into()])
            }
            SearchKind::Email => ("b.client_email LIKE ? ESCAPE '\\'", vec![contains(search)]),
            SearchKind::Text => (
                "(b.invitee_uuid = ? OR b.client_email LIKE ? ESCAPE '\\' \
                 OR b.client_name LIKE ? ESCAPE '\\')",
                vec![search.into(), contains(search), contains(search)],
            ),
        };
        sql.push_str(" AND ");
        sql.push_str(condition);
        args.extend(values.into_iter().map(Value::Text));
    }
    let order = if filter.soonest_first.unwrap_or(false) {
        "b.start_time, b.id"
    } else {
        "b.start_time DESC, b.id DESC"
    };
    Ok(Clause { sql, args, order })
}

impl Store {
    /// Bookings matching the filter, latest session first, from `offset`, at most
    /// `limit` (default 200, at most [`MAX_LIST`]).
    pub fn list_bookings(&self, filter: &BookingFilter) -> Result<Vec<BookingSummary>, StoreError> {
        let limit = filter.limit.unwrap_or(200).min(MAX_LIST);
        self.bookings_where(&clause(filter)?, limit, filter.offset.unwrap_or(0))
    }

    /// One page of the bookings list (default [`DEFAULT_PAGE`] rows) with the number of
    /// bookings the filter matches in all.
    pub fn booking_page(&self, filter: &BookingFilter) -> Result<BookingPage, StoreError> {
        let clause = clause(filter)?;
        let limit = filter.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_LIST);
        let offset = filter.offset.unwrap_or(0);
        let total: i64 = self
            .conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM bookings b WHERE {}",
                clause.sql
            ))?
            .query_row(params_from_iter(clause.args.iter()), |row| row.get(0))?;
        Ok(BookingPage {
            items: self.bookings_where(&clause, limit, offset)?,
            total: u64::try_from(total).unwrap_or(0),
            offset,
            limit,
        })
    }

    fn bookings_where(
        &self,
        clause: &Clause,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<BookingSummary>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM bookings b LEFT JOIN session_types s ON s.id = b.session_type_id \
             WHERE {} ORDER BY {} LIMIT ? OFFSET ?",
            clause.sql, clause.order
        );
        let mut args = clause.args.clone();
        args.push(Value::Integer(i64::from(limit)));
        args.push(Value::Integer(i64::from(offset)));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), summary_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The query plan SQLite picks for a filter's page (for the benchmark and tests: every
    /// plan step should name an index, never scan `bookings` whole).
    pub fn booking_page_plan(&self, filter: &BookingFilter) -> Result<Vec<String>, StoreError> {
        let clause = clause(filter)?;
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT {SUMMARY_COLUMNS} FROM bookings b LEFT JOIN session_types s ON s.id = b.session_type_id \
             WHERE {} ORDER BY {} LIMIT 50 OFFSET 0",
            clause.sql, clause.order
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(clause.args.iter()), |row| row.get(3))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One booking with its audit timeline and the raw events behind it.
    pub fn booking_detail(&self, id: &BookingId) -> Result<BookingDetail, StoreError> {
        let id = id.as_str();
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, b.invitee_uri, \
             (SELECT payment_intent FROM payments p WHERE p.booking_id = b.id AND p.status = 'succeeded' ORDER BY at LIMIT 1), \
             b.facts \
             FROM bookings b LEFT JOIN session_types s ON s.id = b.session_type_id WHERE b.id = ?1"
        );
        let found = self
            .conn
            .query_row(&sql, [id], |row| {
                Ok((
                    summary_from_row(row)?,
                    row.get::<_, Option<String>>(10)?,
                    row.get::<_, Option<String>>(11)?,
                    row.get::<_, String>(12)?,
                ))
            })
            .optional()?;
        let Some((summary, invitee_uri, payment_intent, facts)) = found else {
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
        // The facts came with the row: what the page offers is the state machine's answer.
        let booking = crate::rows::parse_facts(id, &facts)?;
        let offer = coachdesk_domain::booking::coach_offer(&booking, OffsetDateTime::now_utc());
        Ok(BookingDetail {
            summary,
            invitee_uri,
            payment_intent,
            audit,
            actions: OfferedActions {
                cancel: offer.cancel,
                refund: offer.refund,
                no_show: offer.no_show,
                resend_link: offer.resend_link,
            },
        })
    }

    /// Bookings flagged for the coach, soonest session first.
    pub fn attention_items(&self) -> Result<Vec<AttentionItem>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, client_name, start_time, state, attention_codes, attention FROM bookings
             WHERE attention IS NOT NULL ORDER BY start_time IS NULL, start_time LIMIT 500",
        )?;
        let rows = stmt.query_map([], |row| {
            let codes: String = row.get(4)?;
            Ok(AttentionItem {
                booking_id: row.get(0)?,
                client_name: row.get(1)?,
                start_time: row.get(2)?,
                state: row.get(3)?,
                codes: codes.split_whitespace().map(str::to_owned).collect(),
                message: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_are_read_by_their_shape() {
        for (text, kind) in [
            ("pi_3Q0000", SearchKind::PaymentIntent),
            ("cs_test_a1", SearchKind::CheckoutSession),
            ("re_1", SearchKind::Refund),
            ("pyr_1", SearchKind::Refund),
            ("bk_3f9a", SearchKind::BookingId),
            ("https://api.calendly.com/x", SearchKind::InviteeUri),
            ("dana@example.com", SearchKind::Email),
            ("@example", SearchKind::Email),
            ("Dana", SearchKind::Text),
            ("pi_", SearchKind::Text),
        ] {
            assert_eq!(SearchKind::of(text), kind, "{text}");
        }
    }

    #[test]
    fn only_a_whole_address_is_looked_up_exactly() {
        assert!(is_whole_address("dana@example.com"));
        assert!(!is_whole_address("dana@example"));
        assert!(!is_whole_address("@example.com"));
        assert!(!is_whole_address("dana@example.c"));
        assert!(!is_whole_address("da na@example.com"));
    }
}
