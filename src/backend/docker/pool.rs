//! The pool of environments per service configuration: ready ones waiting for a scenario and
//! creations in flight, bounded by `pool_size`.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use tokio::sync::oneshot;

use super::create::EnvParts;
use crate::backend::BackendError;
use crate::suite::ServiceSpec;

/// An environment being created in the background; resolves when it is ready.
pub(crate) type Pending = oneshot::Receiver<Result<EnvParts, BackendError>>;

/// Pool key of a test's environments: its services as they will be created and, unless every
/// service opted in to sharing across tests (`reuse = "suite"`), the test's identity, so a
/// reused environment (and its state) never reaches another test. Source lines are left out.
pub(crate) fn key_of_test(test: &crate::suite::TestSpec) -> u64 {
    let services = key_of(&test.services);
    if !test.services.is_empty() && test.services.values().all(|s| s.reuse_suite) {
        return services;
    }
    let mut h = DefaultHasher::new();
    services.hash(&mut h);
    test.path.hash(&mut h);
    test.name.hash(&mut h);
    h.finish()
}

/// Hash of the services as they will be created (source lines left out).
pub(crate) fn key_of(services: &BTreeMap<String, ServiceSpec>) -> u64 {
    let mut h = DefaultHasher::new();
    for (id, svc) in services {
        id.hash(&mut h);
        let mut s = svc.clone();
        s.line = 0;
        s.hash(&mut h);
    }
    h.finish()
}

#[derive(Default)]
struct Entry {
    idle: VecDeque<EnvParts>,
    pending: VecDeque<Pending>,
    /// Pool clock at the last `put_idle` of this key (least recently used goes first).
    released: u64,
}

/// Where an acquire gets its environment from.
pub(crate) enum Take {
    Idle(EnvParts),
    Pending(Pending),
    Nothing,
}

#[derive(Default)]
pub(crate) struct Pool {
    entries: HashMap<u64, Entry>,
    closed: bool,
    clock: u64,
}

