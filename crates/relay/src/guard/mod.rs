//! The guard: the relay's public socket, in front of tiny_http.
//!
//! tiny_http (0.12) reads requests with no bound the relay can set: a header line grows
//! its buffer without end, a body it did not read is drained on drop into a buffer sized
//! by the declared `Content-Length` (10^15 aborts the process, 2^64-1 panics), it spends a
//! thread per connection with no cap and no deadline, and its acceptor stops at the first
//! `accept()` error. So the relay accepts on the public socket itself:
//!
//! - connections are capped overall (below what the open-file limit allows) and per source
//!   address; over the cap a new one gets a 503 and is closed at once, and near the cap the
//!   connection that has been reading a request the longest is cut to make room;
//! - each request, head and body, must arrive within one deadline that a trickling client
//!   cannot extend; the head is capped in bytes and fields, the declared length is checked
//!   before any body byte is read (413, then a brief bounded drain so that the answer is
//!   not lost to a reset), and a chunked body is decoded and checked as it streams;
//! - rate limits per source address apply before the body is read (429, `Retry-After`);
//! - only then is the request, whole and with an exact length, written to tiny_http over
//!   an internal Unix socket (one connection per request); its answer is passed back.
//!
//! `accept()` errors (`EMFILE` included) are logged and retried after a backoff; a panic in
//! a connection's thread ends that connection only.

pub mod chunked;
pub mod head;
pub mod limits;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chunked::{ChunkError, Chunked};
use head::{Framing, Head};
use limits::{Class, Limits, Quotas};

/// Largest answer passed back from tiny_http (a page of events is at most 8 MiB).
const MAX_RESPONSE: u64 = 16 * 1024 * 1024 + 64 * 1024;
/// File descriptors one forwarded request may hold: the client's, the guard's end of the
/// internal socket, and tiny_http's end with its clone.
const FDS_PER_CONNECTION: u64 = 4;
/// Descriptors kept free for everything else (SQLite files, logs, new threads).
const FD_RESERVE: u64 = 32;
/// Stack of a connection's thread: it only parses and copies into heap buffers.
const CONNECTION_STACK: usize = 256 * 1024;

/// The guard's limits.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Most open client connections (lowered further to what the open-file limit allows).
    pub max_connections: usize,
    /// Most open connections from one address (trusted proxies are exempt).
    pub max_connections_per_ip: usize,
    /// Time from the start of waiting for a request to its last body byte.
    pub request_deadline: Duration,
    /// Longest silence within that time.
    pub read_timeout: Duration,
    /// Largest request head (request line and fields).
    pub max_header_bytes: usize,
    /// Largest body on any route.
    pub max_body_bytes: usize,
    /// Longest wait for tiny_http's answer (long-polls included).
    pub upstream_timeout: Duration,
    /// Peers whose `X-Forwarded-For` names the client (a TLS proxy in front).
    pub trusted_proxies: Vec<IpAddr>,
    pub quotas: Quotas,
}

