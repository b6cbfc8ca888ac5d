//! Sizes typed as `4x8` or `8,16,4`, shared by `graphctl` (shapes, layers) and `tensorctl` (shapes).

use alloc::vec::Vec;

/// The sizes of `text`, split at every `x` and `,`; `None` if a part is not an unsigned number. Ranges are the
/// caller's to check.
pub fn split(text: &str) -> Option<Vec<usize>> {
    text.split(['x', ',']).map(|part| part.parse::<usize>().ok()).collect()
}
