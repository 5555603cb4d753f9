#![no_main]
//! See `coachdesk_relay::fuzzing::api_request`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coachdesk_relay::fuzzing::api_request(data));
