//! Local backend.
