//! `memcpy` and `memmove` for the kernel, 16 bytes at a time whatever the pointers' alignment.
//!
//! The routines the toolchain links for `aarch64-unknown-none-softfloat` (compiler_builtins, built for targets
//! that may not allow unaligned access) copy eight bytes at a time only when source and destination share their
//! alignment; otherwise they assemble every word from single bytes: about three instructions per byte. Network
//! payload rarely shares alignment (an Ethernet frame's payload starts 54 bytes in, a socket buffer's at any
//! offset), so the network path's copies ran at that rate (issue 27's profile: 4,433 instructions to copy one
//! 1,514-byte frame). With the MMU on, RAM is normal memory and the CPU handles unaligned loads and stores itself
//! (`mmu::enable` clears SCTLR.A), so the kernel's own `memcpy`/`memmove` (strong symbols, which win over
//! compiler_builtins' weak ones) move 16 bytes per load-pair/store-pair.
//!
//! The control logic (chunking, tails, the direction of an overlapping move) is portable Rust over three
//! primitives, a 16-, an 8- and a 1-byte copy. On the kernel target they are `ldp`/`stp`, `ldr`/`str` and `ldrb`/`strb` in
//! inline assembly: opaque to the compiler, so it cannot turn these loops back into calls to `memcpy` (which would
//! recurse). On the host they are `core::ptr` copies, and the host tests check the logic against a reference for
//! every length up to 160 at every pair of alignments, and every overlap of a move.
//!
//! Before the MMU is on, every access is to device memory, where an unaligned access faults: until
//! [`allow_unaligned`] is called the routines copy byte by byte.

use core::sync::atomic::{AtomicBool, Ordering};

/// Set once the MMU maps RAM as normal memory (unaligned accesses allowed).
static UNALIGNED_OK: AtomicBool = AtomicBool::new(false);

/// Lets the copies use unaligned 16-byte accesses from now on.
///
/// Call only once RAM is mapped as normal memory with alignment checking off (on the kernel target: after
/// `mmu::enable`). The host's tests call it to test the wide path.
pub fn allow_unaligned() {
    UNALIGNED_OK.store(true, Ordering::Relaxed);
}

