//! Docker backend (bollard).
