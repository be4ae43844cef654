//! Properties of the command and event queues: no command is skipped or run twice, no event is
//! lost while there is room, overflow and wrap behave as the architecture says.

mod common;

use common::*;
use physmem::PhysAddr;
use proptest::prelude::*;
use smmu_addr::Iova;
use smmuv3::{Access, Mmio, SmmuV3Config};
use smmuv3_arch::cmd::{Command, SyncCs};
use smmuv3_arch::event::id;
use smmuv3_arch::queue;
use smmuv3_arch::regs::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Batches of CMD_SYNCs (each completing by an MSI write of its own number) are consumed
    /// completely and in order across many wraps; an illegal command in the stream stops
    /// consumption exactly there until it is fixed and acknowledged.
    #[test]
    fn commands_are_consumed_in_order_exactly_once(
        batches in proptest::collection::vec(1usize..16, 1..40),
        bad_at in proptest::option::of(0usize..200),
    ) {
        let mut r = Rig::new(SmmuV3Config::s1s2_msi(), 4, 4, 4);
        let flag = r.alloc(4096);
        let mut n = 0u32;
        let mut cons_expected = 0u32;
        for b in batches {
            let mut words = Vec::new();
            let mut bad_here = None;
            for i in 0..b {
                n += 1;
                if bad_at == Some(n as usize) {
                    bad_here = Some(i);
                    words.push([0x7fu64, 0]);
                } else {
                    words.push(Command::Sync { cs: SyncCs::Irq, msh: 0, msiattr: 0, msidata: n, msiaddr: flag }.encode());
                }
            }
            r.push_raw(&words);
            let cons = r.smmu.read32(CMDQ_CONS);
            if let Some(i) = bad_here {
                let at = queue::advance(cons_expected, i as u32, 4);
                prop_assert_eq!(cons, at | (1 << 24));
                // Fix: the command becomes a sync writing its own number, then acknowledge.
                let slot = r.cmdq + u64::from(queue::idx(at, 4)) * 16;
                let fix = Command::Sync { cs: SyncCs::Irq, msh: 0, msiattr: 0, msidata: (n as usize - (b - 1 - i)) as u32, msiaddr: flag }.encode();
                r.mem.write_u64(PhysAddr::new(slot), fix[0]).unwrap();
                r.mem.write_u64(PhysAddr::new(slot + 8), fix[1]).unwrap();
                r.smmu.write32(GERRORN, r.smmu.read32(GERROR));
            }
            cons_expected = queue::advance(cons_expected, b as u32, 4);
            prop_assert_eq!(r.smmu.read32(CMDQ_CONS), cons_expected);
            prop_assert_eq!(r.mem.read_u32(PhysAddr::new(flag)).unwrap(), n, "last sync ran last");
        }
        prop_assert_eq!(r.smmu.counters().syncs, u64::from(n));
    }

    /// Faults generated while software consumes at its own pace: every event lands while there
    /// is room, in order; when the queue is full further events are lost, OVFLG toggles once
    /// per overflow episode, and nothing already queued is overwritten.
    #[test]
    fn events_are_never_lost_while_there_is_room(
        steps in proptest::collection::vec((1usize..12, 0usize..12), 1..40),
    ) {
        let r = Rig::new(SmmuV3Config::qemu_virt(), 6, 4, 3);
        let size = 1usize << 3;
        let mut next_sid = 0u32;
        let mut queued: std::collections::VecDeque<u32> = Default::default();
        let mut lost = 0u64;
        let mut episodes = 0u64;
        let mut in_overflow = false;
        for (generate, consume) in steps {
            for _ in 0..generate {
                // StreamID 64+ is out of a 2^6-entry table: C_BAD_STREAMID carrying the SID.
                let sid = 64 + next_sid;
                next_sid += 1;
                r.smmu.translate(sid, Iova::new(0), Access::Read);
                if queued.len() < size {
                    queued.push_back(sid);
                } else {
                    lost += 1;
                    if !in_overflow {
                        episodes += 1;
                        in_overflow = true;
                    }
                }
            }
            // Consume up to `consume` records by hand, checking each.
            let prod = r.smmu.read32(EVTQ_PROD);
            let mut cons = r.smmu.read32(EVTQ_CONS);
            for _ in 0..consume {
                if queue::is_empty(prod, cons, 3) {
                    break;
                }
                let slot = r.evtq + u64::from(queue::idx(cons, 3)) * 32;
                let d0 = r.mem.read_u64(PhysAddr::new(slot)).unwrap();
                prop_assert_eq!(d0 as u8, id::C_BAD_STREAMID);
                prop_assert_eq!(Some((d0 >> 32) as u32), queued.pop_front());
                cons = queue::advance(cons, 1, 3);
            }
            // Acknowledge any overflow, as Linux does once up to speed.
            let ovf = prod & queue_ovf();
            if ovf != cons & queue_ovf() {
                in_overflow = false;
            }
            r.smmu.write32(EVTQ_CONS, (cons & !queue_ovf()) | ovf);
        }
        let c = r.smmu.counters();
        prop_assert_eq!(c.events_lost, lost);
        prop_assert_eq!(c.overflows, episodes);
        prop_assert_eq!(c.events, u64::from(next_sid) - lost);
    }
}

#[test]
fn event_queue_disabled_discards() {
    let r = Rig::new(SmmuV3Config::qemu_virt(), 6, 4, 3);
    r.smmu.write32(CR0, cr0::CMDQEN | cr0::SMMUEN);
    r.smmu.translate(1000, Iova::new(0), Access::Read);
    let c = r.smmu.counters();
    assert_eq!((c.events, c.events_discarded), (0, 1));
}

#[test]
fn event_queue_write_abort_is_a_global_error() {
    let r = Rig::new(SmmuV3Config::qemu_virt(), 6, 4, 3);
    r.smmu.write32(CR0, cr0::CMDQEN | cr0::SMMUEN);
    r.smmu.write64(EVTQ_BASE, 0x10_0000_0000 | 3);
    r.smmu.write32(CR0, cr0::CMDQEN | cr0::SMMUEN | cr0::EVTQEN);
    r.smmu.translate(1000, Iova::new(0), Access::Read);
    assert_eq!(r.smmu.read32(GERROR), gerror::EVTQ_ABT_ERR);
}
