//! One transaction through the SMMU: global bypass/abort, configuration lookup (cache, then
//! stream table), TLB lookup, table walk on a miss, permission check, events.

use crate::config::SmmuV3Config;
use crate::state::State;
use crate::strtab::{self, StageCfg, StreamCfg, TransCfg};
use crate::tlb::TlbEntry;
use crate::walk::{Stage2Fault, WalkFault};
use crate::{AbortReason, BypassReason, Outcome};
use physmem::PhysMem;
use smmu_addr::PhysAddr;
use smmuv3_arch::event::{self, id, Event};
use smmuv3_arch::Access;
use std::sync::Arc;

/// A translation-class fault, before it becomes an event.
struct Fault {
    id: u8,
    stage2: bool,
    class: u64,
    ipa: u64,
}

fn fault_of(f: WalkFault, stage2: bool) -> Fault {
    let (fid, class, ipa, s2) = match f {
        WalkFault::Translation { .. } => (id::F_TRANSLATION, event::CLASS_IN, 0, stage2),
        WalkFault::AccessFlag { .. } => (id::F_ACCESS, event::CLASS_IN, 0, stage2),
        WalkFault::AddrSize { .. } => (id::F_ADDR_SIZE, event::CLASS_IN, 0, stage2),
        WalkFault::External { .. } => (id::F_WALK_EABT, event::CLASS_TT, 0, stage2),
        WalkFault::Stage2 { ipa, fault } => {
            let fid = match fault {
                Stage2Fault::Translation => id::F_TRANSLATION,
                Stage2Fault::AccessFlag => id::F_ACCESS,
                Stage2Fault::AddrSize => id::F_ADDR_SIZE,
                Stage2Fault::Permission => id::F_PERMISSION,
                Stage2Fault::External => id::F_WALK_EABT,
            };
            (fid, event::CLASS_TT, ipa, true)
        }
    };
    Fault {
        id: fid,
        stage2: s2,
        class,
        ipa,
    }
}

fn s2_fault(f: WalkFault) -> Stage2Fault {
    match f {
        WalkFault::Translation { .. } | WalkFault::Stage2 { .. } => Stage2Fault::Translation,
        WalkFault::AccessFlag { .. } => Stage2Fault::AccessFlag,
        WalkFault::AddrSize { .. } => Stage2Fault::AddrSize,
        WalkFault::External { .. } => Stage2Fault::External,
    }
}

impl State {
    pub(crate) fn strtab_regs(&self) -> strtab::StrtabRegs {
        strtab::StrtabRegs {
            base: self.regs.strtab_base,
            cfg: self.regs.strtab_base_cfg,
        }
    }

    pub(crate) fn translate(
        &mut self,
        c: &SmmuV3Config,
        mem: &PhysMem,
        sid: u32,
        ia: u64,
        access: Access,
    ) -> Outcome {
        self.counters.transactions += 1;
        self.age_invalidations();
        if !self.smmuen() {
            return if self.gbpa_abort() {
                Outcome::Aborted(AbortReason::GlobalAbort)
            } else {
                Outcome::Bypassed {
                    pa: PhysAddr::new(ia),
                    why: BypassReason::Disabled,
                }
            };
        }
        let cfg = match self.cfgc.get(sid) {
            Some(cfg) => {
                self.counters.cfg_hits += 1;
                cfg
            }
            None => {
                self.counters.cfg_misses += 1;
                match strtab::fetch(c, mem, self.strtab_regs(), sid) {
                    Ok(cfg) => {
                        let cfg = Arc::new(cfg);
                        self.cfgc.insert(sid, cfg.clone());
                        cfg
                    }
                    Err(e) => {
                        let mut ev = Event::config(e.event, sid);
                        ev.addr = e.addr;
                        self.record_event(c, mem, ev);
                        return Outcome::Aborted(AbortReason::Event(e.event));
                    }
                }
            }
        };
        match &*cfg {
            StreamCfg::Abort => Outcome::Aborted(AbortReason::SteAbort),
            StreamCfg::Bypass => Outcome::Bypassed {
                pa: PhysAddr::new(ia),
                why: BypassReason::Ste,
            },
            StreamCfg::Translate(t) => self.translate_stages(c, mem, sid, t, ia, access),
        }
    }

