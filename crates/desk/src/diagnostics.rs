//! Settings' "Copy diagnostics": one report a coach can paste into a support request.
//!
//! The shell gathers the facts only it can see (versions, paths, the keychain in use, the
//! relay's answer, sync's counters) and hands them to [`diagnostics`], which adds what the
//! store knows and scrubs every free text (sync's last error, failed effects, the relay's
//! answer) before it goes into the report: the coach's clients' names and emails as the
//! store holds them, anything shaped like an email, a secret key or token, or an amount.
//! The relay's address keeps its scheme, host and port only (a token could sit in its
//! query or user part).

use std::sync::OnceLock;

use coachdesk_protocol::settings::{Diagnostics, SyncDiagnostics};
use coachdesk_store::{Store, StoreError};
use coachdesk_sync::{KeychainBackend, SyncStatus};
use regex::Regex;

/// How many failed effects the report lists.
const FAILED_EFFECTS: usize = 5;

/// What the shell gathers for the report (see the module's doc).
#[derive(Debug, Clone)]
pub struct DiagnosticFacts {
    pub app_version: String,
    pub tauri_version: String,
    pub webview_version: Option<String>,
    pub os: String,
    pub mode: String,
    pub data_dir: String,
    pub log_file: Option<String>,
    pub keychain: KeychainBackend,
    /// The relay URL as saved (it is reduced to scheme, host and port here).
    pub relay_url: Option<String>,
    /// The relay's answer just now: reachable or not, and the words saying so.
    pub relay_check: Option<(bool, String)>,
    /// `None` when sync is not running.
    pub sync: Option<SyncStatus>,
    pub focus_requests: u64,
}

/// The report, with every free text scrubbed (see the module's doc).
pub fn diagnostics(store: &Store, facts: DiagnosticFacts) -> Result<Diagnostics, StoreError> {
    let scrubber = Scrubber::new(store.client_identities()?);
    let failed_effects: Vec<String> = store
        .outbox_entries(None)?
        .into_iter()
        .rev()
        .filter(|entry| entry.status == "failed")
        .take(FAILED_EFFECTS)
        .map(|entry| {
            let error = entry.last_error.as_deref().unwrap_or("no error recorded");
            format!(
                "{} (attempts {}): {}",
                entry.kind,
                entry.attempts,
                scrubber.scrub(error)
            )
        })
        .collect();
    let sync = facts.sync.map(|status| SyncDiagnostics {
        connected: status.connected,
        last_pull: status.last_sync,
        cursor: status.relay_cursor,
        events_applied: status.events_applied,
        pull_rounds: status.pull_rounds,
        executor_passes: status.executor_passes,
        queue_depth: status.queue_depth,
        effects_done: status.effects_done,
        effects_failed: status.effects_failed,
        webhooks_paused: status.webhooks_paused,
        last_reconcile_at: status.last_reconcile_at,
        last_error: status.last_error.map(|e| scrubber.scrub(&e)),
        sealing: Some(status.sealing.words().to_owned()),
        relay_checkout: Some(scrubber.scrub(&status.relay_checkout.words())),
    });
    let mut report = Diagnostics {
        app_version: facts.app_version,
        tauri_version: facts.tauri_version,
        webview_version: facts.webview_version,
        os: facts.os,
        mode: facts.mode,
        data_dir: facts.data_dir,
        schema_version: store.schema_version()?,
        log_file: facts.log_file,
        keychain: facts.keychain.name().to_owned(),
        keychain_survives_restart: facts.keychain.survives_restart(),
        relay_url: facts.relay_url.as_deref().map(relay_origin),
        relay_reachable: facts.relay_check.as_ref().map(|(ok, _)| *ok),
        relay_check: facts.relay_check.map(|(_, words)| scrubber.scrub(&words)),
        sync,
        failed_effects,
        focus_requests: facts.focus_requests,
        text: String::new(),
    };
    report.text = render(&report);
    Ok(report)
}

/// The relay's scheme, host and port; never its user part, path or query.
pub fn relay_origin(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(parsed) => match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", parsed.scheme()),
            (Some(host), None) => format!("{}://{host}", parsed.scheme()),
            (None, _) => "(an address without a host)".to_owned(),
        },
        Err(_) => "(not a valid URL)".to_owned(),
    }
}

