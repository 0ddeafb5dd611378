//! Training yields the CPU to the dashboard.
//!
//! On a 2-core machine the UI thread competes with the trainer thread and the matmul
//! workers; at equal priority a key press could wait ~300 ms for a time slice. Running the
//! compute threads at a lower priority (nice +10) keeps redraws prompt while training still
//! gets every cycle the UI does not use.

/// Lowers the calling thread's scheduling priority by 10 (Linux: per-thread nice value,
/// at most 19), relative to where it is: a user who started memescope under `nice` keeps
/// that. Best effort: where it is not supported or not permitted, nothing changes.
pub fn yield_to_interactive_threads() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid, getpriority and setpriority only read their arguments and read or
    // change this thread's nice value; failure is reported through the return value, which
    // we may ignore (a failed getpriority reads as -1: the thread then goes to nice 9).
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (current + 10).min(19));
    }
}

/// Makes rayon's global pool (matmul and encoder workers) run at the lower priority too.
/// Must be called before anything uses rayon; later calls change nothing.
pub fn lower_compute_pool_priority() {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(candle_core::utils::get_num_threads())
        .start_handler(|_| yield_to_interactive_threads())
        .build_global();
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn lowers_only_the_calling_thread() {
        let nice = || unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        };
        let before = nice();
        let lowered = std::thread::spawn(move || {
            super::yield_to_interactive_threads();
            nice()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, (before + 10).min(19), "nice {before} → {lowered}");
        assert_eq!(nice(), before, "other threads keep their priority");
    }
}