impl Pool {
    /// Environments held ready or being warmed (not the ones in use).
    pub fn warm_count(&self) -> usize {
        self.entries
            .values()
            .map(|e| e.idle.len() + e.pending.len())
            .sum()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn take(&mut self, key: u64) -> Take {
        let Some(e) = self.entries.get_mut(&key) else {
            return Take::Nothing;
        };
        if let Some(p) = e.idle.pop_front() {
            Take::Idle(p)
        } else if let Some(rx) = e.pending.pop_front() {
            Take::Pending(rx)
        } else {
            Take::Nothing
        }
    }

    /// Environments of `key` ready or being warmed.
    pub fn warm_for(&self, key: u64) -> usize {
        self.entries
            .get(&key)
            .map_or(0, |e| e.idle.len() + e.pending.len())
    }

    /// Room for `n` more warm environments under `limit`.
    pub fn room(&self, limit: usize) -> usize {
        limit.saturating_sub(self.warm_count())
    }

    pub fn add_pending(&mut self, key: u64, rx: Pending) {
        self.entries.entry(key).or_default().pending.push_back(rx);
    }

    /// Put a released, reusable environment back; returns it if the pool is closed or full.
    // The error hands the environment itself back to the caller (who removes it): boxing it
    // would only add an allocation to the common path.
    #[allow(clippy::result_large_err)]
    pub fn put_idle(&mut self, parts: EnvParts, limit: usize) -> Result<(), EnvParts> {
        if self.closed || self.warm_count() >= limit {
            return Err(parts);
        }
        self.clock += 1;
        let e = self.entries.entry(parts.key).or_default();
        e.released = self.clock;
        e.idle.push_back(parts);
        Ok(())
    }

    /// When the pool is full, take out an idle environment of another configuration, the one
    /// released longest ago, so that `key` (just used) can stay warm; the caller removes it.
    /// Without this a long watch session fills the pool with configurations nobody edits any
    /// more and every later cycle starts a cold environment.
    pub fn evict_lru_for(&mut self, key: u64, limit: usize) -> Option<EnvParts> {
        if self.closed || self.warm_count() < limit {
            return None;
        }
        let (_, victim) = self
            .entries
            .iter_mut()
            .filter(|(k, e)| **k != key && !e.idle.is_empty())
            .min_by_key(|(_, e)| e.released)?;
        victim.idle.pop_front()
    }

    /// Close the pool and hand back everything it held. Dropping the pending receivers
    /// makes their creation tasks remove the environments they finish building.
    pub fn drain(&mut self) -> Vec<EnvParts> {
        self.closed = true;
        self.entries
            .drain()
            .flat_map(|(_, e)| e.idle.into_iter())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(id: &str, image: &str, line: u32) -> ServiceSpec {
        ServiceSpec {
            line,
            ..ServiceSpec::named(id).with_image(image)
        }
    }

    fn parts(key: u64) -> EnvParts {
        let mut p = EnvParts::new(key, String::new(), true);
        p.used = true;
        p
    }

    #[test]
    fn key_ignores_lines_but_not_config() {
        let a = BTreeMap::from([("a".to_string(), svc("a", "img:1", 3))]);
        let b = BTreeMap::from([("a".to_string(), svc("a", "img:1", 9))]);
        let c = BTreeMap::from([("a".to_string(), svc("a", "img:2", 3))]);
        assert_eq!(key_of(&a), key_of(&b));
        assert_ne!(key_of(&a), key_of(&c));
    }

    #[test]
    fn reused_environments_stay_with_their_test_unless_suite_wide() {
        let mk = |name: &str, suite: bool| {
            let mut s = svc("a", "img:1", 3);
            (s.reuse, s.reuse_suite) = (true, suite);
            crate::suite::TestSpec::named(name).with_service(s)
        };
        assert_ne!(
            key_of_test(&mk("one", false)),
            key_of_test(&mk("two", false))
        );
        assert_eq!(key_of_test(&mk("one", true)), key_of_test(&mk("two", true)));
    }

    #[test]
    fn idle_is_bounded_and_closed_pool_refuses() {
        let mut p = Pool::default();
        assert!(p.put_idle(parts(1), 1).is_ok());
        assert!(p.put_idle(parts(1), 1).is_err());
        assert_eq!(p.room(3), 2);
        assert!(matches!(p.take(1), Take::Idle(_)));
        assert!(matches!(p.take(1), Take::Nothing));
        assert!(p.put_idle(parts(2), 5).is_ok());
        assert_eq!(p.drain().len(), 1);
        assert!(p.is_closed());
        assert!(p.put_idle(parts(2), 5).is_err());
    }

    #[test]
    fn a_full_pool_evicts_the_least_recently_released_other_configuration() {
        let mut p = Pool::default();
        assert!(p.put_idle(parts(1), 2).is_ok());
        assert!(p.put_idle(parts(2), 2).is_ok());
        assert!(
            p.evict_lru_for(3, 3).is_none(),
            "room left: nothing evicted"
        );
        assert!(
            p.evict_lru_for(1, 2).map(|e| e.key) == Some(2),
            "never the key itself"
        );
        assert!(p.put_idle(parts(3), 2).is_ok());
        assert_eq!(p.evict_lru_for(4, 2).map(|e| e.key), Some(1));
        assert!(p.put_idle(parts(4), 2).is_ok());
        assert!(matches!(p.take(3), Take::Idle(_)));
        assert!(matches!(p.take(4), Take::Idle(_)));
        assert!(matches!(p.take(1), Take::Nothing));
    }

    #[test]
    fn pending_is_taken_after_idle() {
        let mut p = Pool::default();
        let (_tx, rx) = oneshot::channel();
        p.add_pending(7, rx);
        assert!(p.put_idle(parts(7), 4).is_ok());
        assert!(matches!(p.take(7), Take::Idle(_)));
        assert!(matches!(p.take(7), Take::Pending(_)));
        assert_eq!(p.warm_count(), 0);
    }
}
