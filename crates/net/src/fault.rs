//! Fault injection where the wire is: seeded drops and corruptions of frames, and partitions that drop everything.
//!
//! Every frame that crosses the injector, received or transmitted, meets the
//! same checks in this order: a partition in force drops it; else it is
//! dropped with the drop probability; else one of its bits is flipped with the
//! corrupt probability (a corrupted frame still goes on, and the stack's
//! checksums are what must catch it). Drops and corruptions draw from two
//! generators seeded by the caller, so a seed replays the same faults for the
//! same frames. Setting a fault changes no counter; `clear` ends every fault
//! and keeps the counters.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use sis_hal::SeededRandom;

use crate::FrameIo;

/// Highest probability, percent.
pub const MAX_PERCENT: u64 = 100;

/// The faults in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultState {
    /// When the partition ends (clock ns), if one is set.
    pub partition_until_ns: Option<u64>,
    /// Chance that a frame is dropped, percent.
    pub drop_percent: u64,
    /// Seed of the drop generator.
    pub drop_seed: u64,
    /// Chance that a frame gets one bit flipped, percent.
    pub corrupt_percent: u64,
    /// Seed of the corruption generator.
    pub corrupt_seed: u64,
}

/// Frame counters since the device was attached (`clear` keeps them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Frames the device delivered to the injector.
    pub received_frames: u64,
    /// Frames the stack handed to the injector.
    pub transmitted_frames: u64,
    /// Bytes of the frames the device delivered.
    pub received_bytes: u64,
    /// Bytes of the frames the stack handed over.
    pub transmitted_bytes: u64,
    /// Frames dropped by the drop probability (both directions).
    pub dropped_random: u64,
    /// Frames dropped because a partition was in force (both directions).
    pub dropped_partition: u64,
    /// Frames that had a bit flipped (both directions).
    pub corrupted: u64,
    /// Frames the device refused to send.
    pub transmit_failures: u64,
    /// Frames put in front of the receive path by [`FaultInjector::inject_received`].
    pub injected_frames: u64,
}

/// Most transmitted frames kept while capturing.
pub const MAX_CAPTURED_FRAMES: usize = 64;

/// A [`FrameIo`] wrapper that drops, corrupts and partitions.
#[derive(Debug)]
pub struct FaultInjector<F> {
    io: F,
    state: FaultState,
    drop_random: SeededRandom,
    corrupt_random: SeededRandom,
    stats: FaultStats,
    /// Frames to receive before the device's, as if they came off the wire.
    injected: VecDeque<Vec<u8>>,
    /// Copies of transmitted frames, while capturing.
    captured: Option<Vec<Vec<u8>>>,
}

/// What happens to one frame.
enum Verdict {
    Pass,
    DropPartition,
    DropRandom,
}

impl<F: FrameIo> FaultInjector<F> {
    /// Wraps `io` with no fault in force.
    pub fn new(io: F) -> Self {
        FaultInjector {
            io,
            state: FaultState::default(),
            drop_random: SeededRandom::new(0),
            corrupt_random: SeededRandom::new(0),
            stats: FaultStats::default(),
            injected: VecDeque::new(),
            captured: None,
        }
    }

    /// Queues `frame` to be received next, ahead of the device's frames and past the faults: it
    /// takes the stack's real receive path (the red team delivers malformed frames this way).
    pub fn inject_received(&mut self, frame: Vec<u8>) {
        self.injected.push_back(frame);
    }

    /// Starts keeping copies of transmitted frames (at most [`MAX_CAPTURED_FRAMES`]); earlier copies are dropped.
    pub fn start_capture(&mut self) {
        self.captured = Some(Vec::new());
    }

    /// Stops capturing and returns the frames transmitted since [`start_capture`](Self::start_capture).
    pub fn take_captured(&mut self) -> Vec<Vec<u8>> {
        self.captured.take().unwrap_or_default()
    }

    /// The wrapped device.
    pub fn io(&self) -> &F {
        &self.io
    }

    /// The wrapped device, mutably.
    pub fn io_mut(&mut self) -> &mut F {
        &mut self.io
    }

