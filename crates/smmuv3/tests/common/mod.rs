//! A bare-metal harness: programs the model through raw register writes and structures in
//! memory, independent of the arm-smmu-v3 driver (so each checks the other).
#![allow(dead_code)]

use physmem::PhysAddr;
use physmem::{FrameAllocator, PhysMem, Region};
use smmuv3::{Mmio, SmmuV3, SmmuV3Config};
use smmuv3_arch::cmd::{Command, SyncCs};
use smmuv3_arch::regs::*;
use smmuv3_arch::{cd, queue, ste};
use std::sync::Arc;

pub const RAM: u64 = 0x4000_0000;

pub struct Rig {
    pub mem: Arc<PhysMem>,
    pub frames: Arc<FrameAllocator>,
    pub smmu: Arc<SmmuV3>,
    pub strtab: u64,
    pub cmdq: u64,
    pub cmdq_log2: u32,
    pub evtq: u64,
    pub evtq_log2: u32,
    pub prod: u32,
}

impl Rig {
    /// A linear stream table of 2^`sid_bits` STEs, all invalid, queues of the given sizes,
    /// SMMU enabled with both queues.
    pub fn new(cfg: SmmuV3Config, sid_bits: u32, cmdq_log2: u32, evtq_log2: u32) -> Rig {
        let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 64 << 20)]).unwrap());
        let frames =
            Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(RAM), 64 << 20).unwrap());
        let smmu = SmmuV3::new(cfg, mem.clone()).unwrap();
        let alloc = |bytes: u64| {
            frames
                .alloc(bytes.next_power_of_two().max(4096))
                .unwrap()
                .as_u64()
        };
        let strtab = alloc(64 << sid_bits);
        let cmdq = alloc(16 << cmdq_log2);
        let evtq = alloc(32 << evtq_log2);
        smmu.write64(STRTAB_BASE, strtab);
        smmu.write32(STRTAB_BASE_CFG, sid_bits);
        smmu.write64(CMDQ_BASE, cmdq | u64::from(cmdq_log2));
        smmu.write64(EVTQ_BASE, evtq | u64::from(evtq_log2));
        smmu.write32(CR0, cr0::CMDQEN | cr0::EVTQEN);
        smmu.write32(CR0, cr0::CMDQEN | cr0::EVTQEN | cr0::SMMUEN);
        Rig {
            mem,
            frames,
            smmu,
            strtab,
            cmdq,
            cmdq_log2,
            evtq,
            evtq_log2,
            prod: 0,
        }
    }

    pub fn alloc(&self, bytes: u64) -> u64 {
        self.frames
            .alloc(bytes.next_power_of_two().max(4096))
            .unwrap()
            .as_u64()
    }

    pub fn write_ste(&self, sid: u32, words: [u64; 4]) {
        let a = self.strtab + u64::from(sid) * 64;
        for (i, w) in words.iter().enumerate() {
            self.mem
                .write_u64(PhysAddr::new(a + 8 * i as u64), *w)
                .unwrap();
        }
    }

    pub fn ste_bypass(&self, sid: u32) {
        self.write_ste(sid, [ste::V | (ste::CFG_BYPASS << ste::CFG_SHIFT), 0, 0, 0]);
    }

    pub fn ste_abort(&self, sid: u32) {
        self.write_ste(sid, [ste::V, 0, 0, 0]);
    }

    /// A stage-1 STE pointing at a fresh CD with this ASID, TTB and T0SZ (4K granule, R set).
    pub fn ste_s1(&self, sid: u32, asid: u16, ttb: u64, tsz: u64) -> u64 {
        let cdp = self.alloc(64);
        let d0 = tsz
            | (cd::TG0_4K << cd::TG0_SHIFT)
            | cd::EPD1
            | cd::V
            | (5 << cd::IPS_SHIFT)
            | cd::AA64
            | cd::R
            | cd::A
            | cd::ASET
            | (u64::from(asid) << cd::ASID_SHIFT);
        self.mem.write_u64(PhysAddr::new(cdp), d0).unwrap();
        self.mem.write_u64(PhysAddr::new(cdp + 8), ttb).unwrap();
        self.write_ste(
            sid,
            [
                ste::V | (ste::CFG_S1_TRANS << ste::CFG_SHIFT) | cdp,
                0,
                0,
                0,
            ],
        );
        cdp
    }

    /// A stage-2 STE (4K granule) with the given VTCR fields.
    pub fn ste_s2(&self, sid: u32, vmid: u16, ttb: u64, tsz: u64, sl0: u64, ps: u64) {
        let vtcr = tsz | (sl0 << ste::vtcr::SL0_SHIFT) | (ps << ste::vtcr::PS_SHIFT);
        let d2 = u64::from(vmid) | (vtcr << ste::VTCR_SHIFT) | ste::S2AA64 | ste::S2R | ste::S2PTW;
        self.write_ste(
            sid,
            [ste::V | (ste::CFG_S2_TRANS << ste::CFG_SHIFT), 0, d2, ttb],
        );
    }

    /// Put raw dwords into the command queue and publish them.
    pub fn push_raw(&mut self, words: &[[u64; 2]]) {
        for w in words {
            let slot = self.cmdq + u64::from(queue::idx(self.prod, self.cmdq_log2)) * 16;
            self.mem.write_u64(PhysAddr::new(slot), w[0]).unwrap();
            self.mem.write_u64(PhysAddr::new(slot + 8), w[1]).unwrap();
            self.prod = queue::advance(self.prod, 1, self.cmdq_log2);
        }
        self.smmu.write32(CMDQ_PROD, self.prod);
    }

    pub fn issue(&mut self, cmds: &[Command]) {
        let w: Vec<[u64; 2]> = cmds.iter().map(|c| c.encode()).collect();
        self.push_raw(&w);
    }

    pub fn issue_sync(&mut self, cmds: &[Command]) {
        let mut v = cmds.to_vec();
        v.push(Command::Sync {
            cs: SyncCs::Sev,
            msh: 3,
            msiattr: 0xf,
            msidata: 0,
            msiaddr: 0,
        });
        self.issue(&v);
    }

    /// Records between EVTQ_CONS and EVTQ_PROD, consumed.
    pub fn drain_events(&self) -> Vec<smmuv3_arch::event::Event> {
        let mut out = Vec::new();
        let prod = self.smmu.read32(EVTQ_PROD);
        let mut cons = self.smmu.read32(EVTQ_CONS);
        while !queue::is_empty(prod, cons, self.evtq_log2) {
            let slot = self.evtq + u64::from(queue::idx(cons, self.evtq_log2)) * 32;
            let mut d = [0u64; 4];
            for (i, w) in d.iter_mut().enumerate() {
                *w = self
                    .mem
                    .read_u64(PhysAddr::new(slot + 8 * i as u64))
                    .unwrap();
            }
            out.push(smmuv3_arch::event::Event::decode(d));
            cons = queue::advance(cons, 1, self.evtq_log2);
        }
        self.smmu
            .write32(EVTQ_CONS, (cons & !queue_ovf()) | (prod & queue_ovf()));
        out
    }
}

pub fn queue_ovf() -> u32 {
    q_idx::OVF
}
