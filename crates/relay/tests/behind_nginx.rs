//! nginx in front of the relay on loopback, with the limits of
//! deploy/nginx/coachdesk-relay-proxy.conf: an oversize body and a slow header are cut by
//! nginx, a signed webhook passes, and the relay rate-limits by the client address nginx
//! forwards. Needs nginx (scripts/setup installs it); run by scripts/test with --ignored.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coachdesk_signature::sign_header;
use support::http;
use support::*;

struct Nginx {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn start_nginx(relay: SocketAddr) -> Nginx {
    let dir = tempfile::tempdir().expect("tempdir");
    let snippet = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/nginx/coachdesk-relay-proxy.conf"
    ))
    .expect("read the nginx snippet")
    .replace("127.0.0.1:8787", &relay.to_string());
    std::fs::write(dir.path().join("relay.conf"), snippet).expect("write snippet");
    let port = free_port();
    let d = dir.path().display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         \x20 server {{\n    listen 127.0.0.1:{port};\n    include {d}/relay.conf;\n  }}\n}}\n"
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("write nginx.conf");
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .spawn()
        .expect("nginx must be installed (scripts/setup)");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    coachdesk_waiting::eventually("nginx listening", Duration::from_secs(10), || {
        TcpStream::connect(addr)
    });
    Nginx {
        child,
        addr,
        _dir: dir,
    }
}

fn raw(addr: SocketAddr, request: &[u8], within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    let _ = s.write_all(request);
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

fn too_large_count(relay: &Relay) -> String {
    let m = http::request(relay.addr, "GET", "/metrics", &[], b"")
        .expect("metrics")
        .text();
    m.lines()
        .find(|l| l.contains("provider=\"stripe\",reason=\"too_large\""))
        .unwrap_or("")
        .to_owned()
}

fn nginx_cuts_oversize_bodies_and_slow_heads_and_passes_signed_webhooks() {
    let relay = Relay::start_with(&[("COACHDESK_RELAY_TRUSTED_PROXIES", "127.0.0.1")]);
    let nginx = start_nginx(relay.addr);

    // A signed webhook passes, byte for byte.
    let body = stripe_body("evt_via_nginx", 3000);
    let sig = sign_header(STRIPE_SECRET.as_bytes(), now(), body.as_bytes());
    let r = http::request(
        nginx.addr,
        "POST",
        "/hooks/stripe",
        &[
            ("Content-Type", "application/json"),
            ("Stripe-Signature", &sig),
        ],
        body.as_bytes(),
    )
    .expect("post through nginx");
    assert_eq!(r.status, 200, "{}", r.text());
    let pulled = relay.pull_all(0);
    assert_eq!(pulled.len(), 1);
    assert_eq!(keys(&pulled), ["evt_via_nginx"]);

    // An oversize body is refused by nginx: the relay never sees it.
    let before = too_large_count(&relay);
    let (answer, _) = raw(
        nginx.addr,
        b"POST /hooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(answer.contains("nginx"), "{answer:?}");
    assert_eq!(too_large_count(&relay), before);

    // A head that never ends is cut by nginx's 5 s header timeout.
    let (answer, took) = raw(
        nginx.addr,
        b"GET /healthz HTTP/1.1\r\nHost: r\r\nX-Slow: a",
        Duration::from_secs(15),
    );
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(10),
        "closed after {took:?}"
    );

    // /metrics is not served through the proxy.
    let r = http::request(nginx.addr, "GET", "/metrics", &[], b"").expect("metrics");
    assert_eq!(r.status, 404);
}

on_both_backends!(
    #[ignore = "needs nginx; run by scripts/test"]
    nginx_cuts_oversize_bodies_and_slow_heads_and_passes_signed_webhooks,
);
