//! Watch mode core: which file events matter, adaptive debounce, and the watched set with
//! sha256 change detection and affected-test selection. The session loop that runs the
//! selected tests lives in `commands::watch`.

mod debounce;
mod filter;
mod set;
mod summary;

pub use debounce::{Burst, Debounce};
pub use filter::{is_editor_temp, is_ignored, is_interesting};
pub use set::{Changes, Reloaded, WatchSet};
pub use summary::{describe, fmt_ms, latency_line, published_line, Timing};
