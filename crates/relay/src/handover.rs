//! The signing keys and secrets apps handed over, per tenant, kept in memory so a webhook
//! is verified without a database read.
//!
//! A tenant's set is read on its first webhook, and read again after one of its apps hands
//! over a key, on its pulls (a token revoked by the `token` command takes its keys along)
//! and, with several relay processes on one database, when a signature does not match
//! (another process may have been handed the key) and whenever it is older than
//! [`SHARED_MAX_AGE`] (an app key registered through another process seals here within
//! that time). When the operator turned hand-over off, the stored signing keys are
//! ignored, not deleted; app keys are always used.

use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use coachdesk_seal::AppKey;

use crate::config::Settings;
use crate::store::{ReadStore, StoreError};
use crate::tenant::TenantId;

/// How old a tenant's keys may get before a process sharing its database reads them again.
pub const SHARED_MAX_AGE: Duration = Duration::from_secs(1);

/// One tenant's handed-over keys.
#[derive(Debug)]
pub struct TenantKeys {
    /// Calendly signing keys, newest first.
    pub calendly: Vec<String>,
    /// Stripe endpoint signing secrets.
    pub stripe: Vec<String>,
    /// The public keys of the tenant's apps: when there is any, its events are stored
    /// only sealed for them.
    pub app: Vec<AppKey>,
    read_at: Instant,
}

/// Every tenant's handed-over keys seen so far.
pub struct HandedOver {
    by_tenant: RwLock<HashMap<TenantId, Arc<TenantKeys>>>,
    /// `Some` where other processes write the same database.
    max_age: Option<Duration>,
}

impl HandedOver {
    /// `shared`: other relay processes use the same database.
    pub fn new(shared: bool) -> HandedOver {
        HandedOver {
            by_tenant: RwLock::default(),
            max_age: shared.then_some(SHARED_MAX_AGE),
        }
    }

    /// The tenant's keys, read from the database the first time.
    pub fn get(
        &self,
        settings: &Settings,
        reader: &dyn ReadStore,
        tenant: TenantId,
    ) -> Result<Arc<TenantKeys>, StoreError> {
        let cached = self
            .by_tenant
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tenant)
            .cloned()
            .filter(|k| self.max_age.is_none_or(|max| k.read_at.elapsed() < max));
        match cached {
            Some(keys) => Ok(keys),
            None => self.reload(settings, reader, tenant),
        }
    }

    /// Reads the tenant's keys again and keeps them.
    pub fn reload(
        &self,
        settings: &Settings,
        reader: &dyn ReadStore,
        tenant: TenantId,
    ) -> Result<Arc<TenantKeys>, StoreError> {
        let keys = Arc::new(TenantKeys {
            calendly: if settings.calendly_key_handover {
                reader.calendly_keys(tenant)?
            } else {
                Vec::new()
            },
            stripe: if settings.stripe_secret_handover {
                reader.stripe_secrets(tenant)?
            } else {
                Vec::new()
            },
            app: reader
                .app_keys(tenant)?
                .iter()
                .filter_map(|k| match k.parse() {
                    Ok(key) => Some(key),
                    Err(_) => {
                        tracing::error!(%tenant, "a stored app key does not parse; left out");
                        None
                    }
                })
                .collect(),
            read_at: Instant::now(),
        });
        let mut map = self
            .by_tenant
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        map.insert(tenant, keys.clone());
        Ok(keys)
    }
}
