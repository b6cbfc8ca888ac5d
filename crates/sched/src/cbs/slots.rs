//! The servers' storage and their run queues, sized once for the thread limit.
//!
//! The decision path runs with IRQs masked, so nothing here allocates while
//! the number of servers stays within the capacity given at construction, and
//! nothing is kept after use (the red team's leak check reads the heap before
//! and after). Every operation on the decision path is O(log n).

use alloc::vec::Vec;

use crate::ThreadId;

/// Where a server lives in [`SlotTable`]; stable while the server exists.
pub type Slot = usize;

/// Values by thread ID in stable slots: a slab with a free list, found through an open-addressed index
/// (linear probing, deletion by backward shift, so no tombstones build up). (One slot per thread ID grew with
/// every new ID, and IDs are never reused; a sorted index cost a binary search per lookup, several per
/// decision.)
#[derive(Debug)]
pub struct SlotTable<T> {
    slots: Vec<Option<(ThreadId, T)>>,
    free: Vec<Slot>,
    /// `(thread, slot)`, or `(_, EMPTY)`; its length is a power of two at least twice the entries.
    index: Vec<(ThreadId, Slot)>,
    entries: usize,
}

const EMPTY: Slot = usize::MAX;

impl<T> SlotTable<T> {
    pub fn with_capacity(capacity: usize) -> Self {
        SlotTable {
            slots: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            index: alloc::vec![(0, EMPTY); (capacity * 2).next_power_of_two().max(8)],
            entries: 0,
        }
    }

    fn mask(&self) -> usize {
        self.index.len() - 1
    }

    /// Where `thread`'s probe starts: Fibonacci hashing spreads consecutive IDs.
    fn home(&self, thread: ThreadId) -> usize {
        (thread as usize).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize).rotate_left(20) & self.mask()
    }

    /// The index position holding `thread`, or the empty one where it would go.
    fn find(&self, thread: ThreadId) -> usize {
        let mut at = self.home(thread);
        loop {
            let (id, slot) = self.index[at];
            if slot == EMPTY || id == thread {
                return at;
            }
            at = (at + 1) & self.mask();
        }
    }

    pub fn slot(&self, thread: ThreadId) -> Option<Slot> {
        let (_, slot) = self.index[self.find(thread)];
        (slot != EMPTY).then_some(slot)
    }

    pub fn get(&self, thread: ThreadId) -> Option<&T> {
        self.at(self.slot(thread)?)
    }

    pub fn get_mut(&mut self, thread: ThreadId) -> Option<&mut T> {
        let slot = self.slot(thread)?;
        self.at_mut(slot)
    }

    pub fn at(&self, slot: Slot) -> Option<&T> {
        self.slots.get(slot)?.as_ref().map(|(_, value)| value)
    }

    pub fn at_mut(&mut self, slot: Slot) -> Option<&mut T> {
        self.slots.get_mut(slot)?.as_mut().map(|(_, value)| value)
    }

    /// Stores `value` for `thread` (replacing an earlier one in place); returns its slot.
    pub fn insert(&mut self, thread: ThreadId, value: T) -> Slot {
        if let Some(slot) = self.slot(thread) {
            self.slots[slot] = Some((thread, value));
            return slot;
        }
        if (self.entries + 1) * 2 > self.index.len() {
            self.grow();
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some((thread, value));
                slot
            }
            None => {
                self.slots.push(Some((thread, value)));
                self.slots.len() - 1
            }
        };
        let at = self.find(thread);
        self.index[at] = (thread, slot);
        self.entries += 1;
        slot
    }

    /// More servers than the capacity: a larger index (the only allocation after construction).
    fn grow(&mut self) {
        let larger = alloc::vec![(0, EMPTY); self.index.len() * 2];
        let old = core::mem::replace(&mut self.index, larger);
        for (thread, slot) in old.into_iter().filter(|&(_, slot)| slot != EMPTY) {
            let at = self.find(thread);
            self.index[at] = (thread, slot);
        }
    }

    /// Takes `thread`'s value out; its slot is reused by a later insert.
    pub fn remove(&mut self, thread: ThreadId) -> Option<(Slot, T)> {
        let mut hole = self.find(thread);
        let (_, slot) = self.index[hole];
        if slot == EMPTY {
            return None;
        }
        // Backward shift: pull later entries of the probe run into the hole when their home allows it.
        let mask = self.mask();
        let mut at = hole;
        loop {
            at = (at + 1) & mask;
            let (id, next) = self.index[at];
            if next == EMPTY {
                break;
            }
            if at.wrapping_sub(self.home(id)) & mask >= at.wrapping_sub(hole) & mask {
                self.index[hole] = self.index[at];
                hole = at;
            }
        }
        self.index[hole] = (0, EMPTY);
        self.entries -= 1;
        let (_, value) = self.slots[slot].take()?;
        self.free.push(slot);
        Some((slot, value))
    }
}

const ABSENT: usize = usize::MAX;

/// A binary min-heap of (time, thread) with one entry per slot at most, each slot's position kept so that any
/// entry leaves in O(log n). Ties on time go to the lower thread ID, as EDF's dispatch rule says.
#[derive(Debug)]
pub struct SlotHeap {
    entries: Vec<(u64, ThreadId, Slot)>,
    position: Vec<usize>,
}

impl SlotHeap {
    pub fn with_capacity(capacity: usize) -> Self {
        SlotHeap { entries: Vec::with_capacity(capacity), position: Vec::with_capacity(capacity) }
    }

