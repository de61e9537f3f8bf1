//! Benchmarks (filled by the tcp-tokio issue).
