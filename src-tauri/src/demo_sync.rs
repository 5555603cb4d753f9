//! Demo mode against the provider simulator: the app syncs through a real relay while the
//! simulator stands in for Stripe and Calendly, so a coach with no accounts sees bookings
//! arrive, get paid, cancelled and refunded.
//!
//! `scripts/run-demo` (and the live e2e harness, `tests/src/stack.rs`) start the simulator
//! and the relay and pass `COACHDESK_SIM_URL`, `COACHDESK_RELAY_URL` and
//! `COACHDESK_DEMO_RELAY_TOKEN`. The simulator's keys are held in memory
//! ([`MemorySecrets`]): demo mode never reads or writes the coach's keychain.

use coachdesk_sync::{MemorySecrets, Mode, Secret, SecretName, SyncConfig};

/// The Stripe key the demo uses at the simulator (it accepts any `sk_test_...`).
pub const DEMO_STRIPE_KEY: &str = "sk_test_coachdesk_demo";
/// The Calendly token the simulator accepts by default.
pub const DEMO_CALENDLY_TOKEN: &str = "sim-calendly-token";
/// The Calendly signing key the demo relay is started with (`scripts/run-demo`).
pub const DEMO_CALENDLY_SIGNING_KEY: &str = "calendly-signing-key-live-stack";

/// Where the demo's simulator and relay run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoStack {
    pub sim_url: String,
    pub relay_url: String,
    pub relay_token: String,
}

/// Why the demo's environment is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DemoStackError {
    #[error("COACHDESK_SIM_URL is set but {0} is not; scripts/run-demo sets all three")]
    Missing(&'static str),
}

impl DemoStack {
    /// Reads the three variables; `None` when no simulator is named (a demo on the
    /// sample data alone).
    pub fn from_env() -> Result<Option<DemoStack>, DemoStackError> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        DemoStack::from_vars(
            var("COACHDESK_SIM_URL"),
            var("COACHDESK_RELAY_URL"),
            var("COACHDESK_DEMO_RELAY_TOKEN"),
        )
    }

    /// The pure part of [`DemoStack::from_env`].
    pub fn from_vars(
        sim_url: Option<String>,
        relay_url: Option<String>,
        relay_token: Option<String>,
    ) -> Result<Option<DemoStack>, DemoStackError> {
        let Some(sim_url) = sim_url else {
            return Ok(None);
        };
        Ok(Some(DemoStack {
            sim_url: sim_url.trim_end_matches('/').to_owned(),
            relay_url: relay_url.ok_or(DemoStackError::Missing("COACHDESK_RELAY_URL"))?,
            relay_token: relay_token
                .ok_or(DemoStackError::Missing("COACHDESK_DEMO_RELAY_TOKEN"))?,
        }))
    }

    /// Sync settings: the relay, and the simulator as both providers' API. Short waits so
    /// the demo feels immediate.
    pub fn config(&self) -> SyncConfig {
        let mut config = SyncConfig::new(Mode::Test, &self.relay_url);
        config.stripe_base = format!("{}/", self.sim_url);
        config.calendly_base = self.sim_url.clone();
        config.long_poll = std::time::Duration::from_secs(5);
        config.executor_poll = std::time::Duration::from_secs(1);
        config.provider_timeout = std::time::Duration::from_secs(10);
        config
    }

    /// The simulator's keys and the relay token, in memory only.
    pub fn secrets(&self) -> MemorySecrets {
        let secrets = MemorySecrets::default();
        secrets.set(SecretName::StripeTestKey, Secret::new(DEMO_STRIPE_KEY));
        secrets.set(SecretName::CalendlyToken, Secret::new(DEMO_CALENDLY_TOKEN));
        secrets.set(
            SecretName::RelayToken,
            Secret::new(self.relay_token.clone()),
        );
        secrets.set(
            SecretName::CalendlySigningKey,
            Secret::new(DEMO_CALENDLY_SIGNING_KEY),
        );
        secrets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coachdesk_sync::SecretSource;

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn no_simulator_means_a_demo_on_sample_data_alone() {
        assert_eq!(DemoStack::from_vars(None, some("http://r"), None), Ok(None));
    }

    #[test]
    fn a_simulator_without_a_relay_token_is_refused_by_name() {
        let err = DemoStack::from_vars(some("http://s"), some("http://r"), None).unwrap_err();
        assert!(
            err.to_string().contains("COACHDESK_DEMO_RELAY_TOKEN"),
            "{err}"
        );
    }

    #[test]
    fn providers_point_at_the_simulator_and_secrets_stay_in_memory() {
        let demo = DemoStack::from_vars(some("http://s:1/"), some("http://r:2"), some("tok"))
            .unwrap()
            .unwrap();
        let config = demo.config();
        assert_eq!(config.stripe_base, "http://s:1/");
        assert_eq!(config.calendly_base, "http://s:1");
        assert_eq!(config.relay_url, "http://r:2");
        let secrets = demo.secrets();
        assert_eq!(secrets.get(SecretName::RelayToken).unwrap().expose(), "tok");
        assert!(secrets
            .get(SecretName::StripeTestKey)
            .unwrap()
            .expose()
            .starts_with("sk_test_"));
    }
}
