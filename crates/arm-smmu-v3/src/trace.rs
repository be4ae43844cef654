//! A bus recorder for SMMUv3: wraps any [`Mmio`] and logs every register access and every
//! command the driver publishes, one line each, so a run can be compared with the write
//! sequences pinned in the tests (or with a QEMU `-trace 'smmuv3_*'` log, by register name).
//!
//! Line format (fields separated by one space):
//!
//! * `R32 <offset> <NAME> <value>` / `W32 ...` / `R64 ...` / `W64 ...`: a register access;
//!   offset and value in hex (`0x%05x`, `0x%08x` or `0x%016x`), NAME the architecture's name or
//!   `?` for an unimplemented offset;
//! * `CMD <decoded command>`: each command between the old and new CMDQ_PROD, read from queue
//!   memory when PROD is written (`CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0`, …), or
//!   `CMD illegal <dword0> <dword1>`.

use crate::hw::{at, queue_slot};
use physmem::{PhysAddr, PhysMem};
use smmu_sync::{Arc, Mutex};
use smmuv3_arch::cmd::{Command, ENTRY_BYTES};
use smmuv3_arch::regs::{self, q_base};
use smmuv3_arch::{queue, Mmio};

/// Where a [`TracingMmio`] sends each line, when not to its own list.
pub type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// A [`TracingMmio`]'s command-queue copy at one moment ([`TracingMmio::snapshot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TracingSnapshot {
    base: PhysAddr,
    shift: u32,
    prod: u32,
}

pub struct TracingMmio<M> {
    inner: M,
    mem: Arc<PhysMem>,
    lines: Mutex<Vec<String>>,
    cmdq: Mutex<(PhysAddr, u32, u32)>,
    sink: Option<LineSink>,
}

impl<M: Mmio> TracingMmio<M> {
    pub fn new(inner: M, mem: Arc<PhysMem>) -> Self {
        TracingMmio {
            inner,
            mem,
            lines: Mutex::new(Vec::new()),
            cmdq: Mutex::new((PhysAddr::ZERO, 0, 0)),
            sink: None,
        }
    }

    /// A tracer that hands each line to `sink` as it happens (a simulator's run-wide log)
    /// instead of keeping it: [`Self::lines`] stays empty.
    pub fn with_sink(inner: M, mem: Arc<PhysMem>, sink: LineSink) -> Self {
        TracingMmio {
            sink: Some(sink),
            ..TracingMmio::new(inner, mem)
        }
    }

    fn emit(&self, line: String) {
        match &self.sink {
            Some(s) => s(&line),
            None => self.lines.lock().push(line),
        }
    }

    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().clone()
    }

    /// Only the commands, without the `CMD ` prefix.
    pub fn commands(&self) -> Vec<String> {
        self.lines
            .lock()
            .iter()
            .filter_map(|l| l.strip_prefix("CMD ").map(String::from))
            .collect()
    }

    /// Only the register writes.
    pub fn writes(&self) -> Vec<String> {
        self.lines
            .lock()
            .iter()
            .filter(|l| l.starts_with('W'))
            .cloned()
            .collect()
    }

    pub fn clear(&self) {
        self.lines.lock().clear();
    }

    /// The recorder's copy of the command queue (base, size, last PROD), for a machine
    /// restored in place: the recorded lines are output, like the kernel log, and stay.
    pub fn snapshot(&self) -> TracingSnapshot {
        let (base, shift, prod) = *self.cmdq.lock();
        TracingSnapshot { base, shift, prod }
    }

    /// Put the command-queue copy of `s` back, with the driver and model it was taken with:
    /// otherwise the next PROD the restored driver writes is compared with one from the
    /// abandoned run.
    pub fn restore(&self, s: &TracingSnapshot) {
        *self.cmdq.lock() = (s.base, s.shift, s.prod);
    }

    fn reg(&self, dir: &str, width: u32, off: u64, v: u64) {
        let name = regs::name(off).unwrap_or("?");
        let v = if width == 32 {
            format!("0x{v:08x}")
        } else {
            format!("0x{v:016x}")
        };
        self.emit(format!("{dir}{width} 0x{off:05x} {name} {v}"));
    }

    fn note_write(&self, off: u64, v: u64) {
        let mut q = self.cmdq.lock();
        match off {
            regs::CMDQ_BASE => {
                q.0 = PhysAddr::new(v & q_base::ADDR_MASK);
                q.1 = (v & q_base::LOG2SIZE_MASK) as u32;
            }
            regs::CMDQ_PROD => {
                let (base, shift, old) = *q;
                let new = v as u32;
                // A PROD more than a queue ahead of the last (behind it, or a bad value)
                // published nothing that can be read back: only its register line shows.
                let n = queue::used(new, old, shift);
                let n = if n > 1 << shift { 0 } else { n };
                let mut ptr = old;
                let mut out = Vec::new();
                for _ in 0..n {
                    let slot = queue_slot(base, ptr, shift, ENTRY_BYTES);
                    let d = [
                        self.mem.read_u64(slot).unwrap_or(0),
                        self.mem.read_u64(at(slot, 8)).unwrap_or(0),
                    ];
                    out.push(match Command::decode(d, true) {
                        Ok(c) => format!("CMD {c}"),
                        Err(_) => format!("CMD illegal 0x{:016x} 0x{:016x}", d[0], d[1]),
                    });
                    ptr = queue::advance(ptr, 1, shift);
                }
                q.2 = new;
                drop(q);
                for l in out {
                    self.emit(l);
                }
            }
            _ => {}
        }
    }
}

