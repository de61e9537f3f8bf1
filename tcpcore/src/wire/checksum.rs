//! checksum (wire helper fills this).
