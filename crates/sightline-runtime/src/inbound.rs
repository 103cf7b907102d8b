//! What a connection has handed its session and the session has not handled
//! yet, bounded per connection.
//!
//! Each message a connection forwards carries an [`InboundTicket`] for its
//! size; the ticket gives the bytes back to the connection's
//! [`InboundBudget`] when the session has handled (dropped) the message.
//! Past the bound the connection stops reading its socket until the
//! session catches up ([`InboundBudget::below_bound`]), so a client that
//! sends faster than its session works is slowed by TCP, not buffered.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Bytes one connection has forwarded and its session not handled yet.
#[derive(Debug)]
pub struct InboundBudget {
    pending: AtomicUsize,
    bound: usize,
    drained: Notify,
}

impl InboundBudget {
    /// A budget that counts as over past `bound` bytes.
    pub fn new(bound: usize) -> Arc<InboundBudget> {
        Arc::new(InboundBudget {
            pending: AtomicUsize::new(0),
            bound,
            drained: Notify::new(),
        })
    }

    /// Counts `bytes` as forwarded until the ticket is dropped.
    pub fn ticket(self: &Arc<Self>, bytes: usize) -> InboundTicket {
        self.pending.fetch_add(bytes, Ordering::AcqRel);
        InboundTicket {
            budget: Some(self.clone()),
            bytes,
        }
    }

    /// Bytes forwarded and not handled yet.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Whether the connection should stop reading.
    pub fn over(&self) -> bool {
        self.pending() > self.bound
    }

    /// Resolves once the pending bytes are back within the bound.
    pub async fn below_bound(self: Arc<Self>) {
        while self.over() {
            self.drained.notified().await;
        }
    }
}

/// The size of one forwarded message, given back when it is dropped.
#[derive(Debug)]
pub struct InboundTicket {
    budget: Option<Arc<InboundBudget>>,
    bytes: usize,
}

impl InboundTicket {
    /// A ticket that counts against nothing (for messages made in-process).
    pub fn untracked() -> InboundTicket {
        InboundTicket {
            budget: None,
            bytes: 0,
        }
    }
}

impl Drop for InboundTicket {
    fn drop(&mut self) {
        if let Some(budget) = self.budget.take() {
            let before = budget.pending.fetch_sub(self.bytes, Ordering::AcqRel);
            // Only the drop that brings the budget back under its bound
            // can matter to a paused connection; the others wake no one.
            // One waiter at most (the connection); a stored permit covers a
            // drop that comes before it waits.
            if before > budget.bound && before - self.bytes <= budget.bound {
                budget.drained.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tickets_count_until_dropped_and_wake_the_waiter() {
        let budget = InboundBudget::new(10);
        let a = budget.ticket(8);
        assert!(!budget.over());
        let b = budget.ticket(8);
        assert!(budget.over());
        assert_eq!(budget.pending(), 16);
        let waiter = tokio::spawn(budget.clone().below_bound());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        drop(a);
        assert_eq!(budget.pending(), 0);
        drop(InboundTicket::untracked());
    }
}