impl<M: Mmio> Mmio for TracingMmio<M> {
    fn read32(&self, off: u64) -> u32 {
        let v = self.inner.read32(off);
        self.reg("R", 32, off, u64::from(v));
        v
    }
    fn write32(&self, off: u64, v: u32) {
        self.reg("W", 32, off, u64::from(v));
        self.note_write(off, u64::from(v));
        self.inner.write32(off, v)
    }
    fn read64(&self, off: u64) -> u64 {
        let v = self.inner.read64(off);
        self.reg("R", 64, off, v);
        v
    }
    fn write64(&self, off: u64, v: u64) {
        self.reg("W", 64, off, v);
        self.note_write(off, v);
        self.inner.write64(off, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use physmem::Region;

    struct Sink;

    impl Mmio for Sink {
        fn read32(&self, _: u64) -> u32 {
            0
        }
        fn write32(&self, _: u64, _: u32) {}
        fn read64(&self, _: u64) -> u64 {
            0
        }
        fn write64(&self, _: u64, _: u64) {}
    }

    fn tracer() -> TracingMmio<Sink> {
        let mem =
            Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(0x4000_0000), 1 << 20)]).unwrap());
        let t = TracingMmio::new(Sink, mem);
        // An 8-entry queue of zeroed slots (each decodes as the same illegal command).
        t.write64(regs::CMDQ_BASE, 0x4000_0000 | 3);
        t
    }

    fn cmds(t: &TracingMmio<Sink>) -> usize {
        let n = t.commands().len();
        t.clear();
        n
    }

    #[test]
    fn a_prod_behind_the_last_one_decodes_nothing() {
        let t = tracer();
        t.write32(regs::CMDQ_PROD, 5);
        assert_eq!(cmds(&t), 5);
        // Same wrap, one behind: once a wrapped subtraction (2^32 - 1 commands).
        t.write32(regs::CMDQ_PROD, 4);
        assert_eq!(cmds(&t), 0);
        t.write32(regs::CMDQ_PROD, 6);
        assert_eq!(cmds(&t), 2, "counted from the PROD written last");
    }

    #[test]
    fn a_restored_tracer_counts_from_the_restored_prod() {
        let t = tracer();
        t.write32(regs::CMDQ_PROD, 2);
        let snap = t.snapshot();
        t.write32(regs::CMDQ_PROD, 7);
        t.clear();
        t.restore(&snap);
        t.write32(regs::CMDQ_PROD, 3);
        assert_eq!(cmds(&t), 1);
        let want = TracingSnapshot {
            base: PhysAddr::new(0x4000_0000),
            shift: 3,
            prod: 3,
        };
        assert_eq!(t.snapshot(), want);
    }
}