    fn translate_stages(
        &mut self,
        c: &SmmuV3Config,
        mem: &PhysMem,
        sid: u32,
        t: &TransCfg,
        ia: u64,
        access: Access,
    ) -> Outcome {
        let asid = t.s1.map(|s| s.asid);
        let entry = match self.tlb.lookup(t.vmid, asid, ia) {
            Some(e) => {
                self.counters.tlb_hits += 1;
                e
            }
            None => {
                self.counters.tlb_misses += 1;
                match walk_stages(mem, t, ia) {
                    Ok(e) => {
                        self.tlb.insert(e);
                        e
                    }
                    Err((f, record)) => return self.fault(c, mem, sid, ia, access, f, record),
                }
            }
        };
        let allowed = match access {
            Access::Read => entry.read,
            Access::Write => entry.write,
        };
        if !allowed {
            // A permission fault belongs to the stage that denied it; with both, stage 1 is
            // reported (the combined entry does not say, so we re-walk to find out).
            let stage2_only = t.s1.is_none();
            let record = if stage2_only {
                t.s2.is_some_and(|s| s.record)
            } else {
                t.s1.is_some_and(|s| s.walk.record)
            };
            let f = Fault {
                id: id::F_PERMISSION,
                stage2: stage2_only,
                class: event::CLASS_IN,
                ipa: 0,
            };
            return self.fault(c, mem, sid, ia, access, f, record);
        }
        let mask = (1u64 << entry.size_shift) - 1;
        Outcome::Translated {
            pa: PhysAddr::new(entry.pa + (ia & mask)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fault(
        &mut self,
        c: &SmmuV3Config,
        mem: &PhysMem,
        sid: u32,
        ia: u64,
        access: Access,
        f: Fault,
        record: bool,
    ) -> Outcome {
        self.counters.faults += 1;
        if record {
            let mut syn = f.class << event::CLASS_SHIFT;
            if access == Access::Read {
                syn |= event::RNW;
            }
            if f.stage2 {
                syn |= event::S2;
            }
            let ev = Event {
                id: f.id,
                sid,
                ssid: None,
                syndrome: syn,
                addr: ia,
                ipa: f.ipa,
            };
            self.record_event(c, mem, ev);
        }
        Outcome::Aborted(AbortReason::Event(f.id))
    }
}

/// Walk the stages of `t` for `ia`; on failure, the fault and whether its stage records faults.
fn walk_stages(mem: &PhysMem, t: &TransCfg, ia: u64) -> Result<TlbEntry, (Fault, bool)> {
    let s2_walk = |s2: &StageCfg, ipa: u64| s2.walk.run(mem, ipa, &mut |a| Ok(a));
    match (&t.s1, &t.s2) {
        (Some(s1), s2) => {
            let rec1 = s1.walk.record;
            if s1.walk.disabled {
                return Err((fault_of(WalkFault::Translation { level: 0 }, false), rec1));
            }
            let mut to_pa = |ipa: u64| -> Result<u64, WalkFault> {
                match s2 {
                    None => Ok(ipa),
                    Some(s2) => match s2_walk(s2, ipa) {
                        Ok(l) if l.read => Ok(l.out),
                        Ok(_) => Err(WalkFault::Stage2 {
                            ipa,
                            fault: Stage2Fault::Permission,
                        }),
                        Err(f) => Err(WalkFault::Stage2 {
                            ipa,
                            fault: s2_fault(f),
                        }),
                    },
                }
            };
            let l1 = s1.walk.walk.run(mem, ia, &mut to_pa).map_err(|f| {
                let rec = if matches!(f, WalkFault::Stage2 { .. }) {
                    s2.is_some_and(|s| s.record)
                } else {
                    rec1
                };
                (fault_of(f, false), rec)
            })?;
            let Some(s2) = s2 else {
                return Ok(TlbEntry {
                    vmid: t.vmid,
                    asid: Some(s1.asid),
                    va: ia & !((1u64 << l1.size_shift) - 1),
                    size_shift: l1.size_shift,
                    pa: l1.out & !((1u64 << l1.size_shift) - 1),
                    read: l1.read,
                    write: l1.write,
                });
            };
            let l2 = s2_walk(s2, l1.out).map_err(|f| {
                let mut fault = fault_of(f, true);
                fault.ipa = l1.out;
                (fault, s2.record)
            })?;
            // The combined entry covers the smaller of the two leaves.
            let shift = l1.size_shift.min(l2.size_shift);
            let mask = (1u64 << shift) - 1;
            Ok(TlbEntry {
                vmid: t.vmid,
                asid: Some(s1.asid),
                va: ia & !mask,
                size_shift: shift,
                pa: l2.out & !mask,
                read: l1.read && l2.read,
                write: l1.write && l2.write,
            })
        }
        (None, Some(s2)) => {
            let l2 = s2_walk(s2, ia).map_err(|f| {
                let mut fault = fault_of(f, true);
                fault.ipa = ia;
                (fault, s2.record)
            })?;
            let mask = (1u64 << l2.size_shift) - 1;
            Ok(TlbEntry {
                vmid: t.vmid,
                asid: None,
                va: ia & !mask,
                size_shift: l2.size_shift,
                pa: l2.out & !mask,
                read: l2.read,
                write: l2.write,
            })
        }
        (None, None) => Err((fault_of(WalkFault::Translation { level: 0 }, false), false)),
    }
}
