//! Benchmarks live in `benches/`; run them with `cargo bench -p syndicate-benches`.
//! This library holds the inputs they share.
#![forbid(unsafe_code)]
