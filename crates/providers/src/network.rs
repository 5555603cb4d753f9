//! Why a request never got an answer, as a kind a caller can match.
//!
//! The kind is decided where the failure happens, from typed information only
//! (`std::io::ErrorKind`, `reqwest::Error::is_timeout`, a resolver of our own whose
//! failures are typed), and carried in the error's source chain as a [`NetworkError`].
//! [`network_failure`] reads it back; nothing is decided from an error's wording.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The ways a request can fail before any answer arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkFailure {
    /// The host name did not resolve.
    HostNotFound,
    /// The host answered the connection with a refusal (nothing listens on the port).
    Refused,
    /// No answer within the allowed time.
    Timeout,
    /// Anything else (reset, unreachable network, a failed TLS handshake, …).
    Other,
}

/// A network failure of a known kind, with the underlying error when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{kind:?}")]
pub struct NetworkError {
    pub kind: NetworkFailure,
    #[source]
    pub source: Option<Box<dyn StdError + Send + Sync>>,
}

impl NetworkError {
    /// A failure of `kind` with no further cause.
    pub fn new(kind: NetworkFailure) -> Self {
        Self { kind, source: None }
    }
}

/// The kind of network failure behind `err`, read from the typed errors in its source chain;
/// `None` when the chain holds nothing typed about the network.
pub fn network_failure(err: &(dyn StdError + 'static)) -> Option<NetworkFailure> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    let mut found = None;
    while let Some(current) = next {
        if let Some(typed) = current.downcast_ref::<NetworkError>() {
            return Some(typed.kind);
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Some(NetworkFailure::Refused),
                std::io::ErrorKind::TimedOut => return Some(NetworkFailure::Timeout),
                _ => {}
            }
        }
        if let Some(http) = current.downcast_ref::<reqwest::Error>() {
            if http.is_timeout() {
                return Some(NetworkFailure::Timeout);
            }
            if http.is_connect() || http.is_request() {
                found = found.or(Some(NetworkFailure::Other));
            }
        }
        if current
            .downcast_ref::<tokio::time::error::Elapsed>()
            .is_some()
        {
            return Some(NetworkFailure::Timeout);
        }
        next = current.source();
    }
    found
}

/// A resolver for reqwest that types its failures as [`NetworkFailure::HostNotFound`], so a
/// name that does not resolve is told apart from a refused connection without reading text.
#[derive(Debug, Default)]
pub struct TypedResolver;

impl reqwest::dns::Resolve for TypedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
                }
                Err(err) => Err(Box::new(NetworkError {
                    kind: NetworkFailure::HostNotFound,
                    source: Some(Box::new(err)),
                }) as Box<dyn StdError + Send + Sync>),
            }
        })
    }
}

/// The resolver to give `reqwest::ClientBuilder::dns_resolver`.
pub fn typed_resolver() -> Arc<TypedResolver> {
    Arc::new(TypedResolver)
}

/// Finds out, by resolving and connecting to `host:port` within `timeout`, why a client whose
/// own errors are untyped (async-stripe reports transport failures as text) could not reach it.
pub async fn probe(host: &str, port: u16, timeout: Duration) -> NetworkFailure {
    let attempt = async {
        let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
            Ok(addrs) => addrs.collect(),
            Err(_) => return NetworkFailure::HostNotFound,
        };
        let Some(addr) = addrs.first() else {
            return NetworkFailure::HostNotFound;
        };
        match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => NetworkFailure::Other,
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
                NetworkFailure::Refused
            }
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => NetworkFailure::Timeout,
            Err(_) => NetworkFailure::Other,
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(NetworkFailure::Timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_refused_and_an_unknown_name_not_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert_eq!(
            probe("127.0.0.1", port, Duration::from_secs(5)).await,
            NetworkFailure::Refused
        );
        assert_eq!(
            probe("no-such-host.invalid", 443, Duration::from_secs(5)).await,
            NetworkFailure::HostNotFound
        );
    }

    #[tokio::test]
    async fn reqwest_failures_carry_their_kind() {
        let http = reqwest::Client::builder()
            .dns_resolver(typed_resolver())
            .build()
            .unwrap();
        let err = http
            .get("http://no-such-host.invalid/")
            .send()
            .await
            .unwrap_err();
        assert_eq!(network_failure(&err), Some(NetworkFailure::HostNotFound));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = http
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(network_failure(&err), Some(NetworkFailure::Refused));
    }
}
