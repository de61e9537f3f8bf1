//! ipv4 (wire helper fills this).
