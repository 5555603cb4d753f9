//! Tenants: the coaches one relay serves.
//!
//! A relay run by one coach has exactly one tenant, [`TenantId::HOME`], reached at the
//! unprefixed paths (`/hooks/stripe`, `/v1/events`, `/pay/{slug}`) and verified with the
//! configured secrets as well as those its apps hand over. A hosted relay adds tenants
//! with `coachdesk-relay tenant create NAME`; each is reached under `/t/{name}/` with the
//! same paths, and owns its events, consumers (tokens and cursors), handed-over signing
//! secrets, payment link table, checkout claims and rate limit. Nothing crosses tenants:
//! every store query names the tenant, and a token is accepted only under its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::store::{ReadStore, StoreError};

/// A tenant's row id; `0` is the relay's own coach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub i64);

impl TenantId {
    /// The relay's own coach: the unprefixed paths and the configured secrets.
    pub const HOME: TenantId = TenantId(0);
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A tenant's name, the `{name}` of its `/t/{name}/` paths: 1 to 63 of `[a-z0-9-]`, not
/// starting or ending with `-` (a DNS label, so a host name per tenant stays possible).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(name: &str) -> Option<TenantName> {
        let ok = (1..=63).contains(&name.len())
            && !name.starts_with('-')
            && !name.ends_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then(|| TenantName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How long a process that is not told of removals (SQLite: the `tenant remove` command
/// runs as another process) trusts a resolved tenant name.
pub const RESOLVED_FOR: Duration = Duration::from_secs(1);

/// Tenant names resolved recently. Every request of a hosted relay names its tenant, and a
/// database round trip for it on each would cost as much as the insert itself. Only
/// tenants that exist are kept (unknown names are asked of the database each time, and
/// rate-limited per address by the guard), so the map is bounded by the tenants. Where
/// the database tells of removals (PostgreSQL), names are kept until it does.
pub struct Resolved {
    names: RwLock<HashMap<TenantName, (TenantId, Instant)>>,
    max_age: Option<Duration>,
    forgotten: AtomicU64,
}

impl Resolved {
    /// `max_age`: how long a name is trusted (`None`: until [`Resolved::forget_all`]).
    pub fn new(max_age: Option<Duration>) -> Resolved {
        Resolved {
            names: RwLock::default(),
            max_age,
            forgotten: AtomicU64::new(0),
        }
    }

    /// The tenant `name` names, if it exists: from memory when resolved recently enough,
    /// else from the database.
    pub fn resolve(
        &self,
        reader: &dyn ReadStore,
        name: &TenantName,
    ) -> Result<Option<TenantId>, StoreError> {
        let recent = self
            .names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .filter(|(_, at)| self.max_age.is_none_or(|max| at.elapsed() < max))
            .map(|(id, _)| *id);
        if recent.is_some() {
            return Ok(recent);
        }
        let generation = self.forgotten.load(Ordering::SeqCst);
        let found = reader.tenant(name)?;
        let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
        match found {
            Some(id) if self.forgotten.load(Ordering::SeqCst) == generation => {
                names.insert(name.clone(), (id, Instant::now()));
            }
            _ => {
                names.remove(name);
            }
        }
        Ok(found)
    }

    /// Every tenant, read in one query, with their names kept (ahead of their requests).
    pub fn read_all(&self, reader: &dyn ReadStore) -> Result<Vec<Tenant>, StoreError> {
        let generation = self.forgotten.load(Ordering::SeqCst);
        let all = reader.tenants()?;
        let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
        if self.forgotten.load(Ordering::SeqCst) == generation {
            let now = Instant::now();
            for t in &all {
                names.insert(t.name.clone(), (t.id, now));
            }
        }
        Ok(all)
    }

    /// Forgets every name: a tenant was removed.
    pub fn forget_all(&self) {
        let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
        self.forgotten.fetch_add(1, Ordering::SeqCst);
        names.clear();
    }
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: TenantName,
    pub created_at_ms: i64,
}

/// A request path split into its tenant and the path the routes know: `/t/{name}/rest`
/// gives `(Some(name), "/rest")`, anything else `(None, path)`. `None` as the whole
/// answer: a `/t/` path without a valid name or without a rest.
pub fn split_path(path: &str) -> Option<(Option<TenantName>, &str)> {
    let Some(tail) = path.strip_prefix("/t/") else {
        return Some((None, path));
    };
    let (name, _) = tail.split_once('/')?;
    let rest = &tail[name.len()..];
    Some((Some(TenantName::parse(name)?), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        for good in ["a", "coach-7", "x".repeat(63).as_str()] {
            assert!(TenantName::parse(good).is_some(), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "a b", &"x".repeat(64)] {
            assert!(TenantName::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn paths_split_into_tenant_and_route() {
        assert_eq!(split_path("/hooks/stripe"), Some((None, "/hooks/stripe")));
        let (tenant, rest) = split_path("/t/alice/hooks/stripe").expect("split");
        assert_eq!(
            (tenant.map(|t| t.0), rest),
            (Some("alice".to_owned()), "/hooks/stripe")
        );
        let (_, rest) = split_path("/t/alice/pay/intro").expect("split");
        assert_eq!(rest, "/pay/intro");
        assert_eq!(split_path("/t/alice"), None);
        assert_eq!(split_path("/t/Alice/v1/events"), None);
        assert_eq!(split_path("/t//v1/events"), None);
    }
}
