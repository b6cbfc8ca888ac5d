//! Locks for state that threads hold across long work (a graph operator's item, the model governor's inference).

use sis_platform::thread;

/// Takes `mutex`, yielding the CPU while another thread holds it: never with IRQs masked, and a waiter lets the
/// holder run instead of spinning through its own time slice.
pub fn lock<T>(mutex: &spin::Mutex<T>) -> spin::MutexGuard<'_, T> {
    loop {
        if let Some(guard) = mutex.try_lock() {
            return guard;
        }
        thread::yield_now();
    }
}
