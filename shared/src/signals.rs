//! Signals as flags: a handler that only sets an atomic, checked by the
//! program at safe points (between blocks). SIGUSR1 asks for a progress
//! line (like dd); SIGTERM and SIGINT ask for a clean stop.
//!
//! This is the one place reel installs a signal handler, and it does so
//! with `sigaction` rather than signal-hook, because signal-hook installs
//! its handlers with `SA_RESTART`: a read or write blocked on a stalled
//! drive or pipe would then carry on after the signal, and neither the
//! progress line nor the stop would come until it returned. Without it the
//! call returns `EINTR`, the program sees the flag, and retries.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static RAISED: [AtomicBool; 65] = [const { AtomicBool::new(false) }; 65];

extern "C" fn on_signal(n: libc::c_int) {
    if let Some(flag) = RAISED.get(n as usize) {
        flag.store(true, Ordering::Relaxed);
    }
}

/// A signal being watched.
#[derive(Debug, Clone, Copy)]
pub struct Watched(Signal);

/// Catch `signal` from now on (without SA_RESTART, so blocking calls return
/// and the flag is seen soon).
pub fn watch(signal: Signal) -> io::Result<Watched> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic.
    unsafe { sigaction(signal, &action) }.map_err(io::Error::from)?;
    Ok(Watched(signal))
}

impl Watched {
    /// True once per arrival since the last call.
    pub fn take(&self) -> bool {
        RAISED[self.0 as usize].swap(false, Ordering::Relaxed)
    }

    /// True if it arrived (and stays true).
    pub fn raised(&self) -> bool {
        RAISED[self.0 as usize].load(Ordering::Relaxed)
    }
}
