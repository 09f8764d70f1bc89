//! fake backend.
