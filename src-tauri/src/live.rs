//! The window stays live: the notices sync raises for the coach become toasts (and native
//! notifications), and one cheap poll, [`live_status`], tells the UI when the store changed
//! so the open page reloads without a restart.
//!
//! Polling a data version every second was chosen over pushed events: a page that mounts
//! late cannot miss it, it needs no event permissions, and it works the same in the mock
//! runtime the command tests use.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use coachdesk_domain::booking::{BookingId, Notice};
use coachdesk_protocol::desk::{Alert, AlertLevel};
use coachdesk_protocol::ipc::CommandError;
use coachdesk_protocol::live::{LiveStatus, Toast, ToastKind};
use coachdesk_store::Store;
use coachdesk_sync::Notifier;
use tauri::State;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::AppState;

/// How many toasts are kept for the window to pick up.
const KEEP: usize = 50;

/// Shows a toast outside the window (the OS notification centre).
pub type NativeSink = Box<dyn Fn(&Toast) + Send + Sync>;

/// The toasts raised in this run, newest last, and where else they are shown.
#[derive(Default)]
pub struct Toasts {
    items: Mutex<(u64, VecDeque<Toast>)>,
    native: OnceLock<NativeSink>,
}

impl Toasts {
    /// Sends every later toast to `sink` as well (set once, when the window exists).
    pub fn set_native(&self, sink: NativeSink) {
        let _ = self.native.set(sink);
    }

    /// Records a toast and shows it natively; returns it.
    pub fn push(
        &self,
        kind: ToastKind,
        title: String,
        body: String,
        booking_id: Option<String>,
    ) -> Toast {
        let toast = {
            let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
            items.0 += 1;
            let toast = Toast {
                id: items.0,
                kind,
                title,
                body,
                booking_id,
                at: OffsetDateTime::now_utc()
                    .format(&Rfc3339)
                    .unwrap_or_default(),
            };
            items.1.push_back(toast.clone());
            while items.1.len() > KEEP {
                items.1.pop_front();
            }
            toast
        };
        if let Some(sink) = self.native.get() {
            sink(&toast);
        }
        toast
    }

    /// Toasts with an id above `after`, oldest first.
    pub fn after(&self, after: u64) -> Vec<Toast> {
        let items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        items.1.iter().filter(|t| t.id > after).cloned().collect()
    }
}

/// The sync engine's notifier in the app: each notice becomes a toast naming the client.
pub struct DesktopNotifier {
    pub store: Arc<Mutex<Store>>,
    pub toasts: Arc<Toasts>,
}

