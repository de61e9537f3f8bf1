//! ipv6 (wire helper fills this).
