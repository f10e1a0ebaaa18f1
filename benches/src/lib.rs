//! Criterion benchmarks for lvskit live in `benches/benches/`; each states the
//! target from its issue next to the measurement. This library holds the
//! set-ups that a criterion bench and an instruction-count binary share.

pub mod vrrp;
