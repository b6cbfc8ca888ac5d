//! SIS metrics: latency histograms in fixed memory with a stated relative error, paired statistics and Holm's
//! family-wise correction.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod histogram;
mod holm;
mod paired;

pub use histogram::{LatencyHistogram, LatencySummary, BUCKET_COUNT, MAX_TRACKED_NS, RELATIVE_ERROR_PPM};
pub use holm::holm_adjusted;
pub use paired::{
    compare_paired, normal_upper_tail, paired_t_test, regularized_incomplete_beta, student_t_cdf, student_t_quantile,
    student_t_two_sided_p, wilcoxon_signed_rank, PairedComparison, PairedError, PairedTTest, WilcoxonMethod,
    WilcoxonResult, WILCOXON_EXACT_LIMIT,
};
