//! The signing keys and secrets apps handed over, and their public keys for sealing, per
//! tenant, kept in memory so a webhook is verified and sealed without a database read.
//!
//! Every tenant's set is read ahead, off the request path, when the relay starts and after a
//! change is announced (see `server::warm_keys`); a webhook reads it only when it finds it
//! missing (a tenant made since). It is read again after one of its apps hands over a key
//! here, on its pulls (a token revoked by the `token` command takes its keys along), and,
//! with several relay processes on one database, when another process tells that the
//! tenant's keys changed (PostgreSQL's `NOTIFY`, see `Backend::watch`) and when a
//! signature does not match. When the operator turned hand-over off, the stored signing
//! keys are ignored, not deleted; app keys and Stripe restricted keys are always used.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use std::time::Duration;

use coachdesk_seal::{AppKey, Sealer};

use crate::at_rest::AtRest;
use crate::checkout::StripeCheckout;
use crate::config::{Secret, Settings};
use crate::store::{ReadStore, StoreError};
use crate::tenant::TenantId;

/// One tenant's handed-over keys.
#[derive(Debug)]
pub struct TenantKeys {
    /// Calendly signing keys, newest first.
    pub calendly: Vec<String>,
    /// Stripe endpoint signing secrets.
    pub stripe: Vec<String>,
    /// Seals for the public keys of the tenant's apps: when there is any, its events are
    /// stored only sealed for them. A change of keys makes a new sealer, with a new data key.
    pub sealer: Option<Arc<Sealer>>,
    /// Stripe with the newest restricted key the tenant's apps handed over, for `/pay`.
    pub checkout: Option<Arc<StripeCheckout>>,
}

impl TenantKeys {
    /// How many app keys its events are sealed for.
    pub fn app_keys(&self) -> usize {
        self.sealer.as_ref().map_or(0, |s| s.keys().len())
    }
}

/// Every tenant's handed-over keys seen so far.
pub struct HandedOver {
    by_tenant: RwLock<HashMap<TenantId, Arc<TenantKeys>>>,
    /// Opens the stored restricted keys.
    at_rest: AtRest,
    /// Counts [`HandedOver::forget`]s: a read that started before one is used but not
    /// kept (it may predate the change that was announced).
    forgotten: AtomicU64,
    /// Reads of a tenant's keys ahead of its requests ([`HandedOver::read_ahead`]), and by a
    /// request that found them missing ([`HandedOver::get`]): for `/metrics`.
    read_ahead: AtomicU64,
    read_on_request: AtomicU64,
}

impl HandedOver {
    pub fn new(at_rest: AtRest) -> HandedOver {
        HandedOver {
            by_tenant: RwLock::default(),
            at_rest,
            forgotten: AtomicU64::new(0),
            read_ahead: AtomicU64::new(0),
            read_on_request: AtomicU64::new(0),
        }
    }

    /// (reads ahead of requests, reads by a request that found the keys missing).
    pub fn reads(&self) -> (u64, u64) {
        (
            self.read_ahead.load(Ordering::Relaxed),
            self.read_on_request.load(Ordering::Relaxed),
        )
    }

    /// Reads the tenant's keys unless they are in memory already: ahead of its requests.
    pub fn read_ahead(
        &self,
        settings: &Settings,
        reader: &dyn ReadStore,
        tenant: TenantId,
    ) -> Result<(), StoreError> {
        if self.cached(tenant).is_none() {
            self.read_ahead.fetch_add(1, Ordering::Relaxed);
            self.reload(settings, reader, tenant)?;
        }
        Ok(())
    }

    fn cached(&self, tenant: TenantId) -> Option<Arc<TenantKeys>> {
        self.by_tenant
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tenant)
            .cloned()
    }

    /// Encrypts a restricted key `consumer` hands over, for the database.
    pub fn seal_checkout_key(&self, consumer: crate::store::ConsumerId, key: &str) -> String {
        self.at_rest.seal(&checkout_row(consumer), key)
    }

    /// The tenant's keys, read from the database the first time.
    pub fn get(
        &self,
        settings: &Settings,
        reader: &dyn ReadStore,
        tenant: TenantId,
    ) -> Result<Arc<TenantKeys>, StoreError> {
        match self.cached(tenant) {
            Some(keys) => Ok(keys),
            None => {
                self.read_on_request.fetch_add(1, Ordering::Relaxed);
                self.reload(settings, reader, tenant)
            }
        }
    }

    /// Reads the tenant's keys again and keeps them.
    pub fn reload(
        &self,
        settings: &Settings,
        reader: &dyn ReadStore,
        tenant: TenantId,
    ) -> Result<Arc<TenantKeys>, StoreError> {
        let generation = self.forgotten.load(Ordering::SeqCst);
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
            sealer: self.sealer(tenant, reader.app_keys(tenant)?),
            checkout: self.checkout(settings, tenant, reader)?,
        });
        let mut map = self
            .by_tenant
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if self.forgotten.load(Ordering::SeqCst) == generation {
            map.insert(tenant, keys.clone());
        }
        Ok(keys)
    }

    /// A sealer for the tenant's app keys: the one in use while they are the same (its data
    /// key lives on for its epoch), a new one when they changed.
    fn sealer(&self, tenant: TenantId, stored: Vec<String>) -> Option<Arc<Sealer>> {
        let keys: Vec<AppKey> = stored
            .iter()
            .filter_map(|k| match k.parse::<AppKey>() {
                Ok(key) => Some(key),
                Err(_) => {
                    tracing::error!(%tenant, "a stored app key does not parse; left out");
                    None
                }
            })
            .collect();
        let current = self.cached(tenant).and_then(|k| k.sealer.clone());
        match current {
            Some(sealer) if sealer.keys() == keys.as_slice() => Some(sealer),
            _ => Sealer::new(keys).ok().map(Arc::new),
        }
    }

    /// Stripe with the tenant's newest handed-over restricted key. One that does not open
    /// (the index key was changed) is left out, with an error in the log: the coach's
    /// clients get the payment link until an app hands the key over again.
    fn checkout(
        &self,
        settings: &Settings,
        tenant: TenantId,
        reader: &dyn ReadStore,
    ) -> Result<Option<Arc<StripeCheckout>>, StoreError> {
        let Some(stored) = reader.checkout_key(tenant)? else {
            return Ok(None);
        };
        match self
            .at_rest
            .open(&checkout_row(stored.consumer), &stored.sealed)
        {
            Ok(key) => Ok(Some(Arc::new(StripeCheckout::new(
                &settings.stripe_api_base,
                Secret::new(key),
                Duration::from_millis(settings.stripe_timeout_ms),
            )))),
            Err(e) => {
                tracing::error!(%tenant, error = %e, "a handed-over Stripe restricted key does not open; left out");
                Ok(None)
            }
        }
    }

    /// Forgets a tenant's keys (`None`: every tenant's), to be read again on next use:
    /// another process announced a change.
    pub fn forget(&self, tenant: Option<TenantId>) {
        let mut map = self
            .by_tenant
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        self.forgotten.fetch_add(1, Ordering::SeqCst);
        match tenant {
            Some(tenant) => {
                map.remove(&tenant);
            }
            None => map.clear(),
        }
    }
}

/// What a stored restricted key is bound to: its consumer's row.
fn checkout_row(consumer: crate::store::ConsumerId) -> String {
    format!("checkout_keys consumer {}", consumer.0)
}
