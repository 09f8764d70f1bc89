//! docker backend.
