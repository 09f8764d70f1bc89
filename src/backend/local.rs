//! local backend.
