//! Ingest benchmark (in progress).
fn main() {}
