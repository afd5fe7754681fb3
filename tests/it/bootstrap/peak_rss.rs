//! The peak RSS of a capi-manage process, read from its own `VmHWM`.
//!
//! `wait4`'s `ru_maxrss` cannot measure a child of this test: at `exec`, Linux records the
//! high-water RSS of the memory the child had until then, which is this test process's (forked
//! or shared by `posix_spawn`), and `ru_maxrss` reports the larger of that and the new
//! program's. A child of this test (about 70 MiB) never reports less. `/proc/<pid>/status`'s
//! `VmHWM` belongs to the program's own memory from its `exec` on, so a thread samples it until
//! the process exits. Its last reading is at most one interval before the end; the peak is
//! monotonic, so only a rise in that last interval could be missed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

const INTERVAL: Duration = Duration::from_millis(20);

/// Samples one process's `VmHWM` until [`PeakRss::stop`] or the process exits.
pub(super) struct PeakRss {
    pid: u32,
    kib: Arc<AtomicI64>,
    stopped: Arc<AtomicBool>,
}

impl PeakRss {
    /// Starts sampling `pid`, which must already run the measured program (std's `spawn`
    /// returns after the `exec`).
    pub(super) fn start(pid: u32) -> Self {
        let (kib, stopped) = (
            Arc::new(AtomicI64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        // A first reading before the thread starts: a run that fails at once still has one.
        sample(pid, &kib);
        let (k, s) = (kib.clone(), stopped.clone());
        std::thread::spawn(move || {
            // Stops at the first reading without VmHWM: the process has exited (a zombie has
            // no memory) or was reaped.
            while !s.load(Ordering::Acquire) && sample(pid, &k) {
                std::thread::sleep(INTERVAL);
            }
        });
        Self { pid, kib, stopped }
    }

    /// Reads once more (the process must still be running, for example before a kill) and
    /// returns the peak so far, in KiB.
    pub(super) fn now(&self) -> i64 {
        sample(self.pid, &self.kib);
        self.kib.load(Ordering::Acquire)
    }

    /// Ends the sampling, before the process is reaped (its pid may then be reused), and
    /// returns the peak in KiB.
    pub(super) fn stop(self) -> i64 {
        self.stopped.store(true, Ordering::Release);
        self.kib.load(Ordering::Acquire)
    }
}

/// Raises `peak` to the process's `VmHWM`; false when there is none to read.
fn sample(pid: u32, peak: &AtomicI64) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    match vm_hwm(&status) {
        Some(kib) => {
            peak.fetch_max(kib, Ordering::AcqRel);
            true
        }
        None => false,
    }
}

/// The `VmHWM:` line's value in KiB.
fn vm_hwm(status: &str) -> Option<i64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[test]
fn reads_this_process_peak_and_not_its_parents() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(vm_hwm(&status).unwrap() > 0);
    assert_eq!(vm_hwm("Name:\tx\nState:\tZ (zombie)\n"), None);
    // A small child of this (larger) test process: VmHWM is the child's own.
    let _ballast = vec![1u8; 64 << 20];
    let mut child = std::process::Command::new("sleep")
        .arg("1")
        .spawn()
        .unwrap();
    let peak = PeakRss::start(child.id());
    std::thread::sleep(Duration::from_millis(100));
    let kib = peak.now();
    let kib_stopped = peak.stop();
    child.wait().unwrap();
    assert!(kib_stopped >= kib);
    assert!(kib < 16 << 10, "sleep's peak RSS read as {kib} KiB");
}