    /// Queues `slot` at `time` (moving it if it was queued already).
    pub fn insert(&mut self, slot: Slot, time: u64, thread: ThreadId) {
        self.remove(slot);
        if self.position.len() <= slot {
            self.position.resize(slot + 1, ABSENT);
        }
        self.entries.push((time, thread, slot));
        self.position[slot] = self.entries.len() - 1;
        self.sift_up(self.entries.len() - 1);
    }

    /// Takes `slot` out of the heap; false if it was not in it.
    pub fn remove(&mut self, slot: Slot) -> bool {
        let Some(&index) = self.position.get(slot).filter(|&&index| index != ABSENT) else {
            return false;
        };
        self.position[slot] = ABSENT;
        let last = self.entries.len() - 1;
        if index != last {
            self.entries.swap(index, last);
            self.position[self.entries[index].2] = index;
        }
        self.entries.pop();
        if index < self.entries.len() {
            let index = self.sift_down(index);
            self.sift_up(index);
        }
        true
    }

    /// Takes the earliest entry out.
    pub fn pop(&mut self) -> Option<(u64, ThreadId)> {
        let (time, thread, slot) = *self.entries.first()?;
        self.remove(slot);
        Some((time, thread))
    }

    /// The earliest (time, thread).
    pub fn first(&self) -> Option<(u64, ThreadId)> {
        self.entries.first().map(|&(time, thread, _)| (time, thread))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn key(&self, index: usize) -> (u64, ThreadId) {
        let (time, thread, _) = self.entries[index];
        (time, thread)
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.entries.swap(a, b);
        self.position[self.entries[a].2] = a;
        self.position[self.entries[b].2] = b;
    }

    fn sift_up(&mut self, mut index: usize) -> usize {
        while index > 0 {
            let parent = (index - 1) / 2;
            if self.key(parent) <= self.key(index) {
                break;
            }
            self.swap(parent, index);
            index = parent;
        }
        index
    }

    fn sift_down(&mut self, mut index: usize) -> usize {
        loop {
            let left = 2 * index + 1;
            if left >= self.entries.len() {
                return index;
            }
            let right = left + 1;
            let child = if right < self.entries.len() && self.key(right) < self.key(left) { right } else { left };
            if self.key(index) <= self.key(child) {
                return index;
            }
            self.swap(index, child);
            index = child;
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// SplitMix64: enough randomness for a model check, without a dependency.
    struct Mix(u64);

    impl Mix {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % bound
        }
    }

    /// Random inserts, moves and removals agree with an ordered set at every step.
    #[test]
    fn the_heap_agrees_with_an_ordered_set() {
        let mut rng = Mix(3);
        let mut heap = SlotHeap::with_capacity(64);
        let mut model: BTreeSet<(u64, ThreadId)> = BTreeSet::new();
        let mut queued: [Option<(u64, ThreadId)>; 64] = [None; 64];
        for _ in 0..20_000 {
            let slot = rng.below(64) as usize;
            let thread = slot as ThreadId + 100;
            if rng.below(10) < 4 {
                let removed = heap.remove(slot);
                assert_eq!(removed, queued[slot].is_some());
                if let Some(key) = queued[slot].take() {
                    model.remove(&key);
                }
            } else {
                // Few distinct times, so ties are common and the thread ID must break them.
                let time = rng.below(8);
                heap.insert(slot, time, thread);
                if let Some(key) = queued[slot].replace((time, thread)) {
                    model.remove(&key);
                }
                model.insert((time, thread));
            }
            assert_eq!(heap.first(), model.first().copied());
            assert_eq!(heap.len(), model.len());
        }
    }

    /// Random inserts and removals agree with an ordered map, through growth and long probe runs.
    #[test]
    fn the_table_agrees_with_a_map() {
        let mut rng = Mix(5);
        let mut table = SlotTable::with_capacity(4);
        let mut model: BTreeMap<ThreadId, u64> = BTreeMap::new();
        for step in 0..50_000u64 {
            // IDs from a narrow band, as a kernel hands them out, plus a few far away.
            let thread = if rng.below(10) == 0 { rng.below(1 << 31) as ThreadId } else { rng.below(96) as ThreadId };
            if rng.below(2) == 0 {
                assert_eq!(table.remove(thread).map(|(_, value)| value), model.remove(&thread));
            } else {
                table.insert(thread, step);
                model.insert(thread, step);
            }
            assert_eq!(table.get(thread), model.get(&thread));
            if step % 1000 == 0 {
                for (id, value) in &model {
                    assert_eq!(table.get(*id), Some(value));
                }
                assert_eq!(table.entries, model.len());
            }
        }
    }

    #[test]
    fn slots_are_reused_and_lookups_follow_the_thread() {
        let mut table = SlotTable::with_capacity(4);
        assert_eq!(table.insert(7, 'a'), 0);
        assert_eq!(table.insert(3, 'b'), 1);
        assert_eq!(table.insert(7, 'c'), 0, "replaced in place");
        assert_eq!(table.get(7), Some(&'c'));
        assert_eq!(table.remove(7), Some((0, 'c')));
        assert_eq!(table.get(7), None);
        assert_eq!(table.remove(7), None);
        assert_eq!(table.insert(9, 'd'), 0, "the freed slot");
        assert_eq!((table.get(3), table.get(9)), (Some(&'b'), Some(&'d')));
        assert_eq!(table.insert(1, 'e'), 2, "a new slot only when none is free");
    }
}
