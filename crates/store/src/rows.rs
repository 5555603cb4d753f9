//! Reading and writing the booking aggregate and its searchable columns.

use coachdesk_domain::{Booking, BookingId};
use rusqlite::{params, Connection, OptionalExtension};

use crate::StoreError;

/// Loads a booking's facts.
pub(crate) fn load_booking(
    conn: &Connection,
    id: &BookingId,
) -> Result<Option<Booking>, StoreError> {
    let facts: Option<String> = conn
        .prepare_cached("SELECT facts FROM bookings WHERE id = ?1")?
        .query_row([id.as_str()], |row| row.get(0))
        .optional()?;
    facts
        .map(|json| parse_facts(id.as_str(), &json))
        .transpose()
}

/// A booking from its stored facts JSON.
pub(crate) fn parse_facts(id: &str, json: &str) -> Result<Booking, StoreError> {
    crate::versioned::from_json(json).map_err(|e| StoreError::Corrupt(format!("booking {id}: {e}")))
}

/// The columns a booking's facts give (what the list and the routing search by).
#[derive(Debug, PartialEq)]
struct Columns<'a> {
    invitee_uri: Option<&'a str>,
    invitee_uuid: Option<&'a str>,
    state: &'static str,
    attention: Option<String>,
    attention_codes: String,
    session_type_id: Option<&'a str>,
    client_name: Option<&'a str>,
    client_email: Option<&'a str>,
    start_time: Option<String>,
    currency: Option<String>,
    paid_minor: i64,
    refunded_minor: i64,
    /// When the client booked, when it was cancelled, and the booking it reschedules
    /// (what the business metrics count by; not indexed, so always written).
    booked_at: Option<String>,
    cancelled_at: Option<String>,
    rescheduled_from: Option<&'a str>,
}

/// A time as the metric columns hold it: UTC RFC 3339 to the second.
fn to_second(at: time::OffsetDateTime) -> String {
    crate::ts(at.replace_nanosecond(0).unwrap_or(at))
}

impl<'a> Columns<'a> {
    fn of(booking: &'a Booking, invitee_uuid: Option<&'a str>) -> Self {
        let schedule = booking.schedule.as_ref();
        let invitee_uri = schedule.map(|s| s.invitee_uri.as_str());
        let codes: Vec<&str> = booking.attention.iter().map(|a| a.code()).collect();
        Self {
            invitee_uri,
            invitee_uuid: invitee_uri
                .map(coachdesk_domain::provider::uuid_of)
                .or(invitee_uuid),
            state: booking.state.as_str(),
            attention: booking.attention.first().map(|a| a.describe()),
            attention_codes: codes.join(" "),
            session_type_id: booking.terms.as_ref().map(|t| t.session_type_id.as_str()),
            client_name: schedule.and_then(|s| s.client_name.as_deref()),
            client_email: schedule.and_then(|s| s.client_email.as_deref()),
            start_time: schedule.map(|s| crate::ts(s.start)),
            currency: booking.currency().map(|c| c.code().to_owned()),
            paid_minor: booking.captured_minor(),
            refunded_minor: booking.refunded_minor(),
            booked_at: schedule.map(|s| to_second(s.booked_at)),
            cancelled_at: booking.cancellation.as_ref().map(|c| to_second(c.at)),
            rescheduled_from: booking.rescheduled_from.as_deref(),
        }
    }
}

/// The UPDATE that sets only the columns whose value changed. SQLite rewrites the index
/// entries of every indexed column an UPDATE names, changed or not, so an unchanged one is
/// left out. A column the new facts leave empty keeps what the row has (as the INSERT's
/// values only ever fill in). Parameters are numbered as in the INSERT; `?15` ends every
/// variant, as do the unindexed metric columns `?16`-`?18`, so all eighteen bind.
fn update_sql(before: &Columns, after: &Columns) -> String {
    let mut sql = String::from("UPDATE bookings SET ");
    let mut set = |changed: bool, clause: &str| {
        if changed {
            sql.push_str(clause);
            sql.push_str(", ");
        }
    };
    let filled = |b: Option<&str>, a: Option<&str>| a.is_some() && a != b;
    set(
        filled(before.invitee_uri, after.invitee_uri),
        "invitee_uri = ?2",
    );
    set(
        filled(before.invitee_uuid, after.invitee_uuid),
        "invitee_uuid = ?3",
    );
    set(before.state != after.state, "state = ?4");
    set(before.attention != after.attention, "attention = ?5");
    set(
        before.attention_codes != after.attention_codes,
        "attention_codes = ?6",
    );
    set(
        filled(before.session_type_id, after.session_type_id),
        "session_type_id = ?7",
    );
    set(
        filled(before.client_name, after.client_name),
        "client_name = ?8",
    );
    set(
        filled(before.client_email, after.client_email),
        "client_email = ?9",
    );
    set(
        filled(before.start_time.as_deref(), after.start_time.as_deref()),
        "start_time = ?10",
    );
    set(
        filled(before.currency.as_deref(), after.currency.as_deref()),
        "currency = ?11",
    );
    set(before.paid_minor != after.paid_minor, "paid_minor = ?12");
    set(
        before.refunded_minor != after.refunded_minor,
        "refunded_minor = ?13",
    );
    sql.push_str(
        "booked_at = ?16, cancelled_at = ?17, rescheduled_from = ?18, facts = ?14, updated_at = ?15 WHERE id = ?1",
    );
    sql
}

