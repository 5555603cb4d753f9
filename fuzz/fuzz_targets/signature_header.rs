#![no_main]
//! See `coachdesk_relay::fuzzing::signature_header`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coachdesk_relay::fuzzing::signature_header(data));
