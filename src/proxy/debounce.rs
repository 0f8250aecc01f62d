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

    #[tokio::test]
    async fn a_burst_is_one_batch_and_later_triggers_another() {
        let window = Duration::from_millis(300);
        let (tx, mut rx) = mpsc::unbounded_channel();
        for _ in 0..5 {
            tx.send(Trigger::Event).unwrap();
        }
        let late = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            late.send(Trigger::Event).unwrap();
            tokio::time::sleep(Duration::from_millis(700)).await;
            late.send(Trigger::Timer).unwrap();
        });
        let start = std::time::Instant::now();
        assert_eq!(next_batch(&mut rx, window).await, Some(6));
        let took = start.elapsed();
        assert!(
            took >= window && took < Duration::from_millis(700),
            "{took:?}"
        );
        assert_eq!(next_batch(&mut rx, window).await, Some(1));
        drop(tx);
        assert_eq!(next_batch(&mut rx, window).await, None);
    }
}
