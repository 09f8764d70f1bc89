//! Perf gate.
