//! The `coachdesk-sim serve` binary starts, prints its address and serves both providers.

use std::process::Command;
use std::time::Duration;

use coachdesk_sim::SimClient;
use serde_json::Value;

#[test]
fn serve_prints_listening_and_answers() {
    let (mut child, addr) = coachdesk_waiting::spawn_listening(
        Command::new(env!("CARGO_BIN_EXE_coachdesk-sim")).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--calendly-token",
            "tok",
        ]),
        Duration::from_secs(30),
    );
    let mut c = SimClient::new(&format!("http://{addr}"));
    c.calendly_token = "tok".into();
    let me = c.calendly("GET", "/users/me", &Value::Null).unwrap();
    let events = c.stripe("GET", "/v1/events", &Value::Null, None).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!((me.status, events.status), (200, 200));
}
