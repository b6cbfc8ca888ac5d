//! A read-only view of a channel's counters, for whoever runs the graph while its threads own both ends.

use alloc::sync::Arc;
use core::fmt;

use sis_platform::spsc;

use super::{ChannelStats, Receiver, Shared};

/// Reads a channel's counters; holds no end, so it neither sends nor receives. The channel's queued items
/// live until its ends and every monitor are dropped.
pub struct Monitor<T> {
    ring: Arc<spsc::Ring<T, Shared<T>>>,
}

impl<T> Monitor<T> {
    /// The channel's counters.
    pub fn stats(&self) -> ChannelStats {
        super::stats(&self.ring)
    }
}

impl<T> Receiver<T> {
    /// A monitor of this channel.
    pub fn monitor(&self) -> Monitor<T> {
        Monitor { ring: Arc::clone(self.consumer.ring()) }
    }
}

impl<T> fmt::Debug for Monitor<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Monitor").field("stats", &self.stats()).finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::channel::{channel, Overflow};

    #[test]
    fn a_monitor_reads_the_counters_after_both_ends_are_gone() {
        let (sender, receiver) = channel::<u32>(2, Overflow::DropNewest).unwrap();
        let monitor = receiver.monitor();
        for item in 0..3 {
            sender.try_send(item).unwrap();
        }
        assert_eq!(receiver.try_recv(), Ok(0));
        drop(sender);
        drop(receiver);
        let stats = monitor.stats();
        assert_eq!((stats.offered, stats.received, stats.dropped, stats.drained, stats.queued), (3, 1, 2, 1, 0));
        assert!(stats.closed);
    }
}
