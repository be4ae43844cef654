//! The driver on an MMU-500 model whose ID2 reports a 40-bit IAS: it prints the sizes it read,
//! gives stage-2 domains a 40-bit input (a level-1 PGD of two concatenated tables, VTCR.SL0 1,
//! T0SZ 24) and a stage-1 domain a 40-bit output, and a block mapped in the PGD's second page
//! is reachable by the device's own transactions.

mod common;

use common::enetc;

use arm_smmu::{
    ArmSmmu, FirmwareDesc, LinuxVersion, LpaeTables, ModuleParams, RateLimits, SmmuEnv,
};
use iommu::{DeviceId, DomainKind, IommuDriver, Prot};
use klog::MemLog;
use mmu500::{Mmu500, Mmu500Config, Translation};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::cb;
use smmu_arch::{Access, Mmio};
use std::sync::Arc;

const ENETC_SID: u32 = 0x429;

fn probe(params: &str) -> (Arc<Mmu500>, Arc<ArmSmmu>, Arc<MemLog>) {
    let (mem, frames) = common::ram();
    let cfg = Mmu500Config {
        ias: 40,
        ..Mmu500Config::mmu500_ls1028a()
    };
    let model = Mmu500::new(cfg, mem).unwrap();
    let log = Arc::new(MemLog::new());
    let smmu = ArmSmmu::probe_and_reset(
        &FirmwareDesc::ls1028a(),
        ModuleParams::from_cmdline(params).unwrap(),
        LinuxVersion::V6_1.behaviour(),
        SmmuEnv {
            mmio: model.clone(),
            log: log.clone(),
            frames,
            tables: Arc::new(LpaeTables::LINUX),
            limits: Arc::new(RateLimits::default()),
        },
    )
    .unwrap();
    (model, smmu, log)
}

#[test]
fn probe_prints_the_40_bit_ipa_size_it_read_from_id2() {
    let (model, smmu, log) = probe("");
    assert_eq!(model.read32(smmu_arch::regs::gr0::ID2), 0x5552);
    let want: Vec<String> = [
        "probing hardware configuration...",
        "SMMUv2 with:",
        "\tstage 1 translation",
        "\tstage 2 translation",
        "\tnested translation",
        "\tcoherent table walk",
        "\t(IDR0.CTTW overridden by FW configuration)",
        "\tstream matching with 128 register groups",
        "\t64 context banks (0 stage-2 only)",
        "\tSupported page sizes: 0x61311000",
        "\tStage-1: 48-bit VA -> 40-bit IPA",
        "\tStage-2: 40-bit IPA -> 48-bit PA",
        "\tpreserved 0 boot mappings",
    ]
    .iter()
    .map(|l| format!("arm-smmu 5000000.iommu: {l}"))
    .collect();
    assert_eq!(log.lines(), want);
    let c = smmu.config();
    assert_eq!((c.va_size, c.ipa_size, c.pa_size), (48, 40, 48));
}

#[test]
fn a_stage_2_domain_gets_a_concatenated_level_1_pgd_and_its_second_page_translates() {
    let (model, smmu, _log) = probe("arm-smmu.force_stage=2");
    smmu.probe_device(&enetc()).unwrap();
    let d = smmu.domain_alloc(DomainKind::Unmanaged).unwrap();
    smmu.attach_dev(d, DeviceId(4)).unwrap();
    let b = model.config().num_pages() * model.config().page_size();
    // RES1 | PS 48-bit | TG0 4K | SH IS | WBWA (dma-coherent) | SL0 1 | T0SZ 24.
    assert_eq!(model.read32(b + cb::TCR), 0x8005_3558);
    assert_eq!(
        smmu.geometry(d).unwrap().aperture_end,
        Iova::new(0xff_ffff_ffff),
        "a 40-bit aperture"
    );
    // The 1 GiB block at PGD index 1018.
    let mapped = smmu
        .map_pages(
            d,
            Iova::new(0xfe_8000_0000),
            PhysAddr::new(0x20_4000_0000),
            PageSize::SZ_1G,
            PageCount::ONE,
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    assert_eq!(mapped, 1 << 30);
    match model.translate(ENETC_SID, Iova::new(0xfe_8123_4000), Access::Write) {
        Ok(Translation::Translated { pa, leaf_size, .. }) => {
            assert_eq!(
                (pa, leaf_size),
                (PhysAddr::new(0x20_4123_4000), PageSize::SZ_1G)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_stage_1_domain_outputs_40_bits() {
    let (model, smmu, _log) = probe("");
    smmu.probe_device(&enetc()).unwrap();
    let d = smmu.domain_alloc(DomainKind::Dma).unwrap();
    smmu.attach_dev(d, DeviceId(4)).unwrap();
    let b = model.config().num_pages() * model.config().page_size();
    // TCR2.PASIZE (bits 2:0) = 2: 40 bits, the IPA size.
    assert_eq!(model.read32(b + cb::TCR2) & 7, 2);
}

#[test]
fn before_d71fa842d33c_the_driver_passes_on_the_negative_count_and_the_device_faults() {
    let (mem, frames) = common::ram();
    let model = Mmu500::new(
        Mmu500Config {
            ias: 40,
            ..Mmu500Config::mmu500_ls1028a()
        },
        mem,
    )
    .unwrap();
    let smmu = ArmSmmu::probe_and_reset(
        &FirmwareDesc::ls1028a(),
        ModuleParams::from_cmdline("arm-smmu.force_stage=2").unwrap(),
        LinuxVersion::V6_1.behaviour(),
        SmmuEnv {
            mmio: model.clone(),
            log: Arc::new(MemLog::new()),
            frames,
            tables: Arc::new(
                LpaeTables::LINUX.with_pgd_run_bound(pgtable::PgdRunBound::TableMinusIndex),
            ),
            limits: Arc::new(RateLimits::default()),
        },
    )
    .unwrap();
    smmu.probe_device(&enetc()).unwrap();
    let d = smmu.domain_alloc(DomainKind::Unmanaged).unwrap();
    smmu.attach_dev(d, DeviceId(4)).unwrap();
    let mapped = smmu
        .map_pages(
            d,
            Iova::new(0xfe_8000_0000),
            PhysAddr::new(0x20_4000_0000),
            PageSize::SZ_1G,
            PageCount::ONE,
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    assert_eq!(mapped as i64, -506 << 30);
    assert!(model
        .translate(ENETC_SID, Iova::new(0xfe_8000_0000), Access::Read)
        .is_err());
}