impl Notifier for DesktopNotifier {
    fn notify(&self, booking_id: &BookingId, notice: Notice) {
        // The executor calls this between store writes, never holding the store's lock.
        let client = {
            let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
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
        };
        let (kind, title, body) = describe(notice, client.as_ref());
        tracing::info!(
            booking = booking_id.as_str(),
            ?notice,
            "notice for the coach"
        );
        self.toasts
            .push(kind, title, body, Some(booking_id.to_string()));
    }
}

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
    /// store changed since the last check, and raises a toast and a native notification
    /// for each newly raised one; answers how many.
    pub fn check(
        &mut self,
        store: &Mutex<Store>,
        toasts: &Toasts,
        now: OffsetDateTime,
    ) -> Result<usize, coachdesk_store::StoreError> {
        let report = {
            let store = store.lock().unwrap_or_else(|p| p.into_inner());
            let version = store.change_count();
            if self.checked_at_version == Some(version) {
                return Ok(0);
            }
            self.checked_at_version = Some(version);
            coachdesk_desk::Alerts::dashboard_alerts(&*store, now, ALERT_DAYS)?
        };
        let raised = self.raised(&report.alerts);
        for alert in &raised {
            let (kind, title) = alert_words(alert);
            toasts.push(kind, title, alert.message.clone(), None);
        }
        Ok(raised.len())
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

/// Checks the alerts every [`ALERT_CHECK_EVERY`] for as long as the app runs, in a
/// thread of its own (the query takes the store's lock for a few milliseconds).
pub fn spawn_alert_watcher(store: Arc<Mutex<Store>>, toasts: Arc<Toasts>) {
    let spawned = std::thread::Builder::new()
        .name("alert-watch".into())
        .spawn(move || {
            let mut watch = AlertWatch::default();
            loop {
                if let Err(err) = watch.check(&store, &toasts, OffsetDateTime::now_utc()) {
                    tracing::warn!(error = %err, "the alerts could not be evaluated");
                }
                std::thread::sleep(ALERT_CHECK_EVERY);
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "no alert notifications: the watcher did not start");
    }
}

/// Native notifications through Tauri's notification plugin (the freedesktop
/// notification service on Linux, the OS centres elsewhere). It sends in the background;
/// without a notification service nothing is shown there, and the toast is still in the
/// window.
pub fn desktop_sink<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> NativeSink {
    use tauri_plugin_notification::NotificationExt as _;
    Box::new(move |toast: &Toast| {
        let shown = app
            .notification()
            .builder()
            .title(&toast.title)
            .body(&toast.body)
            .show();
        if let Err(err) = shown {
            tracing::debug!(error = %err, "no desktop notification; the toast is in the window");
        }
    })
}

/// The window's poll: the store's change count and the toasts after `after_toast`.
#[tauri::command(rename_all = "snake_case")]
pub async fn live_status(
    state: State<'_, AppState>,
    after_toast: u64,
) -> Result<LiveStatus, CommandError> {
    Ok(LiveStatus {
        data_version: state.data_version(),
        toasts: state.toasts().after(after_toast),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn toasts_are_numbered_and_picked_up_after_an_id() {
        let toasts = Toasts::default();
        let shown = Arc::new(AtomicUsize::new(0));
        let counter = shown.clone();
        toasts.set_native(Box::new(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        let a = toasts.push(ToastKind::NewBooking, "a".into(), "".into(), None);
        let b = toasts.push(ToastKind::Payment, "b".into(), "".into(), None);
        assert_eq!((a.id, b.id), (1, 2));
        assert_eq!(toasts.after(1), vec![b]);
        assert!(toasts.after(2).is_empty());
        assert_eq!(shown.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn only_the_last_toasts_are_kept() {
        let toasts = Toasts::default();
        for i in 0..(KEEP + 5) {
            toasts.push(ToastKind::Failure, i.to_string(), String::new(), None);
        }
        let kept = toasts.after(0);
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[0].id, 6);
    }

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
    fn a_failing_webhook_on_a_real_file_raises_one_notification() {
        use coachdesk_domain::provider::Provider;
        use coachdesk_store::Source;

        let dir = tempfile::tempdir().unwrap();
        let store = Mutex::new(Store::open(&dir.path().join("alerts.sqlite")).unwrap());
        let toasts = Toasts::default();
        let natives = Arc::new(Mutex::new(Vec::new()));
        let seen = natives.clone();
        toasts.set_native(Box::new(move |t: &Toast| {
            seen.lock().unwrap().push(t.title.clone());
        }));
        let mut watch = AlertWatch::default();
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            watch.check(&store, &toasts, now).unwrap(),
            0,
            "nothing wrong yet"
        );

        // An unreadable Stripe body: 1 of 1 webhooks failed, a critical alert.
        store
            .lock()
            .unwrap()
            .apply_provider_event(Provider::Stripe, b"{\"id\": 5}", Source::Relay, now)
            .unwrap();
        assert_eq!(watch.check(&store, &toasts, now).unwrap(), 1);
        assert_eq!(
            *natives.lock().unwrap(),
            ["Critical alert: webhooks failing"]
        );
        let toast = &toasts.after(0)[0];
        assert_eq!(toast.kind, ToastKind::Failure);
        assert!(
            toast.body.contains("could not be processed"),
            "{}",
            toast.body
        );

        // Nothing changed: not evaluated again, not told again.
        assert_eq!(watch.check(&store, &toasts, now).unwrap(), 0);
        assert_eq!(natives.lock().unwrap().len(), 1);
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
