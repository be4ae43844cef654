//! Test instruments for anyone checking what the driver does on the bus: a recorder that wraps
//! any [`Mmio`] and logs every access, and a tiny register file that answers ID reads so the
//! driver can probe without a hardware model.

use smmu_arch::regs::{self, cb, gr0, id1};
use smmu_arch::Mmio;
use smmu_sync::Mutex;
use std::collections::BTreeMap;

/// One bus access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusOp {
    /// Write (else read).
    pub write: bool,
    /// 32 or 64.
    pub width: u8,
    /// Byte offset from the SMMU base.
    pub offset: u64,
    /// Value read or written.
    pub value: u64,
}

/// Wraps a bus and records every access in order.
pub struct RecordingMmio<M> {
    inner: M,
    ops: Mutex<Vec<BusOp>>,
}

impl<M: Mmio> RecordingMmio<M> {
    /// Record accesses to `inner`.
    pub fn new(inner: M) -> Self {
        RecordingMmio {
            inner,
            ops: Mutex::new(Vec::new()),
        }
    }

    /// The wrapped bus.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// Every access so far.
    pub fn ops(&self) -> Vec<BusOp> {
        self.ops.lock().clone()
    }

    /// Just the writes, as (offset, value, width).
    pub fn writes(&self) -> Vec<(u64, u64, u8)> {
        self.ops
            .lock()
            .iter()
            .filter(|o| o.write)
            .map(|o| (o.offset, o.value, o.width))
            .collect()
    }

    /// Forget what was recorded.
    pub fn clear(&self) {
        self.ops.lock().clear()
    }

    fn push(&self, write: bool, width: u8, offset: u64, value: u64) {
        self.ops.lock().push(BusOp {
            write,
            width,
            offset,
            value,
        });
    }
}

impl<M: Mmio> Mmio for RecordingMmio<M> {
    fn read32(&self, offset: u64) -> u32 {
        let v = self.inner.read32(offset);
        self.push(false, 32, offset, u64::from(v));
        v
    }
    fn write32(&self, offset: u64, value: u32) {
        self.push(true, 32, offset, u64::from(value));
        self.inner.write32(offset, value)
    }
    fn read64(&self, offset: u64) -> u64 {
        let v = self.inner.read64(offset);
        self.push(false, 64, offset, v);
        v
    }
    fn write64(&self, offset: u64, value: u64) {
        self.push(true, 64, offset, value);
        self.inner.write64(offset, value)
    }
}

/// ID register values of an SMMU personality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRegs {
    /// ID0.
    pub id0: u32,
    /// ID1.
    pub id1: u32,
    /// ID2.
    pub id2: u32,
    /// ID7.
    pub id7: u32,
    /// sCR0 after reset.
    pub scr0: u32,
}

impl IdRegs {
    /// MMU-500 as on LS1028A: ID0 as read on LS1028A silicon (0x7c013e80, LKML 8 Dec 2022:
    /// 128 SMRs, ATOSNS, CTTW clear), the reference's MMU-500 ID2/ID7 (§2.5: 4K and 64K
    /// granules, r2p1, matching LS1028A boot logs), the page layout of the 8 MiB window (§1)
    /// and 64 context banks. `mmu500::Mmu500Config::mmu500_ls1028a` cites each field.
    pub const LS1028A: IdRegs = IdRegs {
        id0: 0x7c01_3e80,
        id1: id1::PAGESIZE | (5 << id1::NUMPAGENDXB_SHIFT) | 64,
        id2: 0x0000_5555,
        id7: 0x21,
        scr0: 0x0020_0001,
    };
    /// MMU-401 (SMMUv1 + AArch64 64K): S1+S2, 4 SMRs... here 8 SMRs, 15-bit SIDs, 8 banks of which
    /// 2 are stage-2 only, 4 KiB pages, NUMPAGENDXB 3, IAS 40 / OAS 40.
    pub const MMU401: IdRegs = IdRegs {
        id0: regs::id0::S1TS
            | regs::id0::S2TS
            | regs::id0::SMS
            | regs::id0::CTTW
            | (15 << regs::id0::NUMSIDB_SHIFT)
            | 8,
        id1: (3 << id1::NUMPAGENDXB_SHIFT) | (2 << id1::NUMS2CB_SHIFT) | 8,
        id2: 0x0000_0022,
        id7: 0,
        scr0: 0x0000_0001,
    };
    /// A stream-indexing SMMUv2 (no SMS): 6-bit stream IDs → 64 S2CRs, stage 2 only, 4 banks.
    pub const INDEXED: IdRegs = IdRegs {
        id0: regs::id0::S2TS | regs::id0::CTTW | (6 << regs::id0::NUMSIDB_SHIFT),
        id1: (1 << id1::NUMPAGENDXB_SHIFT) | 4,
        id2: 0x0000_1444,
        id7: 0,
        scr0: 0x0000_0001,
    };
}

