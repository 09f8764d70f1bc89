//! Command-line arguments (clap derive only).
