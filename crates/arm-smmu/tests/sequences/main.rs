//! Register writes of probe/reset, attach, map/unmap and shutdown, write by write, against what
//! Linux writes (reference arm-smmu-v2.md §6, §7, §8.4, §9, §13), on three configurations: the
//! LS1028A MMU-500, an MMU-401 and a stream-indexing SMMUv2. Also the probe notices, fault
//! handler lines and the TLB sync timeout.

mod ls1028a_domain;
mod ls1028a_messages;
mod ls1028a_probe;
mod ls1028a_shutdown;
mod mmu401;
mod stream_indexing;

#[path = "../common/mod.rs"]
mod common;

use arm_smmu::testing::{BusOp, FakeSmmu, IdRegs};
use arm_smmu::{FirmwareDesc, ModuleParams, ShutdownPolicy};
use common::*;
use iommu::{
    DeviceId, DomainKind, DriverError, FwSpec, Gather, IommuDriver, MasterInfo, PgTableError, Prot,
};
use klog::Level;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::IrqReturn;

type W = (u64, u64, u8);

const LS: &str = "arm-smmu 5000000.iommu";
const FAULT: u64 = 0x2_0000;
const BYPASS: u64 = 0x1_0000;

fn w(off: u64, v: u64) -> W {
    (off, v, 32)
}
fn q(off: u64, v: u64) -> W {
    (off, v, 64)
}

fn master(id: u32, name: &str, ids: &[u32]) -> MasterInfo {
    MasterInfo {
        id: DeviceId(id),
        log_name: name.into(),
        fwspec: FwSpec { ids: ids.to_vec() },
    }
}

fn ls_cb(i: u64) -> u64 {
    0x40_0000 + i * 0x1_0000
}

fn ls1028a(params: ModuleParams, policy: ShutdownPolicy) -> Rig<FakeSmmu> {
    fake(IdRegs::LS1028A, &FirmwareDesc::ls1028a(), params, policy)
}

/// Probe, reset, a master with SID 0x29 / mask 0x7c00, and a DMA domain attached to it.
fn ls1028a_attached(policy: ShutdownPolicy) -> (Rig<FakeSmmu>, iommu::DriverDomain, u64) {
    let r = ls1028a(ModuleParams::default(), policy);
    r.smmu.device_reset();
    r.smmu.test_smr_masks();
    r.bus.clear();
    r.smmu
        .probe_device(&master(1, "fsl_enetc 0000:00:00.0", &[0x7c00_0029]))
        .unwrap();
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0xc00, FAULT), w(0x800, 0xfc00_0029)],
    );
    r.bus.clear();
    let dom = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(dom, DeviceId(1)).unwrap();
    let writes = r.bus.writes();
    let pgd = writes
        .iter()
        .find(|x| x.0 == ls_cb(0) + 0x20)
        .map(|x| x.1)
        .unwrap();
    assert_eq!(pgd & 0xfff, 0);
    assert!((PT_BASE..RAM_BASE + RAM_SIZE).contains(&pgd));
    let cb = ls_cb(0);
    assert_eq!(
        writes,
        vec![
            w(0x1_0800, 0x1),          // CBA2R: VA64
            w(0x1_0000, 0x0001_f300),  // CBAR: S1_TRANS_S2_BYPASS, NSH, WB
            w(cb + 0x10, 0x0003_8015), // TCR2
            w(cb + 0x30, 0x0080_3510), // TCR
            q(cb + 0x20, pgd),         // TTBR0 (ASID 0)
            q(cb + 0x28, 0),           // TTBR1
            w(cb + 0x38, 0xf404_ff44), // MAIR0
            w(cb + 0x3c, 0xffff_ffff), // MAIR1: Linux's sign-extended 0xf4 << 24
            w(cb, 0x1067),             // SCTLR
            w(0xc00, 0x0),             // S2CR(0): TRANS to CB 0
        ]
    );
    r.bus.clear();
    (r, dom, pgd)
}

/// A mismatch names the registers: the failure message of `assert_writes` says which register
/// each write went to, so a wrong sequence reads as register names rather than offsets.
#[test]
#[should_panic(expected = "CB0.TTBR0")]
fn assert_writes_names_the_registers_on_failure() {
    let model = mmu500::Mmu500Config::mmu500_ls1028a();
    assert_writes(
        &model,
        &[
            w(ls_cb(0) + 0x30, 0x8081_3510),
            q(ls_cb(0) + 0x20, 0x8100_0000),
        ],
        &[
            q(ls_cb(0) + 0x20, 0x8100_0000),
            w(ls_cb(0) + 0x30, 0x8081_3510),
        ],
    );
}