/// The report as the plain text that is copied (pure).
pub fn render(report: &Diagnostics) -> String {
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".to_owned());
    let mut lines = vec![
        "Coachdesk diagnostics".to_owned(),
        format!("App: {} ({} mode)", report.app_version, report.mode),
        format!("Tauri: {}", report.tauri_version),
        format!("Webview: {}", or_none(&report.webview_version)),
        format!("OS: {}", report.os),
        format!("Data folder: {}", report.data_dir),
        format!("Database schema: {}", report.schema_version),
        format!("Log file: {}", or_none(&report.log_file)),
        format!(
            "Keychain: {}{}",
            report.keychain,
            if report.keychain_survives_restart {
                ""
            } else {
                " (secrets will not survive a restart)"
            }
        ),
    ];
    match (&report.relay_url, report.relay_reachable) {
        (None, _) => lines.push("Relay: not set".to_owned()),
        (Some(url), reachable) => {
            let answer = match reachable {
                Some(true) => "reachable",
                Some(false) => "NOT reachable",
                None => "not checked",
            };
            lines.push(format!("Relay: {url}, {answer}"));
            if let Some(words) = &report.relay_check {
                lines.push(format!("Relay check: {words}"));
            }
        }
    }
    match &report.sync {
        None => lines.push("Sync: not running".to_owned()),
        Some(sync) => {
            lines.push(format!(
                "Sync: {}{}",
                if sync.connected {
                    "connected"
                } else {
                    "not connected"
                },
                if sync.webhooks_paused {
                    ", webhook processing paused"
                } else {
                    ""
                }
            ));
            lines.push(format!("Last pull: {}", or_none(&sync.last_pull)));
            lines.push(format!(
                "Relay cursor: {}; events applied: {}; pull rounds: {}",
                sync.cursor, sync.events_applied, sync.pull_rounds
            ));
            lines.push(format!(
                "Executor passes: {}; effects waiting: {}, done: {}, failed: {}",
                sync.executor_passes, sync.queue_depth, sync.effects_done, sync.effects_failed
            ));
            lines.push(format!(
                "Last reconciliation: {}",
                or_none(&sync.last_reconcile_at)
            ));
            lines.push(format!("Last sync error: {}", or_none(&sync.last_error)));
            lines.push(format!("Relay sealing: {}", or_none(&sync.sealing)));
            lines.push(format!("Relay checkout: {}", or_none(&sync.relay_checkout)));
        }
    }
    if report.failed_effects.is_empty() {
        lines.push("Failed effects: none".to_owned());
    } else {
        lines.push("Failed effects (newest first):".to_owned());
        lines.extend(report.failed_effects.iter().map(|e| format!("  - {e}")));
    }
    lines.push(format!(
        "Second starts that brought this window forward: {}",
        report.focus_requests
    ));
    lines.join("\n") + "\n"
}

/// Removes what a support report must not carry from a free text.
#[derive(Debug)]
pub struct Scrubber {
    /// The clients' names and emails, longest first (so a full name goes before a part).
    identities: Vec<String>,
}

impl Scrubber {
    /// A scrubber for these client names and emails.
    pub fn new(identities: Vec<String>) -> Scrubber {
        let mut identities: Vec<String> = identities
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| s.chars().count() >= 2)
            .collect();
        // A name's parts too ("Dana" of "Dana Client"), when long enough to be a name.
        let parts: Vec<String> = identities
            .iter()
            .filter(|s| !s.contains('@'))
            .flat_map(|s| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .filter(|p| p.chars().count() >= 3)
            .collect();
        identities.extend(parts);
        identities.sort_by_key(|s| std::cmp::Reverse(s.len()));
        identities.dedup();
        Scrubber { identities }
    }

    /// `text` without client identities, emails, secrets, tokens or amounts.
    pub fn scrub(&self, text: &str) -> String {
        // A placeholder with no letters first, so "[client]" itself is never matched by a
        // client called Client.
        const MARK: &str = "\u{1}";
        let mut out = text.to_owned();
        for identity in &self.identities {
            out = replace_word_ignoring_case(&out, identity, MARK);
        }
        for (pattern, with) in patterns() {
            out = pattern.replace_all(&out, *with).into_owned();
        }
        out.replace(MARK, "[client]")
    }
}

