//! Adaptive debounce: one save reacts after a short quiet window; a burst touching many files
//! (git checkout, a formatter) widens the window so it is coalesced into one cycle, with a cap
//! so a never-ending stream of writes cannot starve the loop.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Window growth stops at this multiple of the base window.
const MAX_WIDENING: u32 = 4;

/// Debounce settings.
#[derive(Debug, Clone, Copy)]
pub struct Debounce {
    /// Quiet time after the last event of a single-file change (`--debounce-ms`).
    pub base: Duration,
    /// A burst is cut after this long even if events keep coming.
    pub max: Duration,
}

impl Debounce {
    pub fn new(base: Duration) -> Debounce {
        // Ten windows, at least one second: long enough for a checkout of a few hundred files.
        Debounce {
            base,
            max: (base * 10).max(Duration::from_secs(1)),
        }
    }

    /// Quiet window for a burst touching `paths` distinct files: the base for one file,
    /// growing by one base per extra file up to `MAX_WIDENING` times the base.
    pub fn window(&self, paths: usize) -> Duration {
        let extra = paths.saturating_sub(1).min(MAX_WIDENING as usize - 1) as u32;
        self.base * (1 + extra)
    }

    /// When the burst is over unless another event arrives first.
    pub fn deadline(&self, burst: &Burst) -> Instant {
        let quiet = burst.last + self.window(burst.paths.len());
        quiet.min(burst.first + self.max)
    }
}

/// The events gathered since the first one of the current cycle.
#[derive(Debug, Clone)]
pub struct Burst {
    pub first: Instant,
    /// Wall-clock arrival of the first event (compared with the file's mtime for `detect`).
    pub first_wall: SystemTime,
    pub last: Instant,
    pub paths: BTreeSet<PathBuf>,
    pub events: usize,
}

impl Burst {
    pub fn new(at: Instant, wall: SystemTime) -> Burst {
        Burst {
            first: at,
            first_wall: wall,
            last: at,
            paths: BTreeSet::new(),
            events: 0,
        }
    }

    pub fn add(&mut self, at: Instant, paths: impl IntoIterator<Item = PathBuf>) {
        self.last = self.last.max(at);
        self.events += 1;
        self.paths.extend(paths);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn single_save_waits_one_base_window() {
        let d = Debounce::new(ms(50));
        let t0 = Instant::now();
        let mut b = Burst::new(t0, SystemTime::now());
        b.add(t0, [PathBuf::from("a.clnrm.toml")]);
        // Several events on the same file (truncate, write, close) stay a single-file change.
        b.add(t0 + ms(3), [PathBuf::from("a.clnrm.toml")]);
        assert_eq!(d.deadline(&b), t0 + ms(53));
    }

    #[test]
    fn bursts_widen_the_window_up_to_four_times() {
        let d = Debounce::new(ms(50));
        assert_eq!(d.window(1), ms(50));
        assert_eq!(d.window(2), ms(100));
        assert_eq!(d.window(4), ms(200));
        assert_eq!(d.window(400), ms(200));
    }

    #[test]
    fn an_endless_stream_is_cut_at_the_cap() {
        let d = Debounce::new(ms(50));
        assert_eq!(d.max, ms(1000));
        let t0 = Instant::now();
        let mut b = Burst::new(t0, SystemTime::now());
        for i in 0..100 {
            b.add(t0 + ms(i * 20), [PathBuf::from(format!("f{i}.clnrm.toml"))]);
        }
        assert_eq!(d.deadline(&b), t0 + ms(1000));
    }

    #[test]
    fn zero_base_reacts_at_once() {
        let d = Debounce::new(Duration::ZERO);
        let t0 = Instant::now();
        let mut b = Burst::new(t0, SystemTime::now());
        b.add(t0, [PathBuf::from("a")]);
        assert_eq!(d.deadline(&b), t0);
    }
}
