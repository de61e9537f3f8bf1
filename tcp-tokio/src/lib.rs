//! Async tokio adapter over `tcpcore` (filled by the tcp-tokio issue).
