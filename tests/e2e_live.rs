//! End to end on the live stack: the real app (demo mode) syncing through the real relay
//! with the provider simulator, under Xvfb through tauri-driver.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use coachdesk_tests::stack::Stack;
use serde_json::Value;

/// The stack on its own: a booking and its payment at the simulator arrive at the relay
/// as signed webhooks (the relay refuses unsigned ones), ready for the app to pull.
#[test]
#[ignore = "needs the relay and simulator binaries; run by ./scripts/test"]
fn the_stack_relays_a_booking_and_its_payment() -> anyhow::Result<()> {
    let stack = Stack::start(None)?;
    let booking = stack.book("coaching-60", "Pat Client", "pat@example.com", None)?;
    stack.pay("coaching-60", &booking)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = coachdesk_sim::http::request(
            "GET",
            &format!("{}/v1/events?after=0&limit=50", stack.relay_url),
            &[(
                "Authorization",
                format!("Bearer {}", stack.relay_token).as_str(),
            )],
            b"",
            Duration::from_secs(5),
        )
        .context("pull from the relay")?;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let page: Value = answer.json()?;
        let text = page.to_string();
        if text.contains("invitee.created") && text.contains("checkout.session.completed") {
            assert!(text.contains(&booking.invitee_uuid), "{text}");
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "the relay did not receive both webhooks within 10 s: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
