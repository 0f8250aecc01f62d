//! Debouncing sync triggers: the first trigger opens a window; every trigger that arrives
//! within it is absorbed, and the window's end yields one sync. A burst of scheduler
//! events therefore costs one fetch and one render, and the delay is bounded by the window.

use std::time::Duration;

use tokio::sync::mpsc;

/// Why a sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A relevant scheduler event.
    Event,
    /// The event stream (re)connected: resync everything.
    Connected,
    /// The periodic safety-net resync.
    Timer,
}

/// Waits for a trigger, then absorbs the others that arrive within `window`. Returns how
/// many triggers the batch absorbed, or `None` when every sender is gone.
pub async fn next_batch(
    rx: &mut mpsc::UnboundedReceiver<Trigger>,
    window: Duration,
) -> Option<usize> {
    rx.recv().await?;
    let mut count = 1;
    let deadline = tokio::time::Instant::now() + window;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(_)) => count += 1,
            Ok(None) | Err(_) => return Some(count),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_one_batch_and_later_triggers_another() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for _ in 0..5 {
            tx.send(Trigger::Event).unwrap();
        }
        let late = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            late.send(Trigger::Event).unwrap();
            tokio::time::sleep(Duration::from_millis(1000)).await;
            late.send(Trigger::Timer).unwrap();
        });
        let start = tokio::time::Instant::now();
        assert_eq!(
            next_batch(&mut rx, Duration::from_millis(500)).await,
            Some(6)
        );
        assert_eq!(start.elapsed(), Duration::from_millis(500));
        assert_eq!(
            next_batch(&mut rx, Duration::from_millis(500)).await,
            Some(1)
        );
        drop(tx);
        assert_eq!(next_batch(&mut rx, Duration::from_millis(500)).await, None);
    }
}