/// A register file behaving enough like an SMMU for probe/reset/programming tests: ID registers
/// read their configured values, SMR ID/MASK hold only the implemented bits, sGFSR and FSR are
/// write-1-to-clear, sync/ATS status reads idle (unless `stuck_sync`), everything else stores.
pub struct FakeSmmu {
    ids: IdRegs,
    /// Implemented SMR ID (and MASK) bits.
    pub smr_bits: u32,
    regs: Mutex<BTreeMap<u64, u64>>,
    stuck_sync: bool,
}

impl FakeSmmu {
    /// A register file with these ID values, at reset.
    pub fn new(ids: IdRegs) -> Self {
        let sidb = regs::field(ids.id0, regs::id0::NUMSIDB_SHIFT, regs::id0::NUMSIDB_WIDTH);
        let mut m = BTreeMap::new();
        m.insert(gr0::SCR0, u64::from(ids.scr0));
        FakeSmmu {
            ids,
            smr_bits: (1u32 << sidb) - 1,
            regs: Mutex::new(m),
            stuck_sync: false,
        }
    }

    /// A device whose TLB sync never completes.
    pub fn with_stuck_sync(mut self) -> Self {
        self.stuck_sync = true;
        self
    }

    fn cb_base(&self) -> u64 {
        let pagesize = regs::page_size(self.ids.id1 & id1::PAGESIZE != 0);
        let n = regs::field(self.ids.id1, id1::NUMPAGENDXB_SHIFT, id1::NUMPAGENDXB_WIDTH);
        regs::num_pages(n) * pagesize
    }

    fn cb_off(&self, offset: u64) -> Option<u64> {
        let pagesize = regs::page_size(self.ids.id1 & id1::PAGESIZE != 0);
        offset.checked_sub(self.cb_base()).map(|o| o % pagesize)
    }

    /// Set a register directly (e.g. a fault syndrome).
    pub fn poke(&self, offset: u64, value: u64) {
        self.regs.lock().insert(offset, value);
    }

    /// Current content of a register.
    pub fn peek(&self, offset: u64) -> u64 {
        self.regs.lock().get(&offset).copied().unwrap_or(0)
    }
}

impl Mmio for FakeSmmu {
    fn read32(&self, offset: u64) -> u32 {
        match offset {
            gr0::ID0 => return self.ids.id0,
            gr0::ID1 => return self.ids.id1,
            gr0::ID2 => return self.ids.id2,
            gr0::ID7 => return self.ids.id7,
            gr0::STLBGSTATUS => return u32::from(self.stuck_sync),
            _ => {}
        }
        if let Some(o) = self.cb_off(offset) {
            if o == cb::TLBSTATUS {
                return u32::from(self.stuck_sync);
            }
            if o == cb::ATSR {
                return 0;
            }
        }
        self.peek(offset) as u32
    }

    fn write32(&self, offset: u64, value: u32) {
        let mut r = self.regs.lock();
        if offset == gr0::SGFSR || self.cb_off(offset) == Some(cb::FSR) {
            let old = r.get(&offset).copied().unwrap_or(0);
            r.insert(offset, old & !u64::from(value));
            return;
        }
        if (gr0::SMR..gr0::S2CR).contains(&offset) {
            let keep = self.smr_bits | (self.smr_bits << 16) | regs::smr::VALID;
            r.insert(offset, u64::from(value & keep));
            return;
        }
        r.insert(offset, u64::from(value));
    }

    fn read64(&self, offset: u64) -> u64 {
        self.peek(offset)
    }

    fn write64(&self, offset: u64, value: u64) {
        self.regs.lock().insert(offset, value);
    }
}