    /// Drops each frame with `percent` % chance from a generator seeded with `seed`; refuses above 100.
    pub fn set_drop_percent(&mut self, percent: u64, seed: u64) -> Result<(), u64> {
        if percent > MAX_PERCENT {
            return Err(percent);
        }
        self.state.drop_percent = percent;
        self.state.drop_seed = seed;
        self.drop_random = SeededRandom::new(seed);
        Ok(())
    }

    /// Flips one bit of each frame with `percent` % chance from a generator seeded with `seed`; refuses above 100.
    pub fn set_corrupt_percent(&mut self, percent: u64, seed: u64) -> Result<(), u64> {
        if percent > MAX_PERCENT {
            return Err(percent);
        }
        self.state.corrupt_percent = percent;
        self.state.corrupt_seed = seed;
        self.corrupt_random = SeededRandom::new(seed);
        Ok(())
    }

    /// Drops every frame from `now_ns` for `duration_ns`; returns when the partition ends.
    pub fn partition_for(&mut self, now_ns: u64, duration_ns: u64) -> u64 {
        let until = now_ns.saturating_add(duration_ns);
        self.state.partition_until_ns = Some(until);
        until
    }

    /// Ends every fault; counters are kept.
    pub fn clear(&mut self) {
        self.state = FaultState::default();
    }

    /// The faults in force at `now_ns` (an elapsed partition is reported as none).
    pub fn state(&self, now_ns: u64) -> FaultState {
        FaultState { partition_until_ns: self.state.partition_until_ns.filter(|&until| until > now_ns), ..self.state }
    }

    /// Counters.
    pub fn stats(&self) -> FaultStats {
        self.stats
    }

    fn judge(&mut self, now_ns: u64) -> Verdict {
        if self.state.partition_until_ns.is_some_and(|until| now_ns < until) {
            self.stats.dropped_partition += 1;
            return Verdict::DropPartition;
        }
        if self.state.drop_percent > 0 && self.drop_random.chance_percent(self.state.drop_percent) {
            self.stats.dropped_random += 1;
            return Verdict::DropRandom;
        }
        Verdict::Pass
    }

    /// Flips one bit, position drawn from the corruption generator, with the corrupt probability.
    fn maybe_corrupt(&mut self, frame: &mut [u8]) {
        if self.state.corrupt_percent == 0 || frame.is_empty() {
            return;
        }
        if self.corrupt_random.chance_percent(self.state.corrupt_percent) {
            let bit = self.corrupt_random.below(frame.len() as u64 * 8);
            frame[(bit / 8) as usize] ^= 1 << (bit % 8);
            self.stats.corrupted += 1;
        }
    }
}

impl<F: FrameIo> FrameIo for FaultInjector<F> {
    /// The next frame that survives the faults; the ones dropped on the way are consumed from the device.
    fn receive(&mut self, now_ns: u64) -> Option<Vec<u8>> {
        if let Some(frame) = self.injected.pop_front() {
            self.stats.injected_frames += 1;
            return Some(frame);
        }
        loop {
            let mut frame = self.io.receive(now_ns)?;
            self.stats.received_frames += 1;
            self.stats.received_bytes += frame.len() as u64;
            match self.judge(now_ns) {
                Verdict::Pass => {
                    self.maybe_corrupt(&mut frame);
                    return Some(frame);
                }
                Verdict::DropPartition | Verdict::DropRandom => continue,
            }
        }
    }

    fn can_transmit(&mut self) -> bool {
        self.io.can_transmit()
    }

    /// As [`receive`](FrameIo::receive), into `frame`.
    fn receive_into(&mut self, now_ns: u64, frame: &mut Vec<u8>) -> bool {
        if let Some(injected) = self.injected.pop_front() {
            self.stats.injected_frames += 1;
            // Copied, so the caller's buffer (and its room) stays the caller's.
            frame.clear();
            frame.extend_from_slice(&injected);
            return true;
        }
        loop {
            if !self.io.receive_into(now_ns, frame) {
                return false;
            }
            self.stats.received_frames += 1;
            self.stats.received_bytes += frame.len() as u64;
            match self.judge(now_ns) {
                Verdict::Pass => {
                    self.maybe_corrupt(frame);
                    return true;
                }
                Verdict::DropPartition | Verdict::DropRandom => continue,
            }
        }
    }