/// An internal socket for tiny_http: an abstract Unix socket with a random name (no file
/// to create, clean up, or make writable under a read-only system).
fn internal_listener() -> io::Result<(UnixListener, UnixAddr)> {
    let name = format!(
        "coachdesk-relay-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    );
    let addr = UnixAddr::from_abstract_name(name.as_bytes())?;
    let listener = UnixListener::bind_addr(&addr)?;
    Ok((listener, addr))
}

/// tiny_http behind the guard, replaceable. tiny_http 0.12's acceptor stops for good at
/// its first `accept()` error, and its accept thread panics (closing the socket) when
/// `EMFILE` strikes just after an accept; whoever notices (a worker told of the error,
/// or the guard refused on the internal socket) starts a new server on a new internal
/// socket, and the guard and the workers use that one from then on.
///
/// Servers are leaked on purpose: tiny_http's `Drop for Server` unwraps the listener's
/// path, which an abstract socket has not, and one is made only at start and after such a
/// failure.
pub struct Internal {
    current: RwLock<(&'static tiny_http::Server, UnixAddr)>,
    replacing: Mutex<()>,
}

impl Internal {
    /// Starts the first server.
    pub fn start() -> io::Result<Internal> {
        Ok(Internal {
            current: RwLock::new(Self::new_server()?),
            replacing: Mutex::new(()),
        })
    }

    fn new_server() -> io::Result<(&'static tiny_http::Server, UnixAddr)> {
        let (listener, addr) = internal_listener()?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok((Box::leak(Box::new(server)), addr))
    }

    /// The server to take requests from now.
    pub fn server(&self) -> &'static tiny_http::Server {
        self.read().0
    }

    fn current(&self) -> (&'static tiny_http::Server, UnixAddr) {
        let c = self.read();
        (c.0, c.1.clone())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (&'static tiny_http::Server, UnixAddr)> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces `failed` (whose acceptor stopped) unless another worker already did.
    pub fn replace(&self, failed: &'static tiny_http::Server) -> io::Result<()> {
        let _one = self
            .replacing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !std::ptr::eq(self.server(), failed) {
            return Ok(());
        }
        let fresh = Self::new_server()?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }
}

struct Entry {
    ip: IpAddr,
    stream: Arc<TcpStream>,
    /// When it started waiting for its current request.
    since: Instant,
    /// Reading a request (may be cut to make room); false while tiny_http has it.
    reading: bool,
    /// Cut to make room; its thread has yet to notice.
    evicted: bool,
    /// Bytes of the current request have arrived.
    progress: bool,
}

#[derive(Default)]
struct Table {
    entries: HashMap<u64, Entry>,
    /// Entries cut but not yet gone.
    evicting: usize,
    /// Entries whose request tiny_http has (not reading).
    forwarding: usize,
    per_ip: HashMap<IpAddr, usize>,
    next: u64,
}

/// How long a new connection (or a keep-alive one between requests) counts as fresh: it
/// may not have had the time to send its request yet, so it is cut only when no idle
/// connection older than this is left. A slow loris's connections are old.
const FRESH: Duration = Duration::from_millis(250);

impl Table {
    /// The idle connection to cut to make room for a newcomer: nothing of a request
    /// received and nothing `waiting` to be read (a connection that has sent anything is
    /// never cut), not fresh unless every idle one is, from the address holding the most,
    /// the oldest first. Looks at up to 16 candidates.
    fn idle_victim(&self, now: Instant, waiting: impl Fn(&Entry) -> bool) -> Option<u64> {
        let mut idle: Vec<(&u64, &Entry)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.reading && !e.evicted && !e.progress)
            .collect();
        idle.sort_by_key(|(_, e)| {
            let held = self.per_ip.get(&e.ip).copied().unwrap_or(0);
            let fresh = now.saturating_duration_since(e.since) < FRESH;
            (fresh, std::cmp::Reverse(held), e.since)
        });
        idle.iter()
            .take(16)
            .find(|(_, e)| !waiting(e))
            .map(|(id, _)| **id)
    }
}

/// What the guard turned away itself, for the relay's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal<'a> {
    /// A request answered by the guard (400, 408, 413, 429, 431) instead of tiny_http.
    Request { path: &'a str, status: u16 },
    /// A new connection refused at the cap (503), overall or for its address.
    Connection,
    /// An idle connection (nothing received) cut to make room for a new one.
    IdleCut,
}

/// Told of each refusal as it happens.
pub type OnRefused = Box<dyn Fn(Refusal<'_>) + Send + Sync>;

struct Shared {
    cfg: GuardConfig,
    on_refused: OnRefused,
    upstream: Arc<Internal>,
    limits: Limits,
    table: Mutex<Table>,
    stopping: AtomicBool,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_progress(&self, id: u64) {
        if let Some(e) = self.table().entries.get_mut(&id) {
            e.progress = true;
        }
    }

    fn set_reading(&self, id: u64, reading: bool) {
        let mut t = self.table();
        let Some(e) = t.entries.get_mut(&id) else {
            return;
        };
        let was = std::mem::replace(&mut e.reading, reading);
        e.since = Instant::now();
        e.progress = false;
        match (was, reading) {
            (true, false) => t.forwarding += 1,
            (false, true) => t.forwarding = t.forwarding.saturating_sub(1),
            _ => {}
        }
    }
}

/// A registered connection; dropping it unregisters it (before its socket closes).
struct Conn {
    id: u64,
    /// The peer's limit key (`limits::source_key`).
    ip: IpAddr,
    /// The peer is a trusted proxy.
    proxy: bool,
    stream: Arc<TcpStream>,
    shared: Arc<Shared>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        let mut t = self.shared.table();
        if let Some(e) = t.entries.remove(&self.id) {
            if e.evicted {
                t.evicting = t.evicting.saturating_sub(1);
            }
            if !e.reading {
                t.forwarding = t.forwarding.saturating_sub(1);
            }
        }
        if let Some(n) = t.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.per_ip.remove(&self.ip);
            }
        }
    }
}

