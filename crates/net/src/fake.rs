//! An in-memory wire between two [`FrameIo`] ends, for host tests (CONVENTIONS S5).

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::FrameIo;

/// One end of a [`Wire`]: what it transmits the other end receives, in order.
#[derive(Debug, Clone)]
pub struct WireEnd {
    inbox: Rc<RefCell<VecDeque<Vec<u8>>>>,
    outbox: Rc<RefCell<VecDeque<Vec<u8>>>>,
}

/// A full-duplex wire with two ends.
#[derive(Debug)]
pub struct Wire;

impl Wire {
    /// A new wire's two ends.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> (WireEnd, WireEnd) {
        let a_to_b = Rc::new(RefCell::new(VecDeque::new()));
        let b_to_a = Rc::new(RefCell::new(VecDeque::new()));
        (WireEnd { inbox: b_to_a.clone(), outbox: a_to_b.clone() }, WireEnd { inbox: a_to_b, outbox: b_to_a })
    }
}

impl WireEnd {
    /// Frames waiting for this end to receive.
    pub fn pending(&self) -> usize {
        self.inbox.borrow().len()
    }

    /// Puts a frame on the wire towards this end, as if the other end had sent it.
    pub fn inject(&self, frame: Vec<u8>) {
        self.inbox.borrow_mut().push_back(frame);
    }
}

impl FrameIo for WireEnd {
    fn receive(&mut self, _now_ns: u64) -> Option<Vec<u8>> {
        self.inbox.borrow_mut().pop_front()
    }

    fn transmit(&mut self, _now_ns: u64, frame: &[u8]) -> bool {
        self.outbox.borrow_mut().push_back(frame.to_vec());
        true
    }
}
