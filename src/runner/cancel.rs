//! Cancellation of a run or a watch session, with the reason it was cut short.

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

/// A cancel switch shared by everything one run (or session) starts. The first reason given
/// wins: a fail-fast stop followed by Ctrl-C stays a fail-fast stop.
#[derive(Debug, Clone)]
pub struct Cancel(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    tx: watch::Sender<bool>,
    reason: OnceLock<String>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel::new()
    }
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel(Arc::new(Inner {
            tx: watch::channel(false).0,
            reason: OnceLock::new(),
        }))
    }

    pub fn cancel(&self, reason: impl Into<String>) {
        let _ = self.0.reason.set(reason.into());
        self.0.tx.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.0.tx.borrow()
    }

    pub fn reason(&self) -> Option<&str> {
        self.0.reason.get().map(String::as_str)
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.tx.subscribe()
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        let _ = self.subscribe().wait_for(|c| *c).await;
    }

    /// A switch for one run inside this one (a watch cycle, a confirmation run): cancelling
    /// the parent cancels the child with the parent's reason; the child (fail-fast) leaves the
    /// parent alone. The forwarding task ends with the child's last handle.
    pub fn child(&self) -> Cancel {
        let child = Cancel::new();
        let parent = self.clone();
        let weak = Arc::downgrade(&child.0);
        tokio::spawn(async move {
            let mut closed = {
                let Some(c) = weak.upgrade() else { return };
                c.tx.subscribe()
            };
            tokio::select! {
                _ = parent.cancelled() => {
                    if let Some(c) = weak.upgrade() {
                        Cancel(c).cancel(parent.reason().unwrap_or("cancelled").to_string());
                    }
                }
                // The child was cancelled on its own or dropped: nothing left to forward.
                _ = closed.wait_for(|c| *c) => {}
            }
        });
        child
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_wins_and_children_follow_parents() {
        let parent = Cancel::new();
        let child = parent.child();
        child.cancel("stopped by --fail-fast");
        assert!(!parent.is_cancelled());
        let other = parent.child();
        parent.cancel("interrupted by SIGTERM");
        parent.cancel("interrupted by SIGINT");
        assert_eq!(parent.reason(), Some("interrupted by SIGTERM"));
        tokio::time::timeout(std::time::Duration::from_secs(5), other.cancelled())
            .await
            .expect("the child follows its parent");
        assert_eq!(other.reason(), Some("interrupted by SIGTERM"));
        assert_eq!(child.reason(), Some("stopped by --fail-fast"));
    }
}