/// The shapes scrubbed from every text, in order (compiled once).
fn patterns() -> &'static [(Regex, &'static str)] {
    static PATTERNS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            // Emails.
            (r"[\w.+-]+@[\w-]+(\.[\w-]+)+", "[email]"),
            // Stripe keys and webhook secrets, bearer tokens.
            (r"\b(sk|rk|pk|whsec)_[A-Za-z0-9_]+", "[secret]"),
            (r"(?i)\bbearer\s+\S+", "Bearer [secret]"),
            // Query strings and user parts of URLs (tokens travel there).
            (r"\?\S*", "?[query]"),
            (r"(https?://)[^/\s@]+@", "${1}[user]@"),
            // Long opaque tokens (API tokens, JWTs, hex keys).
            (r"[A-Za-z0-9_\-.]{32,}", "[token]"),
            // Amounts: a currency sign or code next to a number, or a decimal number.
            (r"[$€£¥]\s?\d[\d,.]*", "[amount]"),
            (r"\b\d[\d,.]*\s?[A-Z]{3}\b", "[amount]"),
            (r"\b[A-Z]{3}\s?\d[\d,.]*", "[amount]"),
            (r"\b\d+[.,]\d{1,3}\b", "[amount]"),
        ]
        .into_iter()
        .filter_map(|(pattern, with)| Regex::new(pattern).ok().map(|re| (re, with)))
        .collect()
    })
}

