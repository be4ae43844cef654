//! The MMIO and command log of a run (`smmu-lab run --mmio-log FILE`): every register access
//! the drivers make, every SMMUv3 queue command they publish, and phase markers at the
//! scenario's steps, one line each. The format is documented in `docs/mmio-log.md`.
//!
//! Lines are collected in memory in the order the accesses happen under the run's schedule (so
//! the same seed gives the same bytes) and written by the caller once the run is over.

use smmu_arch::names::{register_name, WindowGeometry};
use smmu_arch::Mmio;
use smmu_sync::atomic::{AtomicBool, Ordering};
use smmu_sync::{Arc, Mutex};

/// First line of every log: the format and its version.
pub const HEADER: &str = "# smmu-lab mmio-log v1";

/// The lines of one run's log.
#[derive(Debug, Default)]
pub struct MmioLog {
    lines: Mutex<Vec<String>>,
    first_dma: AtomicBool,
}

impl MmioLog {
    /// An empty log (its header comes with [`MmioLog::text`]).
    pub fn new() -> Self {
        MmioLog::default()
    }

    /// The lines and the first-DMA marker now (for the booted-machine snapshot).
    pub fn snapshot(&self) -> (Vec<String>, bool) {
        (
            self.lines.lock().clone(),
            self.first_dma.load(Ordering::SeqCst),
        )
    }

    /// Put the log of [`MmioLog::snapshot`] back: later lines are forgotten.
    pub fn restore(&self, s: &(Vec<String>, bool)) {
        self.lines.lock().clone_from(&s.0);
        self.first_dma.store(s.1, Ordering::SeqCst);
    }

    /// A phase marker: `== <what>`.
    pub fn phase(&self, what: &str) {
        self.lines.lock().push(format!("== {what}"));
    }

    /// The `first-dma` marker, once per run: `who` has just completed the run's first DMA
    /// transaction.
    pub fn first_dma(&self, who: &str) {
        if !self.first_dma.swap(true, Ordering::SeqCst) {
            self.phase(&format!("first-dma {who}"));
        }
    }

    /// One register access: `<smmu> <R|W><32|64> <offset> <name> <value>`.
    pub fn access(&self, smmu: &str, write: bool, width: u32, offset: u64, name: &str, v: u64) {
        let dir = if write { 'W' } else { 'R' };
        let v = if width == 32 {
            format!("0x{v:08x}")
        } else {
            format!("0x{v:016x}")
        };
        self.lines
            .lock()
            .push(format!("{smmu} {dir}{width} 0x{offset:05x} {name} {v}"));
    }

    /// A line another recorder produced for `smmu` (the SMMUv3 tracer's register and `CMD`
    /// lines), prefixed with the SMMU's name.
    pub fn line(&self, smmu: &str, text: &str) {
        self.lines.lock().push(format!("{smmu} {text}"));
    }

    /// The log so far: the header, then one line per access, command or phase.
    pub fn text(&self) -> String {
        let lines = self.lines.lock();
        let mut s = String::with_capacity(32 * (lines.len() + 1));
        s.push_str(HEADER);
        s.push('\n');
        for l in lines.iter() {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

/// An SMMUv2 register window whose accesses go to a [`MmioLog`] by name.
pub struct LoggedMmio<M> {
    inner: M,
    log: Arc<MmioLog>,
    smmu: String,
    geometry: WindowGeometry,
}

impl<M: Mmio> LoggedMmio<M> {
    /// Log `inner`'s accesses as `smmu`'s; the page geometry is read from its ID1 now (an ID
    /// register read has no side effect; it is not logged).
    pub fn new(inner: M, log: Arc<MmioLog>, smmu: &str) -> Self {
        // Not a scheduling point either: logging must not change the run's schedule.
        let id1 = smmu_sync::without_sched_points(|| inner.read32(smmu_arch::regs::gr0::ID1));
        let geometry = WindowGeometry::from_id1(id1);
        LoggedMmio {
            inner,
            log,
            smmu: smmu.to_string(),
            geometry,
        }
    }

    fn note(&self, write: bool, width: u32, off: u64, v: u64) {
        let name = register_name(off, self.geometry);
        self.log.access(&self.smmu, write, width, off, &name, v);
    }
}

impl<M: Mmio> Mmio for LoggedMmio<M> {
    fn read32(&self, off: u64) -> u32 {
        let v = self.inner.read32(off);
        self.note(false, 32, off, u64::from(v));
        v
    }
    fn write32(&self, off: u64, v: u32) {
        self.note(true, 32, off, u64::from(v));
        self.inner.write32(off, v)
    }
    fn read64(&self, off: u64) -> u64 {
        let v = self.inner.read64(off);
        self.note(false, 64, off, v);
        v
    }
    fn write64(&self, off: u64, v: u64) {
        self.note(true, 64, off, v);
        self.inner.write64(off, v)
    }
}
