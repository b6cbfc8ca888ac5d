//! The copies against a reference (a byte loop over a snapshot), at every length up to 160 and every pair of
//! alignments, and every overlap of a move; byte-wise before [`allow_unaligned`] and 16 bytes at a time after.

use super::*;

const LENGTHS: usize = 160;
const SLACK: usize = 16;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(7)).collect()
}

fn check_disjoint_copies() {
    let source = pattern(LENGTHS + 2 * SLACK);
    for n in 0..=LENGTHS {
        for src_offset in 0..SLACK {
            for dst_offset in 0..SLACK {
                let mut destination = vec![0xeeu8; LENGTHS + 2 * SLACK];
                // SAFETY: both ranges lie inside their vectors (offset < SLACK, n <= LENGTHS) and are disjoint.
                unsafe { copy_forward(destination.as_mut_ptr().add(dst_offset), source.as_ptr().add(src_offset), n) };
                let mut expected = vec![0xeeu8; LENGTHS + 2 * SLACK];
                expected[dst_offset..dst_offset + n].copy_from_slice(&source[src_offset..src_offset + n]);
                assert_eq!(destination, expected, "n {n}, src +{src_offset}, dst +{dst_offset}");
            }
        }
    }
}

fn check_overlapping_moves() {
    let total = LENGTHS + 2 * 40;
    for n in 0..=LENGTHS {
        for src in [0usize, 3, 17, 40] {
            for dst in src.saturating_sub(40)..=src + 40 {
                let mut buffer = pattern(total);
                let mut expected = buffer.clone();
                expected.copy_within(src..src + n, dst);
                // SAFETY: src + n and dst + n lie inside the buffer (src, dst <= 80, n <= LENGTHS).
                unsafe { move_bytes(buffer.as_mut_ptr().add(dst), buffer.as_ptr().add(src), n) };
                assert_eq!(buffer, expected, "n {n}, src {src}, dst {dst}");
            }
        }
    }
}

// One test, because allow_unaligned is process-wide: first the byte path, then the wide path.
#[test]
fn copies_and_moves_equal_the_reference_before_and_after_unaligned_access_is_allowed() {
    check_disjoint_copies();
    check_overlapping_moves();
    allow_unaligned();
    check_disjoint_copies();
    check_overlapping_moves();
}

#[test]
fn a_move_in_each_direction_takes_the_side_that_keeps_the_source() {
    allow_unaligned();
    // Up by 1 over 64 bytes: a forward copy would smear the first byte; a move must not.
    let mut buffer = pattern(80);
    let expected: Vec<u8> = [&buffer[..1], &buffer[..64], &buffer[65..]].concat();
    // SAFETY: [0, 64) and [1, 65) lie inside the 80 bytes.
    unsafe { move_bytes(buffer.as_mut_ptr().add(1), buffer.as_ptr(), 64) };
    assert_eq!(buffer, expected);
}