/// Copies 16 bytes from `src` to `dst`, loading all of them before storing any.
///
/// # Safety
/// `src` is valid for reading and `dst` for writing 16 bytes; no alignment is needed (normal memory).
#[inline(always)]
unsafe fn copy16(dst: *mut u8, src: *const u8) {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: the caller's contract; ldp/stp of two general registers touch exactly [src, src + 16) and
    // [dst, dst + 16), and the registers are declared clobbered.
    unsafe {
        core::arch::asm!(
            "ldp {a}, {b}, [{src}]",
            "stp {a}, {b}, [{dst}]",
            src = in(reg) src,
            dst = in(reg) dst,
            a = out(reg) _,
            b = out(reg) _,
            options(nostack, preserves_flags)
        );
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    // SAFETY: the caller's contract; read then write, so an overlap is copied as the load saw it.
    unsafe {
        let chunk = src.cast::<[u8; 16]>().read_unaligned();
        dst.cast::<[u8; 16]>().write_unaligned(chunk);
    }
}

/// Copies 8 bytes (the tail of a copy).
///
/// # Safety
/// `src` is valid for reading and `dst` for writing 8 bytes; no alignment is needed (normal memory).
#[inline(always)]
unsafe fn copy8(dst: *mut u8, src: *const u8) {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: the caller's contract; ldr/str of one general register touch exactly 8 bytes each.
    unsafe {
        core::arch::asm!(
            "ldr {a}, [{src}]",
            "str {a}, [{dst}]",
            src = in(reg) src,
            dst = in(reg) dst,
            a = out(reg) _,
            options(nostack, preserves_flags)
        );
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    // SAFETY: the caller's contract.
    unsafe {
        let chunk = src.cast::<[u8; 8]>().read_unaligned();
        dst.cast::<[u8; 8]>().write_unaligned(chunk);
    }
}

/// Copies one byte.
///
/// # Safety
/// `src` is valid for reading and `dst` for writing one byte.
#[inline(always)]
unsafe fn copy1(dst: *mut u8, src: *const u8) {
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    // SAFETY: the caller's contract; ldrb/strb touch exactly one byte each.
    unsafe {
        core::arch::asm!(
            "ldrb {a:w}, [{src}]",
            "strb {a:w}, [{dst}]",
            src = in(reg) src,
            dst = in(reg) dst,
            a = out(reg) _,
            options(nostack, preserves_flags)
        );
    }
    #[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
    // SAFETY: the caller's contract.
    unsafe {
        dst.write(src.read());
    }
}

/// Copies `n` bytes from `src` to `dst`, lowest address first: right for disjoint ranges and for a `dst` below
/// `src` (each 16-byte chunk is loaded before it is stored, and no store reaches a byte not yet loaded).
///
/// # Safety
/// `src` is valid for reading and `dst` for writing `n` bytes; if they overlap, `dst <= src`.
pub unsafe fn copy_forward(dst: *mut u8, src: *const u8, n: usize) {
    let mut done = 0;
    if UNALIGNED_OK.load(Ordering::Relaxed) {
        while n - done >= 64 {
            // SAFETY: [done, done + 64) lies within the n bytes of both ranges; chunks go lowest first.
            unsafe {
                copy16(dst.add(done), src.add(done));
                copy16(dst.add(done + 16), src.add(done + 16));
                copy16(dst.add(done + 32), src.add(done + 32));
                copy16(dst.add(done + 48), src.add(done + 48));
            }
            done += 64;
        }
        while n - done >= 16 {
            // SAFETY: [done, done + 16) lies within the n bytes of both ranges.
            unsafe { copy16(dst.add(done), src.add(done)) };
            done += 16;
        }
        if n - done >= 8 {
            // SAFETY: as above, for 8 bytes.
            unsafe { copy8(dst.add(done), src.add(done)) };
            done += 8;
        }
    }
    while done < n {
        // SAFETY: done < n.
        unsafe { copy1(dst.add(done), src.add(done)) };
        done += 1;
    }
}

/// Copies `n` bytes from `src` to `dst`, highest address first: right for a `dst` above an overlapping `src`.
///
/// # Safety
/// `src` is valid for reading and `dst` for writing `n` bytes.
pub unsafe fn copy_backward(dst: *mut u8, src: *const u8, n: usize) {
    let mut left = n;
    if UNALIGNED_OK.load(Ordering::Relaxed) {
        while left >= 64 {
            left -= 64;
            // SAFETY: [left, left + 64) lies within the n bytes of both ranges; chunks go highest first.
            unsafe {
                copy16(dst.add(left + 48), src.add(left + 48));
                copy16(dst.add(left + 32), src.add(left + 32));
                copy16(dst.add(left + 16), src.add(left + 16));
                copy16(dst.add(left), src.add(left));
            }
        }
        while left >= 16 {
            left -= 16;
            // SAFETY: [left, left + 16) lies within the n bytes of both ranges.
            unsafe { copy16(dst.add(left), src.add(left)) };
        }
        if left >= 8 {
            left -= 8;
            // SAFETY: as above, for 8 bytes.
            unsafe { copy8(dst.add(left), src.add(left)) };
        }
    }
    while left > 0 {
        left -= 1;
        // SAFETY: left < n.
        unsafe { copy1(dst.add(left), src.add(left)) };
    }
}

/// `memmove`'s choice: forward unless `dst` lies inside `[src, src + n)`.
///
/// # Safety
/// `src` is valid for reading and `dst` for writing `n` bytes.
pub unsafe fn move_bytes(dst: *mut u8, src: *const u8, n: usize) {
    let (dst_address, src_address) = (dst as usize, src as usize);
    if dst_address <= src_address || dst_address - src_address >= n {
        // SAFETY: the caller's contract; disjoint, or dst below src.
        unsafe { copy_forward(dst, src, n) }
    } else {
        // SAFETY: the caller's contract; dst above an overlapping src.
        unsafe { copy_backward(dst, src, n) }
    }
}

/// The C `memcpy` every copy in the kernel calls.
///
/// # Safety
/// C's contract: `src` readable and `dst` writable for `n` bytes, the ranges disjoint.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: C's contract, which copy_forward's includes.
    unsafe { copy_forward(dst, src, n) };
    dst
}

/// The C `memmove`.
///
/// # Safety
/// C's contract: `src` readable and `dst` writable for `n` bytes; they may overlap.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: C's contract, which move_bytes's is.
    unsafe { move_bytes(dst, src, n) };
    dst
}

#[cfg(test)]
mod tests;