    /// With no fault in force and no capture, straight through to the device (the same counts as
    /// [`transmit`](FrameIo::transmit)); otherwise the frame is filled here and goes through `transmit`.
    fn transmit_with(&mut self, now_ns: u64, length: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        let faulty = self.captured.is_some()
            || self.state.drop_percent > 0
            || self.state.corrupt_percent > 0
            || self.state.partition_until_ns.is_some_and(|until| now_ns < until);
        if faulty {
            let mut frame = alloc::vec![0u8; length];
            fill(&mut frame);
            return self.transmit(now_ns, &frame);
        }
        self.stats.transmitted_frames += 1;
        self.stats.transmitted_bytes += length as u64;
        let sent = self.io.transmit_with(now_ns, length, fill);
        if !sent {
            self.stats.transmit_failures += 1;
        }
        sent
    }

    fn transmit(&mut self, now_ns: u64, frame: &[u8]) -> bool {
        self.stats.transmitted_frames += 1;
        self.stats.transmitted_bytes += frame.len() as u64;
        if let Some(captured) = self.captured.as_mut().filter(|captured| captured.len() < MAX_CAPTURED_FRAMES) {
            captured.push(frame.to_vec());
        }
        match self.judge(now_ns) {
            // A dropped frame left as far as the sender can tell.
            Verdict::DropPartition | Verdict::DropRandom => true,
            Verdict::Pass => {
                let sent = if self.state.corrupt_percent > 0 {
                    let mut copy = frame.to_vec();
                    self.maybe_corrupt(&mut copy);
                    self.io.transmit(now_ns, &copy)
                } else {
                    self.io.transmit(now_ns, frame)
                };
                if !sent {
                    self.stats.transmit_failures += 1;
                }
                sent
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Wire;

    fn frame(index: u8) -> Vec<u8> {
        alloc::vec![index; 64]
    }

    #[test]
    fn frames_written_in_place_meet_the_same_faults_captures_and_counts_as_copied_ones() {
        let (near, mut far) = Wire::new();
        let mut faults = FaultInjector::new(near);
        let mut fills = 0;
        let mut send = |faults: &mut FaultInjector<crate::fake::WireEnd>, index: u8, now_ns: u64| {
            faults.transmit_with(now_ns, 64, &mut |buffer| {
                fills += 1;
                buffer.fill(index);
            })
        };
        assert!(send(&mut faults, 1, 0));
        faults.start_capture();
        assert!(send(&mut faults, 2, 0));
        assert_eq!(faults.take_captured(), vec![frame(2)]);
        faults.partition_for(0, 1_000);
        assert!(send(&mut faults, 3, 500), "a dropped frame left as far as the sender can tell");
        assert!(send(&mut faults, 4, 1_000), "the partition is over");
        assert_eq!(fills, 4, "`fill` runs once per frame, dropped or not");
        assert_eq!((faults.stats().transmitted_frames, faults.stats().dropped_partition), (4, 1));
        let mut arrived = Vec::new();
        while let Some(received) = far.receive(0) {
            arrived.push(received);
        }
        assert_eq!(arrived, vec![frame(1), frame(2), frame(4)]);

        far.transmit(0, &frame(9));
        let mut into = vec![0u8; 3];
        assert!(faults.receive_into(2_000, &mut into));
        assert_eq!(into, frame(9));
        assert!(!faults.receive_into(2_000, &mut into), "nothing more waiting");
    }

    #[test]
    fn without_faults_every_frame_passes_unchanged_both_ways() {
        let (near, mut far) = Wire::new();
        let mut faults = FaultInjector::new(near);
        for index in 0..10 {
            faults.io().inject(frame(index));
            assert!(faults.transmit(0, &frame(100 + index)));
        }
        for index in 0..10 {
            assert_eq!(faults.receive(0), Some(frame(index)));
        }
        assert_eq!(faults.receive(0), None);
        for index in 0..10 {
            assert_eq!(far.receive(0), Some(frame(100 + index)));
        }
        let stats = faults.stats();
        assert_eq!((stats.received_frames, stats.transmitted_frames), (10, 10));
        assert_eq!((stats.received_bytes, stats.transmitted_bytes), (640, 640));
        assert_eq!((stats.dropped_random, stats.dropped_partition, stats.corrupted), (0, 0, 0));
    }

    #[test]
    fn a_partition_drops_everything_until_it_ends_then_nothing() {
        let (near, mut far) = Wire::new();
        let mut faults = FaultInjector::new(near);
        assert_eq!(faults.partition_for(1_000, 2_000), 3_000);
        assert_eq!(faults.state(2_999).partition_until_ns, Some(3_000));
        for index in 0..5 {
            faults.io().inject(frame(index));
            assert!(faults.transmit(2_999, &frame(index)), "a dropped frame looks sent");
        }
        assert_eq!(faults.receive(2_999), None, "all five consumed and dropped");
        assert_eq!(far.pending() + far.receive(0).map_or(0, |_| 1), 0, "nothing reached the far end");
        assert_eq!(faults.stats().dropped_partition, 10);
        assert_eq!(faults.state(3_000).partition_until_ns, None);
        faults.io().inject(frame(9));
        assert_eq!(faults.receive(3_000), Some(frame(9)));
        assert!(faults.transmit(3_000, &frame(8)));
        assert_eq!(far.receive(0), Some(frame(8)));
        assert_eq!(faults.stats().dropped_partition, 10);
    }

    #[test]
    fn seeded_drops_hit_exactly_the_frames_an_independent_draw_picks() {
        let (near, _far) = Wire::new();
        let mut faults = FaultInjector::new(near);
        faults.set_drop_percent(25, 42).unwrap();
        let mut draw = SeededRandom::new(42);
        let expected: Vec<u8> = (0..200u8).filter(|_| !draw.chance_percent(25)).collect();
        for index in 0..200u8 {
            faults.io().inject(frame(index));
        }
        let mut received = Vec::new();
        while let Some(frame) = faults.receive(0) {
            received.push(frame[0]);
        }
        assert_eq!(received, expected);
        assert_eq!(faults.stats().dropped_random, 200 - expected.len() as u64);
        assert!((30..70).contains(&faults.stats().dropped_random), "about a quarter: {:?}", faults.stats());
    }

    #[test]
    fn corruption_flips_exactly_one_bit_and_the_frame_still_arrives() {
        let (near, mut far) = Wire::new();
        let mut faults = FaultInjector::new(near);
        faults.set_corrupt_percent(100, 7).unwrap();
        for index in 0..50u8 {
            assert!(faults.transmit(0, &frame(index)));
            let sent = far.receive(0).unwrap();
            let flipped: u32 = sent.iter().zip(frame(index)).map(|(a, b)| (a ^ b).count_ones()).sum();
            assert_eq!(flipped, 1, "frame {index}");
        }
        assert_eq!(faults.stats().corrupted, 50);
        assert_eq!(faults.stats().dropped_random, 0);
    }

    #[test]
    fn refused_values_change_nothing_and_clear_ends_faults_but_keeps_counters() {
        let (near, _far) = Wire::new();
        let mut faults = FaultInjector::new(near);
        faults.set_drop_percent(100, 1).unwrap();
        assert_eq!(faults.set_drop_percent(101, 2), Err(101));
        assert_eq!(faults.set_corrupt_percent(500, 2), Err(500));
        let state = faults.state(0);
        assert_eq!((state.drop_percent, state.drop_seed, state.corrupt_percent), (100, 1, 0));
        faults.io().inject(frame(1));
        assert_eq!(faults.receive(0), None);
        faults.partition_for(0, 10);
        faults.clear();
        assert_eq!(faults.state(0), FaultState::default());
        faults.io().inject(frame(2));
        assert_eq!(faults.receive(0), Some(frame(2)));
        assert_eq!(faults.stats().dropped_random, 1);
    }
}
