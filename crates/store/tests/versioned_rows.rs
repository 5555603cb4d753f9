//! Rows written before persisted JSON carried a version (a bare booking, a bare effect) still
//! read as the same booking and the same effects.

use coachdesk_store::Store;
use rusqlite::{params, Connection};
use time::macros::datetime;
use time::OffsetDateTime;

mod common;
use common::{book_and_pay, store};

const NOW: OffsetDateTime = datetime!(2026-11-20 12:00 UTC);
const LATER: OffsetDateTime = datetime!(2027-01-01 00:00 UTC);

/// A booking's facts as a build before versions wrote them ({id} and {st} are the ids this
/// run generated).
const OLD_FACTS: &str = r#"{"id":"{id}","state":"confirmed","attention":[],"schedule":{"invitee_uri":"https://api.calendly.com/scheduled_events/EVT0000000000001/invitees/INV0000000000001","event_uri":"https://api.calendly.com/scheduled_events/EVT0000000000001","event_type_uri":"https://api.calendly.com/event_types/ETY0000000000060","event_name":"Coaching session (60 min)","start":"2026-11-27T10:00:00Z","end":"2026-11-27T11:00:00Z","client_name":"Dana Client","client_email":"dana.client@example.com","timezone":"Europe/Berlin","booked_at":"2026-11-20T09:15:02.11833Z"},"terms":{"session_type_id":"{st}","price":{"minor":15000,"currency":"EUR"},"policy":{"tiers":[{"min_hours_before":48,"percent":100},{"min_hours_before":24,"percent":50}]},"payment_window_minutes":1440},"cancellation":null,"rescheduled_to":null,"rescheduled_from":null,"payments":{"cs_test_a1B2c3D4e5F6g7H8":{"checkout_session":"cs_test_a1B2c3D4e5F6g7H8","payment_intent":"pi_3Q0000000000000000000001","amount":{"minor":15000,"currency":"EUR"},"status":"succeeded","at":"2025-11-20T09:16:00Z","carried_from":null}},"refunds":{},"charge_refunded":{},"dispute":null,"no_show_at":null,"no_show_last_at":null,"no_show_cleared_at":null,"timers_fired":[],"manual":null,"failed_effects":{},"dismissed":[],"link_resends":{}}"#;

/// Outbox payloads as a build before versions wrote them, by effect kind and key.
const OLD_PAYLOADS: [(&str, &str); 3] = [
    (
        "send_email",
        r#"{"type":"send_email","email":"confirmation"}"#,
    ),
    ("notify", r#"{"type":"notify","notice":"payment_received"}"#),
    (
        "schedule_timer",
        r#"{"type":"schedule_timer","timer":"session_ended","at":"2026-11-27T11:00:00Z"}"#,
    ),
];

#[test]
fn unversioned_facts_and_payloads_read_as_before() {
    let (_dir, path, mut store) = store();
    let id = book_and_pay(&mut store, NOW);
    let booking = store.booking(&id).unwrap().unwrap();
    let effects = store.due_effects(LATER, 100).unwrap();

    let conn = Connection::open(&path).unwrap();
    let facts: String = conn
        .query_row(
            "SELECT facts FROM bookings WHERE id = ?1",
            [id.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert!(facts.starts_with(r#"{"v":1,"data":{"#), "{facts}");
    let written: serde_json::Value = serde_json::from_str(&facts).unwrap();
    let session_type = written["data"]["terms"]["session_type_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let old = OLD_FACTS
        .replace("{id}", id.as_str())
        .replace("{st}", &session_type);
    conn.execute(
        "UPDATE bookings SET facts = ?2 WHERE id = ?1",
        params![id.as_str(), old],
    )
    .unwrap();
    for (kind, payload) in OLD_PAYLOADS {
        let changed = conn
            .execute(
                "UPDATE outbox SET payload = ?2 WHERE kind = ?1 AND json_extract(payload, '$.data') = json(?2)",
                params![kind, payload],
            )
            .unwrap();
        assert_eq!(changed, 1, "{payload}");
    }
    drop(conn);

    let reopened = Store::open(&path).unwrap();
    assert_eq!(reopened.booking(&id).unwrap().unwrap(), booking);
    assert_eq!(reopened.due_effects(LATER, 100).unwrap(), effects);
    drop(store);
}
