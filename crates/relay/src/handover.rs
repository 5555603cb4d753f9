//! The signing keys and secrets apps handed over, per tenant, kept in memory so a webhook
//! is verified without a database read.
//!
//! A tenant's set is read on its first webhook, and read again after one of its apps hands
//! over a key, on its pulls (a token revoked by the `token` command takes its keys along)
//! and, with several relay processes on one database, when a signature does not match
//! (another process may have been handed the key). When the operator turned hand-over off,
//! the stored keys are ignored, not deleted.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::config::Settings;
use crate::store::{ReadStore, StoreError};
use crate::tenant::TenantId;

/// One tenant's handed-over keys.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TenantKeys {
    /// Calendly signing keys, newest first.
    pub calendly: Vec<String>,
    /// Stripe endpoint signing secrets.
    pub stripe: Vec<String>,
}

/// Every tenant's handed-over keys seen so far.
#[derive(Default)]
pub struct HandedOver {
    by_tenant: RwLock<HashMap<TenantId, Arc<TenantKeys>>>,
}

impl HandedOver {
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
            .cloned();
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
        });
        let mut map = self
            .by_tenant
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match map.get(&tenant) {
            Some(old) if **old == *keys => Ok(old.clone()),
            _ => {
                map.insert(tenant, keys.clone());
                Ok(keys)
            }
        }
    }
}