/// The running guard.
pub struct Guard {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    local: SocketAddr,
}

impl Guard {
    /// Starts accepting on `listener`, forwarding to tiny_http at `upstream`.
    pub fn spawn(
        listener: TcpListener,
        upstream: Arc<Internal>,
        cfg: GuardConfig,
        on_refused: OnRefused,
    ) -> io::Result<Guard> {
        let local = listener.local_addr()?;
        let shared = Arc::new(Shared {
            on_refused,
            limits: Limits::new(cfg.quotas),
            cfg,
            upstream,
            table: Mutex::new(Table::default()),
            stopping: AtomicBool::new(false),
        });
        let fd_base = open_fds();
        let inner = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("relay-acceptor".to_owned())
            .spawn(move || loop {
                let run = std::panic::AssertUnwindSafe(|| accept_loop(&listener, &inner, fd_base));
                match std::panic::catch_unwind(run) {
                    Ok(()) => return,
                    Err(_) => {
                        tracing::error!("the acceptor panicked; accepting again");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })?;
        Ok(Guard {
            shared,
            acceptor: Some(acceptor),
            local,
        })
    }

    /// Open client connections now.
    pub fn connections(&self) -> usize {
        self.shared.table().entries.len()
    }

    /// Stops accepting, cuts connections that are still reading a request, and waits (up
    /// to `grace`) for those tiny_http is answering.
    pub fn stop(mut self, grace: Duration) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor from accept().
        let _ = TcpStream::connect_timeout(&loopback(self.local), Duration::from_secs(1));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let until = Instant::now() + grace;
        loop {
            let busy = {
                let t = self.shared.table();
                for e in t.entries.values().filter(|e| e.reading) {
                    let _ = e.stream.shutdown(Shutdown::Both);
                }
                t.entries.len()
            };
            if busy == 0 || Instant::now() >= until {
                if busy > 0 {
                    tracing::warn!(connections = busy, "stopping with requests still open");
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn loopback(local: SocketAddr) -> SocketAddr {
    if local.ip().is_unspecified() {
        let ip = match local.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        SocketAddr::new(ip, local.port())
    } else {
        local
    }
}

/// Descriptors open now (the relay's own: database, sockets, standard streams).
fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(64, |d| d.count() as u64)
}

/// Descriptors the open-file limit leaves for connections.
fn fd_room(fd_base: u64) -> u64 {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    limit.saturating_sub(fd_base + FD_RESERVE)
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, fd_base: u64) {
    let mut backoff = Duration::from_millis(5);
    let mut last_error_log: Option<Instant> = None;
    let mut housekept = Instant::now();
    while !shared.stopping.load(Ordering::SeqCst) {
        if housekept.elapsed() >= Duration::from_secs(1) {
            housekept = Instant::now();
            shared.limits.housekeeping();
        }
        let (stream, peer) = match listener.accept() {
            Ok(s) => {
                backoff = Duration::from_millis(5);
                s
            }
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS, ECONNABORTED...: none of them ends the acceptor.
                if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(error = %e, "accept failed; retrying");
                    last_error_log = Some(Instant::now());
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(500));
                continue;
            }
        };
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        // Read at every connection (one cheap system call), so that a limit changed on
        // the running process (`prlimit`) counts at once.
        admit(stream, peer.ip(), shared, fd_room(fd_base));
    }
}

/// Registers the connection and starts its thread, or refuses it cheaply.
/// `fd_room`: descriptors the open-file limit leaves for connections. A connection reading
/// a request holds one; one in tiny_http's hands holds four.
fn admit(stream: TcpStream, peer: IpAddr, shared: &Arc<Shared>, fd_room: u64) {
    let fd_room = usize::try_from(fd_room).unwrap_or(usize::MAX);
    let ip = limits::source_key(peer);
    let proxy = shared.cfg.trusted_proxies.contains(&peer);
    let cap = shared
        .cfg
        .max_connections
        .min(fd_room / FDS_PER_CONNECTION as usize)
        .max(1);
    let soft = cap - cap / 8;
    let stream = Arc::new(stream);
    let id = {
        let mut t = shared.table();
        let from_ip = t.per_ip.get(&ip).copied().unwrap_or(0);
        let live = t.entries.len() - t.evicting;
        // Descriptors in use: cut connections hold theirs until their thread notices.
        let fds_used = t.entries.len() + 3 * t.forwarding;
        let over_hard = fds_used + FDS_PER_CONNECTION as usize > fd_room;
        let mut refused = over_hard || (!proxy && from_ip >= shared.cfg.max_connections_per_ip);
        if !refused && live >= soft {
            let victim = t.idle_victim(Instant::now(), |e| has_pending_data(&e.stream));
            match victim {
                Some(v) => {
                    if let Some(e) = t.entries.get_mut(&v) {
                        e.evicted = true;
                        let _ = e.stream.shutdown(Shutdown::Both);
                    }
                    t.evicting += 1;
                    (shared.on_refused)(Refusal::IdleCut);
                }
                None => refused = live >= cap,
            }
        }
        if refused {
            drop(t);
            refuse(&stream);
            (shared.on_refused)(Refusal::Connection);
            return;
        }
        t.next += 1;
        let id = t.next;
        t.entries.insert(
            id,
            Entry {
                ip,
                stream: stream.clone(),
                since: Instant::now(),
                reading: true,
                evicted: false,
                progress: false,
            },
        );
        *t.per_ip.entry(ip).or_insert(0) += 1;
        id
    };
    let conn = Conn {
        id,
        ip,
        proxy,
        stream,
        shared: shared.clone(),
    };
    let spawned = std::thread::Builder::new()
        .name("relay-conn".to_owned())
        .stack_size(CONNECTION_STACK)
        .spawn(move || serve_connection(&conn));
    if let Err(e) = spawned {
        // The closure (and the connection with it) was dropped: unregistered, closed.
        tracing::warn!(error = %e, "cannot start a connection thread");
    }
}

/// Whether the client has sent bytes not yet read (without reading or blocking).
fn has_pending_data(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
    matches!(rustix::net::recv(stream, &mut probe[..], flags), Ok((n, _)) if n > 0)
}

fn refuse(stream: &TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = (&*stream).write_all(&head::error_response(
        503,
        &[("Retry-After", "1".to_owned())],
    ));
    // Closing with unread input sends a reset, which can destroy the 503 in the client's
    // buffer: what it already sent is read first, without waiting (a bounded amount, in
    // the accept loop).
    let mut sent = [0u8; 4096];
    for _ in 0..16 {
        if !matches!((&*stream).read(&mut sent), Ok(n) if n > 0) {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Why a connection ends before its request reaches tiny_http.
enum Stop {
    /// The client closed, or went silent between requests: close without a word.
    Quiet,
    /// Answer with this status, then close.
    Answer(u16),
}

fn serve_connection(conn: &Conn) {
    let stream: &TcpStream = &conn.stream;
    let shared = &conn.shared;
    let cfg = &shared.cfg;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(cfg.request_deadline));
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        shared.set_reading(conn.id, true);
        let deadline = Instant::now() + cfg.request_deadline;
        let head = match read_head(stream, &mut buf, deadline, cfg, &shared.on_refused, || {
            shared.set_progress(conn.id)
        }) {
            Ok(h) => h,
            Err(stop) => return finish(stream, stop, &[]),
        };
        let ip = match head.forwarded_for {
            Some(client) if conn.proxy => limits::source_key(client),
            _ => conn.ip,
        };
        let class = Class::of(head.path());
        if let Some(class) = class {
            if let Err(wait) = shared.limits.check(class, ip) {
                let secs = limits::retry_after_secs(wait).to_string();
                tracing::debug!(%ip, path = head.path(), "rate limited");
                (shared.on_refused)(Refusal::Request {
                    path: head.path(),
                    status: 429,
                });
                return finish(stream, Stop::Answer(429), &[("Retry-After", secs)]);
            }
        }
        buf.drain(..head.len);
        let continue_failed = head.expect_continue
            && head.framing != Framing::Empty
            && (&*stream)
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .is_err();
        if continue_failed {
            return;
        }
        let body = match read_body(stream, &mut buf, head.framing, deadline, cfg) {
            Ok(b) => b,
            Err(stop) => {
                if let Stop::Answer(status) = stop {
                    (shared.on_refused)(Refusal::Request {
                        path: head.path(),
                        status,
                    });
                }
                return finish(stream, stop, &[]);
            }
        };
        shared.set_reading(conn.id, false);
        let raw = match forward(&shared.upstream, &head, &body, cfg.upstream_timeout) {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(error = %e, "the HTTP layer did not answer");
                return finish(stream, Stop::Answer(502), &[]);
            }
        };
        let keep_alive = head.keep_alive && !shared.stopping.load(Ordering::SeqCst);
        let Ok((code, out)) = head::client_response(&raw, keep_alive) else {
            return finish(stream, Stop::Answer(502), &[]);
        };
        if code == 401 && class == Some(Class::Api) {
            shared.limits.auth_failed(ip);
        }
        if (&*stream).write_all(&out).is_err() || !keep_alive {
            return;
        }
    }
}

/// How long, and how many bytes, a refused request's unread body is drained after the
/// answer, so that closing does not reset the connection before the client has read it;
/// and the silence that ends the drain early (a client that is not sending has nothing
/// a reset could race, and must not hold its connection).
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 2 * 1024 * 1024;
const LINGER_SILENCE: Duration = Duration::from_millis(200);

fn finish(stream: &TcpStream, stop: Stop, extra: &[(&str, String)]) {
    if let Stop::Answer(status) = stop {
        let _ = (&*stream).write_all(&head::error_response(status, extra));
        let _ = stream.shutdown(Shutdown::Write);
        // Only these are answered before the body was read: the client may still be
        // sending it. Other answers come after the request was read, or after it stopped.
        if matches!(status, 413 | 429) {
            linger(stream);
        }
    }
}

/// A lingering close (as nginx does): closing a socket with unread input sends a reset,
/// and a reset can destroy the answer in the client's receive buffer while it is still
/// sending the body we refused. Draining briefly, within a fixed time and byte budget
/// that a hostile client cannot extend, and only while it keeps sending, lets the answer
/// arrive.
fn linger(stream: &TcpStream) {
    let until = Instant::now() + LINGER;
    let mut drained = 0usize;
    let mut buf = [0u8; 16 * 1024];
    while drained < LINGER_BYTES {
        let left = until
            .saturating_duration_since(Instant::now())
            .min(LINGER_SILENCE);
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*stream).read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// The path of a request line at the start of `buf`, for metrics ("" if there is none).
fn request_path(buf: &[u8]) -> &str {
    let line = buf
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or(&[]);
    let target = line.split(|&b| b == b' ').nth(1).unwrap_or(&[]);
    let path = target.split(|&b| b == b'?').next().unwrap_or(&[]);
    std::str::from_utf8(path).unwrap_or("")
}

/// Reads into `buf` with the time left before `deadline` (and at most `silence`).
fn read_some(
    stream: &TcpStream,
    into: &mut [u8],
    deadline: Instant,
    silence: Duration,
) -> Result<usize, io::Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    stream.set_read_timeout(Some(left.min(silence)))?;
    loop {
        match (&*stream).read(into) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn read_head(
    stream: &TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    cfg: &GuardConfig,
    shared_refused: &OnRefused,
    on_first_bytes: impl Fn(),
) -> Result<Head, Stop> {
    if !buf.is_empty() {
        on_first_bytes();
    }
    let mut chunk = [0u8; 4096];
    loop {
        if !buf.is_empty() {
            match head::parse(buf, cfg.max_header_bytes, cfg.max_body_bytes) {
                Ok(Some(h)) => return Ok(h),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "request head refused");
                    (shared_refused)(Refusal::Request {
                        path: request_path(buf),
                        status: e.status(),
                    });
                    return Err(Stop::Answer(e.status()));
                }
            }
        }
        // Never read past the cap: the parse above refuses a full buffer.
        let room = cfg
            .max_header_bytes
            .saturating_sub(buf.len())
            .clamp(1, chunk.len());
        match read_some(stream, &mut chunk[..room], deadline, cfg.read_timeout) {
            Ok(0) => return Err(Stop::Quiet),
            Ok(n) => {
                if buf.is_empty() {
                    on_first_bytes();
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if timed_out(&e) && !buf.is_empty() => return Err(Stop::Answer(408)),
            Err(_) => return Err(Stop::Quiet),
        }
    }
}

fn read_body(
    stream: &TcpStream,
    buf: &mut Vec<u8>,
    framing: Framing,
    deadline: Instant,
    cfg: &GuardConfig,
) -> Result<Vec<u8>, Stop> {
    let mut chunk = vec![0u8; 16 * 1024];
    let read_failed = |e: io::Error| {
        if timed_out(&e) {
            Stop::Answer(408)
        } else {
            Stop::Quiet
        }
    };
    match framing {
        Framing::Empty => Ok(Vec::new()),
        Framing::Length(n) => {
            let from_buf = n.min(buf.len());
            let mut body = Vec::with_capacity(n.min(64 * 1024));
            body.extend(buf.drain(..from_buf));
            while body.len() < n {
                let want = (n - body.len()).min(chunk.len());
                match read_some(stream, &mut chunk[..want], deadline, cfg.read_timeout) {
                    Ok(0) => return Err(Stop::Quiet),
                    Ok(k) => body.extend_from_slice(&chunk[..k]),
                    Err(e) => return Err(read_failed(e)),
                }
            }
            Ok(body)
        }
        Framing::Chunked => {
            let mut decoder = Chunked::new(cfg.max_body_bytes);
            let mut body = Vec::new();
            let chunk_failed = |e: ChunkError| match e {
                ChunkError::TooLarge => Stop::Answer(413),
                ChunkError::Malformed => Stop::Answer(400),
            };
            let used = decoder.feed(buf, &mut body).map_err(chunk_failed)?;
            buf.drain(..used);
            while !decoder.done() {
                let k = match read_some(stream, &mut chunk, deadline, cfg.read_timeout) {
                    Ok(0) => return Err(Stop::Quiet),
                    Ok(k) => k,
                    Err(e) => return Err(read_failed(e)),
                };
                let used = decoder.feed(&chunk[..k], &mut body).map_err(chunk_failed)?;
                // What follows the body is the start of the next request.
                buf.extend_from_slice(&chunk[used..k]);
            }
            Ok(body)
        }
    }
}

/// Sends the request to tiny_http and reads its whole answer (it closes after it). A
/// refused internal connection means tiny_http's acceptor is gone: it is replaced and the
/// request sent to the new one.
fn forward(
    upstream: &Internal,
    head: &Head,
    body: &[u8],
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    let (server, addr) = upstream.current();
    let mut s = match UnixStream::connect_addr(&addr) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::error!("the internal HTTP acceptor is gone; starting a new one");
            upstream.replace(server)?;
            UnixStream::connect_addr(&upstream.current().1)?
        }
        r => r?,
    };
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(&head::upstream_request(head, body))?;
    let mut raw = Vec::with_capacity(1024);
    (&mut s).take(MAX_RESPONSE).read_to_end(&mut raw)?;
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ip: [u8; 4], since: Instant, listener: &TcpListener) -> Entry {
        let _client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (stream, _) = listener.accept().expect("accept");
        Entry {
            ip: IpAddr::from(ip),
            stream: Arc::new(stream),
            since,
            reading: true,
            evicted: false,
            progress: false,
        }
    }

    #[test]
    fn a_fresh_connection_is_cut_only_when_every_idle_one_is_fresh() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let now = Instant::now();
        let old = now - Duration::from_secs(5);
        let mut t = Table::default();
        // 10.0.0.1 holds two connections, one of them just made; 10.0.0.2 one old one.
        t.entries.insert(1, entry([10, 0, 0, 1], now, &listener));
        t.entries.insert(2, entry([10, 0, 0, 1], old, &listener));
        t.entries.insert(
            3,
            entry([10, 0, 0, 2], old - Duration::from_secs(1), &listener),
        );
        t.per_ip.insert(IpAddr::from([10, 0, 0, 1]), 2);
        t.per_ip.insert(IpAddr::from([10, 0, 0, 2]), 1);
        assert_eq!(
            t.idle_victim(now, |_| false),
            Some(2),
            "the old one of the address holding the most"
        );
        assert_eq!(
            t.idle_victim(now, |e| e.since == old),
            Some(3),
            "one with bytes waiting is passed over; the fresh one still is"
        );
        t.entries.get_mut(&3).expect("3").progress = true;
        assert_eq!(
            t.idle_victim(now, |e| e.since == old),
            Some(1),
            "fresh, cut only as the last idle one"
        );
        t.entries.get_mut(&1).expect("1").reading = false;
        assert_eq!(t.idle_victim(now, |e| e.since == old), None);
    }
}
