#![no_main]
//! See `coachdesk_relay::fuzzing::request_head`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coachdesk_relay::fuzzing::request_head(data));
