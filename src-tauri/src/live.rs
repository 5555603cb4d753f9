//! The window stays live: the notices sync raises for the coach become toasts (and native
//! notifications), and one cheap poll, [`live_status`], tells the UI when the store changed
//! so the open page reloads without a restart.
//!
//! Polling a data version every second was chosen over pushed events: a page that mounts
//! late cannot miss it, it needs no event permissions, and it works the same in the mock
//! runtime the command tests use.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use coachdesk_desk::notices;
use coachdesk_domain::booking::{BookingId, Notice};
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
        let client = notices::notice_client(&coachdesk_desk::lock(&self.store), booking_id);
        let (kind, title, body) = notices::describe(notice, client.as_ref());
        tracing::info!(
            booking = booking_id.as_str(),
            ?notice,
            "notice for the coach"
        );
        self.toasts
            .push(kind, title, body, Some(booking_id.to_string()));
    }
}

/// Checks the alerts every [`notices::ALERT_CHECK_EVERY`] for as long as the app runs, in a
/// thread of its own (the query takes the store's lock for a few milliseconds).
pub fn spawn_alert_watcher(store: Arc<Mutex<Store>>, toasts: Arc<Toasts>) {
    let spawned = std::thread::Builder::new()
        .name("alert-watch".into())
        .spawn(move || {
            let mut watch = notices::AlertWatch::default();
            loop {
                match watch.check(&store, OffsetDateTime::now_utc()) {
                    Ok(raised) => {
                        for alert in raised {
                            let (kind, title) = notices::alert_words(&alert);
                            toasts.push(kind, title, alert.message, None);
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "the alerts could not be evaluated"),
                }
                std::thread::sleep(notices::ALERT_CHECK_EVERY);
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
}
