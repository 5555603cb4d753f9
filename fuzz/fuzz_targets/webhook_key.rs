#![no_main]
//! See `coachdesk_relay::fuzzing::webhook_key`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coachdesk_relay::fuzzing::webhook_key(data));
