//! The readiness-probe loop both backends share: run the probe every `interval` until it
//! exits 0, give up after `timeout` with the last output so the user sees why.

use std::future::Future;
use std::time::{Duration, Instant};

use super::{describe_probe, BackendError, ExecOutput};
use crate::suite::ReadyProbe;

/// What one probe attempt can end in besides an output.
pub(crate) enum ProbeError {
    /// Try again (the message is kept as the last reason).
    Retry(String),
    /// Give up now: the service can never become ready.
    Fatal(BackendError),
}

/// Run `attempt` (given the time left) until the probe passes or `probe.timeout` is spent.
pub(crate) async fn wait_ready<F, Fut>(
    service: &str,
    probe: &ReadyProbe,
    mut attempt: F,
) -> Result<(), BackendError>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<ExecOutput, ProbeError>>,
{
    let start = Instant::now();
    let mut last = String::from("probe never ran");
    let mut complete = 0u32;
    loop {
        let left = probe.timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(BackendError::NotReady {
                service: service.to_string(),
                timeout_ms: probe.timeout.as_millis() as u64,
                last,
            });
        }
        match attempt(left).await {
            Ok(out) if out.exit_code == Some(0) => return Ok(()),
            Ok(out) if out.timed_out => {
                // An attempt cut short by the overall deadline says less than the previous
                // complete one; keep that if there was one.
                if complete == 0 {
                    last = format!("probe still running after {} ms", left.as_millis());
                }
            }
            Ok(out) => {
                complete += 1;
                last = describe_probe(&out);
            }
            Err(ProbeError::Retry(message)) => last = message,
            Err(ProbeError::Fatal(e)) => return Err(e),
        }
        tokio::time::sleep(
            probe
                .interval
                .min(probe.timeout.saturating_sub(start.elapsed())),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn probe(timeout_ms: u64) -> ReadyProbe {
        ReadyProbe {
            cmd: vec!["true".into()],
            timeout: Duration::from_millis(timeout_ms),
            interval: Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn passes_on_the_first_zero_exit() {
        let calls = AtomicU32::new(0);
        let res = wait_ready("db", &probe(5_000), |_| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(ExecOutput {
                    exit_code: Some(if n < 2 { 1 } else { 0 }),
                    ..Default::default()
                })
            }
        })
        .await;
        assert!(res.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn times_out_with_the_last_complete_attempt() {
        let err = wait_ready("db", &probe(30), |_| async {
            Ok(ExecOutput {
                exit_code: Some(3),
                stdout: b"not yet".to_vec(),
                ..Default::default()
            })
        })
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "service `db` did not become ready within 30 ms: exit 3: not yet"
        );
    }

    #[tokio::test]
    async fn a_fatal_error_ends_the_wait() {
        let err = wait_ready("db", &probe(60_000), |_| async {
            Err(ProbeError::Fatal(BackendError::Other("gone".into())))
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "gone");
    }
}
