//! Examples (filled by the tcp-tokio and tcp-tun issues).