/// `text` with every whole-word, ASCII-case-insensitive occurrence of `word` replaced.
fn replace_word_ignoring_case(text: &str, word: &str, with: &str) -> String {
    let pattern = format!(r"(?i)(^|[^\w]){}($|[^\w])", regex::escape(word));
    match Regex::new(&pattern) {
        // Twice: two occurrences separated by one character share that boundary.
        Ok(re) => {
            let once = re.replace_all(text, format!("${{1}}{with}${{2}}").as_str());
            re.replace_all(&once, format!("${{1}}{with}${{2}}").as_str())
                .into_owned()
        }
        Err(_) => text.replace(word, with),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coachdesk_sync::KeychainBackend;

    fn facts(sync: Option<SyncStatus>) -> DiagnosticFacts {
        DiagnosticFacts {
            app_version: "0.1.0".into(),
            tauri_version: "2.12.5".into(),
            webview_version: Some("2.48.1".into()),
            os: "Debian GNU/Linux 12 (bookworm), x86_64".into(),
            mode: "test".into(),
            data_dir: "/home/coach/.local/share/coachdesk".into(),
            log_file: Some("/home/coach/.local/share/app.coachdesk.desktop/logs/coachdesk.log".into()),
            keychain: KeychainBackend::KernelSession,
            relay_url: Some("https://coach:hunter2@relay.example.net:8443/pull?token=abc123".into()),
            relay_check: Some((
                false,
                "The relay refused the token abc123def456abc123def456abc123def456 for dana@example.com".into(),
            )),
            sync,
            focus_requests: 2,
        }
    }

    #[test]
    fn a_report_over_a_store_with_clients_holds_no_secret_and_no_personal_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("diag.sqlite")).unwrap();
        coachdesk_demo::seed_demo(&mut store, time::OffsetDateTime::now_utc()).unwrap();
        let identities = store.client_identities().unwrap();
        assert!(
            identities.iter().any(|i| i == "Dana Client"),
            "{identities:?}"
        );
        assert!(
            identities.iter().any(|i| i == "dana@example.com"),
            "{identities:?}"
        );
        // A failed effect whose error names a client and an amount.
        let due = store
            .due_effects(
                time::OffsetDateTime::now_utc() + time::Duration::days(400),
                1,
            )
            .unwrap();
        let effect = due.first().expect("the demo data has an effect to run");
        store
            .fail_effect(
                effect.id,
                "Stripe refused 120.00 EUR for Dana Client <dana@example.com> with sk_test_51abcDEF",
            )
            .unwrap();
        let status = SyncStatus {
            connected: false,
            last_sync: Some("2026-12-05T10:00:00Z".into()),
            relay_cursor: 41,
            events_applied: 7,
            last_error: Some(
                "mail to Dana Client (DANA@EXAMPLE.COM) failed; Bearer eyJhbGciOiJIUzI1NiJ9.e30.x \
                 whsec_9a8b7c; refund of €35.50 for dana"
                    .into(),
            ),
            executor_passes: 12,
            pull_rounds: 30,
            sealing: coachdesk_sync::Sealing::On,
            ..SyncStatus::default()
        };

        let report = diagnostics(&store, facts(Some(status))).unwrap();

        let everything = serde_json::to_string(&report).unwrap();
        let lower = everything.to_lowercase();
        for identity in &identities {
            assert!(
                !lower.contains(&identity.to_lowercase()),
                "{identity} is in the report: {everything}"
            );
        }
        for forbidden in [
            "dana", "@example", "sk_test", "whsec_", "eyj", "hunter2", "abc123", "120.00", "35.50",
            "token=",
        ] {
            assert!(
                !lower.contains(forbidden),
                "{forbidden} is in the report: {everything}"
            );
        }
        // What support needs is still there.
        let text = &report.text;
        for needed in [
            "App: 0.1.0 (test mode)",
            "Tauri: 2.12.5",
            "OS: Debian GNU/Linux 12 (bookworm), x86_64",
            "Data folder: /home/coach/.local/share/coachdesk",
            "Log file: /home/coach/.local/share/app.coachdesk.desktop/logs/coachdesk.log",
            "Keychain: kernel session keyring (secrets will not survive a restart)",
            "Relay: https://relay.example.net:8443, NOT reachable",
            "Last pull: 2026-12-05T10:00:00Z",
            "Relay cursor: 41; events applied: 7; pull rounds: 30",
            "Executor passes: 12",
            "Last sync error: mail to [client] ([client]) failed",
            "Second starts that brought this window forward: 2",
            "Relay sealing: on: the relay keeps the coach's client data sealed for this install",
        ] {
            assert!(text.contains(needed), "{needed:?} missing from:\n{text}");
        }
        assert_eq!(report.failed_effects.len(), 1, "{text}");
        assert!(
            text.contains("Stripe refused [amount] for [client] <[client]> with [secret]"),
            "{text}"
        );
        assert_eq!(report.schema_version, store.schema_version().unwrap());
    }

    #[test]
    fn without_sync_or_relay_the_report_says_so() {
        let store = Store::open_in_memory().unwrap();
        let mut facts = facts(None);
        facts.relay_url = None;
        facts.relay_check = None;
        facts.keychain = KeychainBackend::SecretService;
        let report = diagnostics(&store, facts).unwrap();
        assert!(report.text.contains("Relay: not set"), "{}", report.text);
        assert!(report.text.contains("Sync: not running"), "{}", report.text);
        assert!(
            report.text.contains("Failed effects: none"),
            "{}",
            report.text
        );
        assert!(
            report
                .text
                .contains("Keychain: Secret Service (GNOME Keyring, KWallet)\n"),
            "{}",
            report.text
        );
    }

    #[test]
    fn scrubbing_keeps_ordinary_words_and_ids() {
        let scrubber = Scrubber::new(vec!["Jo Ann".into(), "jo@x.org".into()]);
        assert_eq!(
            scrubber.scrub("relay answered 502 at step 3; booking bk_12 paid by Jo Ann"),
            "relay answered 502 at step 3; booking bk_12 paid by [client]"
        );
        assert_eq!(
            scrubber.scrub("Joanne wrote"),
            "Joanne wrote",
            "a part shorter than three letters is not a name to scrub"
        );
    }

    #[test]
    fn the_relay_address_keeps_scheme_host_and_port_only() {
        assert_eq!(
            relay_origin("https://u:p@r.example/x?t=1"),
            "https://r.example"
        );
        assert_eq!(
            relay_origin("http://127.0.0.1:9000/"),
            "http://127.0.0.1:9000"
        );
        assert_eq!(relay_origin("not a url"), "(not a valid URL)");
    }
}
