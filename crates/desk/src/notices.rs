//! What the coach is told outside the pages: the words of the notices sync raises (a new
//! booking, a payment, a failure), and which dashboard alerts are news. The shell shows
//! them as toasts and native notifications.

use std::collections::HashMap;
use std::sync::Mutex;

use coachdesk_domain::booking::{BookingId, Notice};
use coachdesk_protocol::desk::{Alert, AlertLevel};
use coachdesk_protocol::live::ToastKind;
use coachdesk_store::{Store, StoreError};
use time::OffsetDateTime;

use crate::Alerts;

/// Who a notice is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub name: String,
    pub start: OffsetDateTime,
}

/// The words of a notice (pure).
pub fn describe(notice: Notice, client: Option<&Client>) -> (ToastKind, String, String) {
    let who = client.map_or_else(|| "A client".to_owned(), |c| c.name.clone());
    let when = client
        .map(|c| {
            c.start
                .format(time::macros::format_description!(
                    "[weekday repr:short] [day] [month repr:short], [hour]:[minute] UTC"
                ))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let session = if when.is_empty() {
        "a session".to_owned()
    } else {
        format!("the session on {when}")
    };
    match notice {
        Notice::NewBooking => (
            ToastKind::NewBooking,
            "New booking".to_owned(),
            format!("{who} booked {session}."),
        ),
        Notice::PaymentReceived => (
            ToastKind::Payment,
            "Payment received".to_owned(),
            format!("{who} paid for {session}."),
        ),
        Notice::PaymentFailed => (
            ToastKind::Failure,
            "Payment failed".to_owned(),
            format!("The payment of {who} for {session} failed; the booking shows what to do."),
        ),
        Notice::NeedsAttention => (
            ToastKind::Attention,
            "Needs your attention".to_owned(),
            format!("The booking of {who} needs a look: see Needs attention on the dashboard."),
        ),
    }
}

/// The client a notice about `booking_id` names, if the booking has a schedule.
pub fn notice_client(store: &Store, booking_id: &BookingId) -> Option<Client> {
    store
        .booking(booking_id)
        .ok()
        .flatten()
        .and_then(|booking| booking.schedule)
        .and_then(|schedule| {
            Some(Client {
                name: schedule.client_name.or(schedule.client_email)?,
                start: schedule.start,
            })
        })
}

/// How often the app looks at the alerts (only when the store changed since the last look).
pub const ALERT_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(20);

/// The alerts the coach was told about, so each is announced once when it is raised or
/// grows more severe, not at every check while it lasts.
#[derive(Debug, Default)]
pub struct AlertWatch {
    told: HashMap<String, AlertLevel>,
    checked_at_version: Option<u64>,
}

impl AlertWatch {
    /// The alerts of `current` not yet told at their level (new, or now more severe).
    /// An alert that cleared is forgotten, so its return is told again (pure).
    pub fn raised(&mut self, current: &[Alert]) -> Vec<Alert> {
        self.told
            .retain(|code, _| current.iter().any(|alert| &alert.code == code));
        let mut raised = Vec::new();
        for alert in current {
            let before = self.told.insert(alert.code.clone(), alert.level);
            if before.is_none_or(|level| level < alert.level) {
                raised.push(alert.clone());
            }
        }
        raised
    }

    /// Evaluates the dashboard's alerts (last 30 days, the coach's thresholds) when the
    /// store changed since the last check; answers the newly raised ones, to be told.
    pub fn check(
        &mut self,
        store: &Mutex<Store>,
        now: OffsetDateTime,
    ) -> Result<Vec<Alert>, StoreError> {
        let report = {
            let store = crate::lock(store);
            let version = store.change_count();
            if self.checked_at_version == Some(version) {
                return Ok(Vec::new());
            }
            self.checked_at_version = Some(version);
            Alerts::dashboard_alerts(&*store, now, ALERT_DAYS)?
        };
        Ok(self.raised(&report.alerts))
    }
}

/// The days the alerts look back over (the dashboard's window).
const ALERT_DAYS: u32 = 30;

/// The toast kind and title of an alert (pure).
pub fn alert_words(alert: &Alert) -> (ToastKind, String) {
    let what = match alert.code.as_str() {
        "webhook_failures" => "webhooks failing",
        "payment_failures" => "payments failing",
        "state_machine" => "events the bookings could not take",
        _ => "see the dashboard",
    };
    match alert.level {
        AlertLevel::Critical => (ToastKind::Failure, format!("Critical alert: {what}")),
        AlertLevel::Warning => (ToastKind::Attention, format!("Alert: {what}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(code: &str, level: AlertLevel) -> Alert {
        Alert {
            code: code.into(),
            level,
            message: format!("{code} message"),
            way_out: String::new(),
            rate_percent: None,
        }
    }

    #[test]
    fn an_alert_is_told_once_again_when_it_worsens_and_again_after_it_cleared() {
        let mut watch = AlertWatch::default();
        let warn = alert("payment_failures", AlertLevel::Warning);
        let critical = alert("payment_failures", AlertLevel::Critical);
        assert_eq!(
            watch.raised(std::slice::from_ref(&warn)),
            vec![warn.clone()]
        );
        assert!(
            watch.raised(std::slice::from_ref(&warn)).is_empty(),
            "told once"
        );
        assert_eq!(
            watch.raised(std::slice::from_ref(&critical)),
            vec![critical.clone()]
        );
        assert!(
            watch.raised(std::slice::from_ref(&warn)).is_empty(),
            "calming down is not news"
        );
        assert!(watch.raised(&[]).is_empty());
        assert_eq!(
            watch.raised(std::slice::from_ref(&warn)),
            vec![warn],
            "back again"
        );
    }

    #[test]
    fn a_failing_webhook_on_a_real_file_raises_one_alert_once() {
        use coachdesk_domain::provider::Provider;
        use coachdesk_store::Source;

        let dir = tempfile::tempdir().unwrap();
        let store = Mutex::new(Store::open(&dir.path().join("alerts.sqlite")).unwrap());
        let mut watch = AlertWatch::default();
        let now = OffsetDateTime::now_utc();
        assert!(
            watch.check(&store, now).unwrap().is_empty(),
            "nothing wrong yet"
        );

        // An unreadable Stripe body: 1 of 1 webhooks failed, a critical alert.
        store
            .lock()
            .unwrap()
            .apply_provider_event(Provider::Stripe, b"{\"id\": 5}", Source::Relay, now)
            .unwrap();
        let raised = watch.check(&store, now).unwrap();
        assert_eq!(raised.len(), 1);
        assert_eq!(
            alert_words(&raised[0]),
            (
                ToastKind::Failure,
                "Critical alert: webhooks failing".to_owned()
            )
        );
        assert!(
            raised[0].message.contains("could not be processed"),
            "{}",
            raised[0].message
        );

        // Nothing changed: not evaluated again, not told again.
        assert!(watch.check(&store, now).unwrap().is_empty());
    }

    #[test]
    fn notices_name_the_client_and_the_session() {
        let client = Client {
            name: "Dana Client".into(),
            start: time::macros::datetime!(2026-11-27 10:00 UTC),
        };
        let (kind, title, body) = describe(Notice::PaymentReceived, Some(&client));
        assert_eq!(kind, ToastKind::Payment);
        assert_eq!(title, "Payment received");
        assert_eq!(
            body,
            "Dana Client paid for the session on Fri 27 Nov, 10:00 UTC."
        );
        let (kind, _, body) = describe(Notice::PaymentFailed, None);
        assert_eq!(kind, ToastKind::Failure);
        assert!(body.starts_with("The payment of A client for a session failed"));
    }
}
