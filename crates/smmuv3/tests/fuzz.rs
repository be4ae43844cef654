//! MMIO fuzzing: any sequence of register accesses and transactions, with any values, leaves the
//! model answering (no panic, no hang), whatever the memory holds.

mod common;

use common::*;
use physmem::PhysAddr;
use proptest::prelude::*;
use smmu_addr::Iova;
use smmuv3::{Access, Mmio, SmmuV3Config};

#[derive(Debug, Clone)]
enum Op {
    W32(u64, u32),
    W64(u64, u64),
    R32(u64),
    R64(u64),
    Dma(u32, u64, bool),
    Poke(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    // Offsets mostly in the implemented range, some anywhere in the window or beyond.
    let off = prop_oneof![
        (0u64..0x100).prop_map(|o| o & !3),
        (0x1_0000u64..0x1_0100).prop_map(|o| o & !3),
        any::<u64>()
    ];
    prop_oneof![
        (off.clone(), any::<u32>()).prop_map(|(o, v)| Op::W32(o, v)),
        (off.clone(), any::<u64>()).prop_map(|(o, v)| Op::W64(o, v)),
        off.clone().prop_map(Op::R32),
        off.prop_map(Op::R64),
        (any::<u32>(), any::<u64>(), any::<bool>()).prop_map(|(s, a, w)| Op::Dma(s, a, w)),
        (0u64..(1 << 20), any::<u64>()).prop_map(|(o, v)| Op::Poke(o & !7, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn any_register_traffic_is_survived(preset in 0u8..2, ops in proptest::collection::vec(op(), 1..200)) {
        let cfg = if preset == 0 { SmmuV3Config::qemu_virt() } else { SmmuV3Config::s1s2_msi() };
        let r = Rig::new(cfg, 6, 4, 4);
        for o in ops {
            match o {
                Op::W32(a, v) => r.smmu.write32(a, v),
                Op::W64(a, v) => r.smmu.write64(a, v),
                Op::R32(a) => { r.smmu.read32(a); }
                Op::R64(a) => { r.smmu.read64(a); }
                Op::Dma(s, a, w) => { r.smmu.translate(s, Iova::new(a), if w { Access::Write } else { Access::Read }); }
                // Scribble over the stream table, queues and anything else in the first MiB.
                Op::Poke(o, v) => { let _ = r.mem.write_u64(PhysAddr::new(RAM + o), v); }
            }
        }
    }
}