/// Writes a booking's facts and the columns derived from them, with its payment and
/// refund rows (used to route Stripe events and to search). `previous` is the booking as
/// stored, `None` when it has no row yet.
pub(crate) fn save_booking(
    conn: &Connection,
    previous: Option<&Booking>,
    booking: &Booking,
    invitee_uuid: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    let facts =
        crate::versioned::to_json(booking).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let after = Columns::of(booking, invitee_uuid);
    let values = params![
        booking.id.as_str(),
        after.invitee_uri,
        after.invitee_uuid,
        after.state,
        after.attention,
        after.attention_codes,
        after.session_type_id,
        after.client_name,
        after.client_email,
        after.start_time,
        after.currency,
        after.paid_minor,
        after.refunded_minor,
        facts,
        now,
        after.booked_at,
        after.cancelled_at,
        after.rescheduled_from,
    ];
    match previous {
        // A new row is a plain INSERT (an upsert costs SQLite a statement journal).
        None => conn
            .prepare_cached(
                "INSERT INTO bookings (id, invitee_uri, invitee_uuid, state, attention,
                     attention_codes, session_type_id, client_name, client_email, start_time,
                     currency, paid_minor, refunded_minor, facts, created_at, updated_at,
                     booked_at, cancelled_at, rescheduled_from)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15,
                     ?16, ?17, ?18)",
            )?
            .execute(values)?,
        Some(previous) => {
            let before = Columns::of(previous, None);
            conn.prepare_cached(&update_sql(&before, &after))?
                .execute(values)?
        }
    };

    let empty = Booking::new(booking.id.clone());
    let previous = previous.unwrap_or(&empty);
    if previous.payments != booking.payments {
        save_payments(conn, previous, booking)?;
    }
    if previous.refunds != booking.refunds {
        save_refunds(conn, previous, booking, now)?;
    }
    Ok(())
}

/// Writes the payment rows that changed: one single-row statement each.
fn save_payments(
    conn: &Connection,
    previous: &Booking,
    booking: &Booking,
) -> Result<(), StoreError> {
    for session in previous.payments.keys() {
        if !booking.payments.contains_key(session) {
            conn.prepare_cached(
                "DELETE FROM payments WHERE booking_id = ?1 AND checkout_session = ?2",
            )?
            .execute([booking.id.as_str(), session.as_str()])?;
        }
    }
    for (session, payment) in &booking.payments {
        let before = previous.payments.get(session);
        if before == Some(payment) {
            continue;
        }
        let sql = if before.is_none() {
            "INSERT INTO payments (booking_id, checkout_session, payment_intent, amount_minor,
                 currency, status, carried, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        } else {
            "UPDATE payments SET payment_intent = ?3, amount_minor = ?4, currency = ?5,
                 status = ?6, carried = ?7, at = ?8
             WHERE booking_id = ?1 AND checkout_session = ?2"
        };
        let fact = &payment.fact;
        conn.prepare_cached(sql)?.execute(params![
            booking.id.as_str(),
            session,
            fact.payment_intent,
            fact.amount.minor,
            fact.amount.currency.code(),
            payment_status(fact.status),
            payment.carried_from.is_some(),
            crate::ts(fact.at),
        ])?;
    }
    Ok(())
}

