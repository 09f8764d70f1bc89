//! Where received spans go: attributed to a scenario by trace id, else by the environment
//! resource attribute and the lease window of that environment; capped per scenario.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::model::{AttrValue, Span};

/// Resource attribute clnrm puts in `OTEL_RESOURCE_ATTRIBUTES` to name the environment.
pub const ENV_ATTR: &str = "clnrm.environment";

/// Limits that keep a flood of spans from taking the machine down.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Spans kept per scenario; the rest are counted and dropped.
    pub spans_per_scenario: usize,
    /// Spans kept that no scenario claimed (late or foreign), across the run.
    pub unattributed: usize,
    /// Bytes of one request body, after decompression.
    pub body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            spans_per_scenario: 50_000,
            unattributed: 10_000,
            body_bytes: 16 << 20,
        }
    }
}

/// Identifies one scenario attempt while it runs.
pub type ScenarioKey = u64;

#[derive(Debug, Default)]
struct Bucket {
    spans: Vec<Span>,
    dropped: usize,
}

/// A lease of an environment by a scenario: spans carrying the environment's id and starting
/// inside the window belong to it.
#[derive(Debug, Clone)]
struct Lease {
    key: ScenarioKey,
    from_ns: u64,
    /// `None` while the scenario holds it.
    until_ns: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    next_key: ScenarioKey,
    by_trace: HashMap<u128, ScenarioKey>,
    leases: HashMap<String, Vec<Lease>>,
    buckets: HashMap<ScenarioKey, Bucket>,
    unattributed: Vec<Span>,
    unattributed_dropped: usize,
    warnings: Vec<String>,
}

/// The span store of a run. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Collector {
    state: Arc<Mutex<State>>,
    limits: Limits,
}

/// What [`Collector::ingest`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    pub accepted: usize,
    /// Dropped because a scenario (or the unattributed pool) was full.
    pub dropped: usize,
}

const MAX_WARNINGS: usize = 100;

