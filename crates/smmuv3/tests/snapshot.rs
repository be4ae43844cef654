//! A model restored to a snapshot, with its memory, continues exactly as a twin that never ran
//! the abandoned steps: same register reads, translations, events and counters, although those
//! steps rewrote registers, filled and invalidated the caches and moved the queues.

mod common;

use common::*;
use proptest::prelude::*;
use smmu_addr::Iova;
use smmuv3::{Access, Mmio, SmmuV3Config, SmmuV3SnapshotError};
use smmuv3_arch::cmd::Command;
use smmuv3_arch::regs::*;

const IOVA: u64 = 0x10_0000;

#[derive(Debug, Clone, Copy)]
enum Step {
    /// A stream's STE becomes bypass (0), abort (1) or stage 1 over an empty table (2).
    Ste(u32, u8),
    /// Invalidate a stream's cached configuration, then sync.
    CfgiSte(u32),
    /// Invalidate the whole TLB, then sync.
    TlbiAll,
    Dma(u32, u64, bool),
    DrainEvents,
    /// Turn translation off or on (queues stay enabled).
    Enable(bool),
    /// A write of any value to GBPA (the attributes of bypass while disabled).
    Gbpa(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0u32..8, 0u8..3).prop_map(|(s, k)| Step::Ste(s, k)),
        2 => (0u32..8).prop_map(Step::CfgiSte),
        1 => Just(Step::TlbiAll),
        5 => (0u32..8, 0u64..4, any::<bool>()).prop_map(|(s, p, w)| Step::Dma(s, p, w)),
        1 => Just(Step::DrainEvents),
        1 => any::<bool>().prop_map(Step::Enable),
        1 => (0u32..4).prop_map(|a| Step::Gbpa(a << 20)),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(step(), 0..40)
}

/// Run `steps`, returning each one's result.
fn apply(r: &mut Rig, steps: &[Step]) -> Vec<String> {
    let mut out = Vec::new();
    for &s in steps {
        out.push(match s {
            Step::Ste(sid, 0) => {
                r.ste_bypass(sid);
                "bypass".into()
            }
            Step::Ste(sid, 1) => {
                r.ste_abort(sid);
                "abort".into()
            }
            Step::Ste(sid, _) => {
                let ttb = r.alloc(4096);
                format!("{:#x}", r.ste_s1(sid, sid as u16 + 1, ttb, 25))
            }
            Step::CfgiSte(sid) => {
                r.issue_sync(&[Command::CfgiSte { sid, leaf: true }]);
                format!("{:#x}", r.smmu.read32(CMDQ_CONS))
            }
            Step::TlbiAll => {
                r.issue_sync(&[Command::TlbiNsnhAll]);
                format!("{:#x}", r.smmu.read32(CMDQ_CONS))
            }
            Step::Dma(sid, page, write) => {
                let a = if write { Access::Write } else { Access::Read };
                format!(
                    "{:?}",
                    r.smmu
                        .translate(sid, Iova::new(IOVA + page * 0x1000 + 0x40), a)
                )
            }
            Step::DrainEvents => format!("{:?}", r.drain_events()),
            Step::Enable(on) => {
                let q = cr0::CMDQEN | cr0::EVTQEN;
                r.smmu.write32(CR0, if on { q | cr0::SMMUEN } else { q });
                format!("{:#x}", r.smmu.read32(CR0ACK))
            }
            Step::Gbpa(v) => {
                r.smmu.write32(GBPA, v | gbpa::UPDATE);
                format!("{:#x}", r.smmu.read32(GBPA))
            }
        });
    }
    out
}

/// The registers a driver reads, the counters and the caches' occupancy.
fn observe(r: &Rig) -> (Vec<u32>, String, (usize, usize)) {
    let regs = [
        CR0, CR0ACK, GBPA, GERROR, CMDQ_PROD, CMDQ_CONS, EVTQ_PROD, EVTQ_CONS,
    ]
    .iter()
    .map(|&o| r.smmu.read32(o))
    .collect();
    (regs, format!("{:?}", r.smmu.counters()), r.smmu.cached())
}

fn rig(preset: bool) -> Rig {
    let cfg = if preset {
        SmmuV3Config::qemu_virt()
    } else {
        SmmuV3Config::s1s2_msi()
    };
    Rig::new(cfg, 3, 4, 4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Model and memory restored after random abandoned steps continue as a twin that never
    /// ran them: every later result, register, counter and cache occupancy agrees.
    #[test]
    fn a_restored_model_continues_as_one_that_never_left(
        preset in any::<bool>(),
        before in steps(),
        after in steps(),
        next in steps(),
    ) {
        let (mut twin, mut m) = (rig(preset), rig(preset));
        prop_assert_eq!(apply(&mut twin, &before), apply(&mut m, &before));
        let (model, mem, frames, prod) =
            (m.smmu.snapshot(), m.mem.snapshot(), m.frames.snapshot(), m.prod);
        apply(&mut m, &after);
        m.frames.restore(&frames).unwrap();
        m.mem.restore(&mem).unwrap();
        m.smmu.restore(&model).unwrap();
        m.prod = prod;
        prop_assert_eq!(observe(&m), observe(&twin));
        prop_assert_eq!(apply(&mut m, &next), apply(&mut twin, &next));
        prop_assert_eq!(observe(&m), observe(&twin));
    }
}

#[test]
fn a_snapshot_of_another_configuration_is_refused_and_changes_nothing() {
    let (mut a, mut twin) = (rig(true), rig(true));
    let other = rig(false);
    let setup = [
        Step::Ste(1, 0),
        Step::Dma(1, 0, true),
        Step::Dma(2, 0, false),
    ];
    apply(&mut a, &setup);
    apply(&mut twin, &setup);
    let err = a.smmu.restore(&other.smmu.snapshot()).unwrap_err();
    assert!(matches!(err, SmmuV3SnapshotError::ConfigDiffers { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "snapshot of a {} model restored into a {} model of another configuration",
            other.smmu.config().name,
            a.smmu.config().name
        )
    );
    assert_eq!(observe(&a), observe(&twin));
    let next = [Step::DrainEvents, Step::Dma(1, 1, false)];
    assert_eq!(apply(&mut a, &next), apply(&mut twin, &next));
}
