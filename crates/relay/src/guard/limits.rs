//! Request rates per source address (GCRA, `governor`), one quota per route class, and
//! the slowing down of addresses that keep failing authentication.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Routes with their own quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `/hooks/*`: Stripe and Calendly.
    Hooks,
    /// `/v1/*`: the app.
    Api,
    /// `/pay/*`: clients' browsers.
    Pay,
}

impl Class {
    /// The class of a request path, under a tenant's `/t/{name}/` too; `None` for
    /// unlimited routes (`/healthz`, `/metrics`).
    pub fn of(path: &str) -> Option<Class> {
        let path = crate::tenant::split_path(path).map_or(path, |(_, rest)| rest);
        if path.starts_with("/hooks/") {
            Some(Class::Hooks)
        } else if path.starts_with("/v1/") {
            Some(Class::Api)
        } else if path.starts_with("/pay/") {
            Some(Class::Pay)
        } else {
            None
        }
    }
}

/// A rate: so many requests per second on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_sec: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Rate {
    fn quota(self) -> Quota {
        Quota::per_second(self.per_sec).allow_burst(self.burst)
    }
}

/// The quotas in force.
#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    pub hooks: Rate,
    pub api: Rate,
    pub pay: Rate,
    /// Failed authentications an address may make before it is made to wait, and the
    /// rate (per minute) at which it earns new tries.
    pub auth_failures_burst: NonZeroU32,
    pub auth_failures_per_min: NonZeroU32,
}

/// Webhooks per tenant, from every address together: one coach's flood is refused (429,
/// which the providers retry) before it reaches the writer the others share. The relay's
/// own coach is left to the per-address quotas.
pub struct TenantRates {
    limiter: governor::DefaultKeyedRateLimiter<crate::tenant::TenantId>,
}

impl TenantRates {
    pub fn new(rate: Rate) -> TenantRates {
        TenantRates {
            limiter: RateLimiter::keyed(rate.quota()),
        }
    }

    /// Whether the tenant may deliver one more webhook now.
    pub fn admit(&self, tenant: crate::tenant::TenantId) -> bool {
        tenant == crate::tenant::TenantId::HOME || self.limiter.check_key(&tenant).is_ok()
    }
}

/// Limiters shared by every connection.
pub struct Limits {
    hooks: DefaultKeyedRateLimiter<IpAddr>,
    api: DefaultKeyedRateLimiter<IpAddr>,
    pay: DefaultKeyedRateLimiter<IpAddr>,
    auth_failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses refused on `/v1/*` until the instant, after too many failures.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
}

impl Limits {
    pub fn new(q: Quotas) -> Limits {
        let auth = Quota::per_minute(q.auth_failures_per_min).allow_burst(q.auth_failures_burst);
        Limits {
            hooks: RateLimiter::keyed(q.hooks.quota()),
            api: RateLimiter::keyed(q.api.quota()),
            pay: RateLimiter::keyed(q.pay.quota()),
            auth_failures: RateLimiter::keyed(auth),
            blocked: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` if `ip` must wait before this request of `class` is served.
    pub fn check(&self, class: Class, ip: IpAddr) -> Result<(), Duration> {
        if class == Class::Api {
            if let Some(wait) = self.auth_blocked(ip) {
                return Err(wait);
            }
        }
        let limiter = match class {
            Class::Hooks => &self.hooks,
            Class::Api => &self.api,
            Class::Pay => &self.pay,
        };
        limiter
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Records a failed authentication from `ip`; past the allowance, the address is
    /// refused on `/v1/*` until it has earned a new try.
    pub fn auth_failed(&self, ip: IpAddr) {
        if let Err(not_until) = self.auth_failures.check_key(&ip) {
            let wait = not_until.wait_time_from(self.clock.now());
            let mut blocked = self.lock_blocked();
            blocked.insert(ip, Instant::now() + wait);
        }
    }

    fn auth_blocked(&self, ip: IpAddr) -> Option<Duration> {
        let mut blocked = self.lock_blocked();
        let until = *blocked.get(&ip)?;
        let now = Instant::now();
        if until > now {
            Some(until - now)
        } else {
            blocked.remove(&ip);
            None
        }
    }

    /// Forgets addresses whose state no longer matters (keeps memory bounded under a
    /// flood of addresses).
    pub fn housekeeping(&self) {
        for limiter in [&self.hooks, &self.api, &self.pay, &self.auth_failures] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = Instant::now();
        self.lock_blocked().retain(|_, until| *until > now);
    }

    fn lock_blocked(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.blocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The address limits are kept for: an IPv6 client is its /64 (one customer's network,
/// inside which addresses are free to rotate), an IPv4 client its address.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// Seconds for a `Retry-After` field: the wait rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_millis().div_ceil(1000) as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("non-zero")
    }

    fn quotas() -> Quotas {
        Quotas {
            hooks: Rate {
                per_sec: nz(1),
                burst: nz(3),
            },
            api: Rate {
                per_sec: nz(1),
                burst: nz(100),
            },
            pay: Rate {
                per_sec: nz(1),
                burst: nz(1),
            },
            auth_failures_burst: nz(2),
            auth_failures_per_min: nz(1),
        }
    }

    #[test]
    fn a_burst_passes_then_the_address_waits_and_others_do_not() {
        let l = Limits::new(quotas());
        let a: IpAddr = "203.0.113.1".parse().expect("ip");
        let b: IpAddr = "203.0.113.2".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(l.check(Class::Hooks, a), Ok(()));
        }
        let wait = l.check(Class::Hooks, a).expect_err("limited");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(retry_after_secs(wait), 1);
        assert_eq!(l.check(Class::Hooks, b), Ok(()));
        assert_eq!(l.check(Class::Pay, a), Ok(()));
    }

    #[test]
    fn repeated_auth_failures_block_the_api_only() {
        let l = Limits::new(quotas());
        let a: IpAddr = "203.0.113.1".parse().expect("ip");
        l.auth_failed(a);
        l.auth_failed(a);
        assert_eq!(l.check(Class::Api, a), Ok(()));
        l.auth_failed(a);
        let wait = l.check(Class::Api, a).expect_err("blocked");
        assert!(wait > Duration::from_secs(20), "{wait:?}");
        assert_eq!(l.check(Class::Hooks, a), Ok(()));
        l.housekeeping();
        assert!(l.check(Class::Api, a).is_err());
    }

    #[test]
    fn ipv6_clients_are_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(c));
        let mapped: IpAddr = "::ffff:203.0.113.5".parse().expect("ip");
        assert_eq!(
            source_key(mapped),
            "203.0.113.5".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn classes_by_path() {
        assert_eq!(Class::of("/hooks/stripe"), Some(Class::Hooks));
        assert_eq!(Class::of("/v1/events"), Some(Class::Api));
        assert_eq!(Class::of("/pay/abc"), Some(Class::Pay));
        assert_eq!(Class::of("/healthz"), None);
    }
}