impl Collector {
    pub fn new(limits: Limits) -> Collector {
        Collector {
            state: Arc::default(),
            limits,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters for attribution; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start collecting for one scenario attempt whose spans carry `trace_id`, running in
    /// environment `env_id` from `now_ns`.
    pub fn open(&self, trace_id: u128, env_id: &str, now_ns: u64) -> ScenarioKey {
        let mut st = self.lock();
        st.next_key += 1;
        let key = st.next_key;
        st.by_trace.insert(trace_id, key);
        st.leases
            .entry(env_id.to_string())
            .or_default()
            .push(Lease {
                key,
                from_ns: now_ns,
                until_ns: None,
            });
        st.buckets.insert(key, Bucket::default());
        key
    }

    /// The environment was handed back at `now_ns`.
    pub fn end_lease(&self, key: ScenarioKey, env_id: &str, now_ns: u64) {
        let mut st = self.lock();
        if let Some(ls) = st.leases.get_mut(env_id) {
            for l in ls.iter_mut().filter(|l| l.key == key) {
                l.until_ns.get_or_insert(now_ns);
            }
        }
    }

    /// Stop collecting: the scenario's spans (sorted by start time) and how many were
    /// dropped over the cap. Spans arriving later land in the unattributed pool.
    pub fn close(&self, key: ScenarioKey) -> (Vec<Span>, usize) {
        let mut st = self.lock();
        st.by_trace.retain(|_, k| *k != key);
        for ls in st.leases.values_mut() {
            ls.retain(|l| l.key != key);
        }
        st.leases.retain(|_, ls| !ls.is_empty());
        let b = st.buckets.remove(&key).unwrap_or_default();
        let mut spans = b.spans;
        spans.sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then(a.span_id.cmp(&b.span_id)));
        (spans, b.dropped)
    }

    /// A copy of the spans held for a scenario so far (for an early check while flushing).
    pub fn snapshot(&self, key: ScenarioKey) -> (Vec<Span>, usize) {
        self.lock()
            .buckets
            .get(&key)
            .map_or((Vec::new(), 0), |b| (b.spans.clone(), b.dropped))
    }

    /// Number of spans held for a scenario so far.
    pub fn count(&self, key: ScenarioKey) -> usize {
        self.lock().buckets.get(&key).map_or(0, |b| b.spans.len())
    }

    /// Add a span clnrm made itself (scenario and step spans).
    pub fn push_own(&self, key: ScenarioKey, span: Span) {
        let mut st = self.lock();
        if let Some(b) = st.buckets.get_mut(&key) {
            b.spans.push(span);
        }
    }

    /// Store received spans.
    pub fn ingest(&self, spans: Vec<Span>) -> Ingested {
        let cap = self.limits.spans_per_scenario;
        let mut out = Ingested::default();
        let mut st = self.lock();
        let st = &mut *st;
        for span in spans {
            let key = st.by_trace.get(&span.trace_id).copied().or_else(|| {
                let env = match span.resource.get(ENV_ATTR) {
                    Some(AttrValue::Str(e)) => e,
                    _ => return None,
                };
                st.leases.get(env)?.iter().find_map(|l| {
                    let inside =
                        span.start_ns >= l.from_ns && l.until_ns.is_none_or(|u| span.start_ns <= u);
                    inside.then_some(l.key)
                })
            });
            match key.and_then(|k| st.buckets.get_mut(&k).map(|b| (k, b))) {
                Some((k, b)) => {
                    if b.spans.len() < cap {
                        b.spans.push(span);
                        out.accepted += 1;
                    } else {
                        if b.dropped == 0 {
                            let msg = format!(
                                "telemetry: scenario span cap of {cap} reached (scenario #{k}); further spans are dropped"
                            );
                            if st.warnings.len() < MAX_WARNINGS {
                                st.warnings.push(msg);
                            }
                        }
                        b.dropped += 1;
                        out.dropped += 1;
                    }
                }
                None => {
                    if st.unattributed.len() < self.limits.unattributed {
                        st.unattributed.push(span);
                        out.accepted += 1;
                    } else {
                        st.unattributed_dropped += 1;
                        out.dropped += 1;
                    }
                }
            }
        }
        out
    }

    /// Take the spans no scenario claimed (a receiver used as a plain collector, as the tests of
    /// `--otel-endpoint` do).
    pub fn take_unattributed(&self) -> Vec<Span> {
        std::mem::take(&mut self.lock().unattributed)
    }

    /// Record a warning for the end of the run (bad requests, caps).
    pub fn warn(&self, msg: String) {
        let mut st = self.lock();
        if st.warnings.len() < MAX_WARNINGS && !st.warnings.contains(&msg) {
            st.warnings.push(msg);
        }
    }

    /// Warnings so far (drained), plus a line about unattributed spans.
    pub fn take_warnings(&self) -> Vec<String> {
        let mut st = self.lock();
        let mut w = std::mem::take(&mut st.warnings);
        if !st.unattributed.is_empty() || st.unattributed_dropped > 0 {
            w.push(format!(
                "telemetry: {} matched no running scenario (neither trace id nor environment); {} dropped",
                crate::report::count_of(st.unattributed.len() + st.unattributed_dropped, "span"),
                st.unattributed_dropped
            ));
            st.unattributed.clear();
            st.unattributed_dropped = 0;
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::model::tests::span;
    use crate::telemetry::model::Attrs;

    fn with_env(mut s: Span, trace: u128, env: &str) -> Span {
        s.trace_id = trace;
        s.resource = Arc::new(Attrs::from([(
            ENV_ATTR.to_string(),
            AttrValue::Str(env.into()),
        )]));
        s
    }

    #[test]
    fn spans_go_to_their_scenario_by_trace_id_then_by_environment_window() {
        let c = Collector::new(Limits::default());
        let a = c.open(7, "env-a", 100);
        let b = c.open(8, "env-b", 100);
        let got = c.ingest(vec![
            with_env(span(1, None, "by-trace", 150, 160), 7, "elsewhere"),
            // Foreign trace id (a service that did not join the trace), env-b's lease.
            with_env(span(2, None, "by-env", 150, 160), 99, "env-b"),
            // Before env-b's lease started: not env-b's.
            with_env(span(3, None, "too-early", 50, 60), 99, "env-b"),
        ]);
        assert_eq!(
            got,
            Ingested {
                accepted: 3,
                dropped: 0
            }
        );
        c.end_lease(b, "env-b", 200);
        c.ingest(vec![with_env(
            span(4, None, "after", 250, 260),
            98,
            "env-b",
        )]);
        let (sa, _) = c.close(a);
        let (sb, _) = c.close(b);
        assert_eq!(
            sa.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["by-trace"]
        );
        assert_eq!(
            sb.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["by-env"]
        );
        let w = c.take_warnings();
        assert!(
            w[0].contains("2 spans matched no running scenario"),
            "{w:?}"
        );
    }

    #[test]
    fn a_flood_is_capped_per_scenario_with_a_warning() {
        let c = Collector::new(Limits {
            spans_per_scenario: 3,
            ..Limits::default()
        });
        let k = c.open(1, "e", 0);
        let got = c.ingest((0..5).map(|i| span(i, None, "s", 1, 2)).collect());
        assert_eq!(
            got,
            Ingested {
                accepted: 3,
                dropped: 2
            }
        );
        let (spans, dropped) = c.close(k);
        assert_eq!((spans.len(), dropped), (3, 2));
        let w = c.take_warnings();
        assert!(w[0].contains("span cap of 3"), "{w:?}");
    }
}
