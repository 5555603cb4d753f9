//! Reading and writing the booking aggregate and its searchable columns.

use coachdesk_domain::Booking;
use rusqlite::{params, Connection, OptionalExtension};

use crate::StoreError;

/// Loads a booking's facts.
pub(crate) fn load_booking(conn: &Connection, id: &str) -> Result<Option<Booking>, StoreError> {
    let facts: Option<String> = conn
        .prepare_cached("SELECT facts FROM bookings WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    facts
        .map(|json| {
            serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("booking {id}: {e}")))
        })
        .transpose()
}

/// Writes a booking's facts and the columns derived from them, with its payment and
/// refund rows (used to route Stripe events and to search).
pub(crate) fn save_booking(
    conn: &Connection,
    previous: &Booking,
    booking: &Booking,
    invitee_uuid: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    let facts = serde_json::to_string(booking).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let schedule = booking.schedule.as_ref();
    let invitee_uri = schedule.map(|s| s.invitee_uri.as_str());
    let uuid = invitee_uri
        .map(coachdesk_domain::provider::uuid_of)
        .or(invitee_uuid);
    let attention = booking.attention.first().map(|a| a.describe());
    let codes: Vec<&str> = booking.attention.iter().map(|a| a.code()).collect();
    let columns = params![
        booking.id,
        invitee_uri,
        uuid,
        booking.state.as_str(),
        attention,
        codes.join(" "),
        booking.terms.as_ref().map(|t| t.session_type_id.as_str()),
        schedule.and_then(|s| s.client_name.as_deref()),
        schedule.and_then(|s| s.client_email.as_deref()),
        schedule.map(|s| crate::ts(s.start)),
        booking.currency().map(|c| c.code().to_owned()),
        booking.captured_minor(),
        booking.refunded_minor(),
        facts,
        now,
    ];
    let exists = previous != &Booking::new(booking.id.clone());
    let identity_changed = previous.schedule != booking.schedule
        || previous.terms != booking.terms
        || previous.currency() != booking.currency();
    // Each statement sets only what it must: SQLite rewrites the index entries of every
    // indexed column an UPDATE names, changed or not.
    let sql = if !exists {
        "INSERT INTO bookings (id, invitee_uri, invitee_uuid, state, attention, attention_codes,
             session_type_id, client_name, client_email, start_time, currency, paid_minor,
             refunded_minor, facts, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)
         ON CONFLICT (id) DO UPDATE SET
             invitee_uri = COALESCE(excluded.invitee_uri, bookings.invitee_uri),
             invitee_uuid = COALESCE(excluded.invitee_uuid, bookings.invitee_uuid),
             state = excluded.state, attention = excluded.attention,
             attention_codes = excluded.attention_codes,
             session_type_id = COALESCE(excluded.session_type_id, bookings.session_type_id),
             client_name = COALESCE(excluded.client_name, bookings.client_name),
             client_email = COALESCE(excluded.client_email, bookings.client_email),
             start_time = COALESCE(excluded.start_time, bookings.start_time),
             currency = COALESCE(excluded.currency, bookings.currency),
             paid_minor = excluded.paid_minor, refunded_minor = excluded.refunded_minor,
             facts = excluded.facts, updated_at = excluded.updated_at"
    } else if identity_changed {
        "UPDATE bookings SET
             invitee_uri = COALESCE(?2, invitee_uri), invitee_uuid = COALESCE(?3, invitee_uuid),
             state = ?4, attention = ?5, attention_codes = ?6,
             session_type_id = COALESCE(?7, session_type_id),
             client_name = COALESCE(?8, client_name), client_email = COALESCE(?9, client_email),
             start_time = COALESCE(?10, start_time), currency = COALESCE(?11, currency),
             paid_minor = ?12, refunded_minor = ?13, facts = ?14, updated_at = ?15
         WHERE id = ?1"
    } else {
        // ?15 is the highest index, so every parameter binds even if unnamed here.
        "UPDATE bookings SET state = ?4, attention = ?5, attention_codes = ?6, paid_minor = ?12,
             refunded_minor = ?13, facts = ?14, updated_at = ?15
         WHERE id = ?1"
    };
    conn.prepare_cached(sql)?.execute(columns)?;

    if previous.payments != booking.payments {
        save_payments(conn, booking)?;
    }
    if previous.refunds != booking.refunds {
        save_refunds(conn, booking, now)?;
    }
    Ok(())
}

fn save_payments(conn: &Connection, booking: &Booking) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM payments WHERE booking_id = ?1")?
        .execute([&booking.id])?;
    let mut insert_payment = conn.prepare_cached(
        "INSERT INTO payments (booking_id, checkout_session, payment_intent, amount_minor,
             currency, status, carried, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for payment in booking.payments.values() {
        let fact = &payment.fact;
        insert_payment.execute(params![
            booking.id,
            fact.checkout_session,
            fact.payment_intent,
            fact.amount.minor,
            fact.amount.currency.code(),
            serde_json::to_value(fact.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned)),
            payment.carried_from.is_some(),
            crate::ts(fact.at),
        ])?;
    }

    Ok(())
}

fn save_refunds(conn: &Connection, booking: &Booking, now: &str) -> Result<(), StoreError> {
    // Upsert, so each refund keeps the time this app first knew of it (for the metrics).
    let mut upsert = conn.prepare_cached(
        "INSERT INTO refunds (booking_id, refund_key, refund_id, payment_intent, amount_minor,
             currency, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (booking_id, refund_key) DO UPDATE SET refund_id = excluded.refund_id,
             payment_intent = excluded.payment_intent, amount_minor = excluded.amount_minor,
             currency = excluded.currency, status = excluded.status",
    )?;
    for (key, refund) in &booking.refunds {
        upsert.execute(params![
            booking.id,
            key,
            refund.refund_id,
            refund.payment_intent,
            refund.amount.minor,
            refund.amount.currency.code(),
            serde_json::to_value(refund.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned)),
            now,
        ])?;
    }
    Ok(())
}