/// Writes the refund rows that changed; each keeps the time this app first knew of it
/// (for the metrics).
fn save_refunds(
    conn: &Connection,
    previous: &Booking,
    booking: &Booking,
    now: &str,
) -> Result<(), StoreError> {
    // A refund made outside the app leaves a rescheduled booking for the one its payment
    // moved to (`Booking::handed_on`): its row goes with it.
    for key in previous.refunds.keys() {
        if !booking.refunds.contains_key(key) {
            conn.prepare_cached("DELETE FROM refunds WHERE booking_id = ?1 AND refund_key = ?2")?
                .execute([booking.id.as_str(), key.as_str()])?;
        }
    }
    for (key, refund) in &booking.refunds {
        if previous.refunds.get(key) == Some(refund) {
            continue;
        }
        // An upsert keeps the row's first `created_at` (refunds are rare: one statement each).
        let sql = "INSERT INTO refunds (booking_id, refund_key, refund_id, payment_intent,
                 amount_minor, currency, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (booking_id, refund_key) DO UPDATE SET refund_id = excluded.refund_id,
                 payment_intent = excluded.payment_intent, amount_minor = excluded.amount_minor,
                 currency = excluded.currency, status = excluded.status";
        conn.prepare_cached(sql)?.execute(params![
            booking.id.as_str(),
            key,
            refund.refund_id,
            refund.payment_intent,
            refund.amount.minor,
            refund.amount.currency.code(),
            refund_status(refund.status),
            now,
        ])?;
    }
    Ok(())
}

fn payment_status(status: coachdesk_domain::booking::PaymentStatus) -> Option<String> {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

fn refund_status(status: coachdesk_domain::booking::RefundStatus) -> Option<String> {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use time::macros::datetime;

    /// Every write only touches the columns that changed, so after many histories (demo
    /// states, bulk bookings with payments, refunds, cancellations and reschedules) each
    /// row must still hold exactly what its facts give, and its payment and refund rows
    /// exactly the booking's.
    #[test]
    fn every_row_holds_what_its_facts_give() {
        let mut store = Store::open_in_memory().unwrap();
        let now = datetime!(2026-06-01 12:00 UTC);
        crate::samples::seed(&mut store, now, 120);
        let conn = &store.conn;
        let mut rows = conn
            .prepare(
                "SELECT id, invitee_uri, invitee_uuid, state, attention, attention_codes,
                     session_type_id, client_name, client_email, start_time, currency,
                     paid_minor, refunded_minor, booked_at, cancelled_at, rescheduled_from
                 FROM bookings",
            )
            .unwrap();
        let rows: Vec<(String, [Option<String>; 13], i64, i64)> = rows
            .query_map([], |r| {
                let mut text: [Option<String>; 13] = Default::default();
                for (i, slot) in text.iter_mut().enumerate() {
                    let column = if i < 10 { i + 1 } else { i + 3 };
                    *slot = r.get(column)?;
                }
                Ok((r.get(0)?, text, r.get(11)?, r.get(12)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(rows.len() > 120, "{} bookings", rows.len());
        let (mut paid, mut refunded) = (0, 0);
        for (id, text, paid_minor, refunded_minor) in rows {
            let booking = load_booking(conn, &BookingId::from_stored(id.as_str()))
                .unwrap()
                .unwrap();
            let want = Columns::of(&booking, text[1].as_deref());
            let t = |i: usize| text[i].as_deref();
            let got = Columns {
                invitee_uri: t(0),
                invitee_uuid: t(1),
                state: want.state,
                attention: text[3].clone(),
                attention_codes: text[4].clone().unwrap_or_default(),
                session_type_id: t(5),
                client_name: t(6),
                client_email: t(7),
                start_time: text[8].clone(),
                currency: text[9].clone(),
                paid_minor,
                refunded_minor,
                booked_at: text[10].clone(),
                cancelled_at: text[11].clone(),
                rescheduled_from: t(12),
            };
            assert_eq!(t(2), Some(want.state), "{id}");
            assert_eq!(got, want, "{id}");

            let payments: Vec<(String, Option<String>, i64, bool)> = conn
                .prepare(
                    "SELECT checkout_session, payment_intent, amount_minor, carried
                     FROM payments WHERE booking_id = ?1 ORDER BY checkout_session",
                )
                .unwrap()
                .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let facts: Vec<_> = booking
                .payments
                .iter()
                .map(|(session, p)| {
                    (
                        session.clone(),
                        p.fact.payment_intent.clone(),
                        p.fact.amount.minor,
                        p.carried_from.is_some(),
                    )
                })
                .collect();
            assert_eq!(payments, facts, "{id}");
            paid += usize::from(!facts.is_empty());

            let refunds: Vec<(String, i64)> = conn
                .prepare(
                    "SELECT refund_key, amount_minor FROM refunds WHERE booking_id = ?1
                     ORDER BY refund_key",
                )
                .unwrap()
                .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let facts: Vec<_> = booking
                .refunds
                .iter()
                .map(|(key, r)| (key.clone(), r.amount.minor))
                .collect();
            assert_eq!(refunds, facts, "{id}");
            refunded += usize::from(!facts.is_empty());
        }
        assert!(
            paid > 50 && refunded > 0,
            "{paid} paid, {refunded} refunded"
        );
    }
}
