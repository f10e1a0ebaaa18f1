//! Criterion benchmarks for lvskit live in `benches/benches/`; each states the
//! target from its issue next to the measurement.
