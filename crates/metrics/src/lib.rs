//! SIS metrics: latency histograms in fixed memory with a stated relative error.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod histogram;

pub use histogram::{LatencyHistogram, LatencySummary, BUCKET_COUNT, MAX_TRACKED_NS, RELATIVE_ERROR_PPM};
