//! SIS dataflow: tensors, bounded channels and operator graphs, portable and tested on the host.
//!
//! - [`tensor`]: f32 tensors with shape and strides whose bytes are charged to
//!   a [`tensor::Budget`], so a graph's memory is accounted and limited; the
//!   operations equal a plain reference loop bit for bit.
//! - [`channel`]: bounded single-producer single-consumer queues with a declared
//!   overflow policy (block, drop newest, drop oldest) and exact counters.
//! - [`graph`]: operators connected into a directed acyclic graph, validated
//!   (cycles, dangling ports, type and shape mismatches) before anything runs,
//!   and the pure per-item work of each operator.
//!
//! The kernel runs each operator on its own thread and moves messages between
//! channels; this crate holds everything that can be decided without a thread.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod channel;
pub mod graph;
pub mod tensor;
