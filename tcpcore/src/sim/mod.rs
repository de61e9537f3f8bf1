//! The seeded, virtual-time network simulator (sim helper fills this).
