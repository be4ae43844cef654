//! The arm-smmu-v3 driver on QEMU virt's SMMUv3 model: probe, attach an e1000e at 00:01.0
//! (stream ID 0x8), one fault, then `reboot -f`'s shutdown under each policy and what the NIC's
//! next DMA does. Output is quoted in docs/walkthrough.md (and checked by tests/walkthrough.rs).
//!
//! `cargo run -p arm-smmu-v3 --example qemu_virt`

use arm_smmu_v3::trace::TracingMmio;
use arm_smmu_v3::{
    ArmSmmuV3, FirmwareDesc, KernelVersion, ModuleParams, RateLimits, ShutdownPolicy, SmmuEnv,
};
use iommu::{DeviceId, DomainKind, FwSpec, IommuDriver, MasterInfo, Prot};
use klog::MemLog;
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmuv3::{Access, Outcome, SmmuV3, SmmuV3Config};
use std::sync::{Arc, OnceLock};

const RAM: u64 = 0x4000_0000;

/// Everything the example prints, as lines.
pub fn run() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for policy in [
        ShutdownPolicy::Linux61,
        ShutdownPolicy::Linux62,
        ShutdownPolicy::Quiesce,
    ] {
        let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 64 << 20)])?);
        let frames = Arc::new(FrameAllocator::new(
            mem.clone(),
            PhysAddr::new(RAM),
            64 << 20,
        )?);
        let model = SmmuV3::new(SmmuV3Config::qemu_virt(), mem.clone())?;
        let bus = Arc::new(TracingMmio::new(model.clone(), mem));
        let log = Arc::new(MemLog::new());
        let cell: Arc<OnceLock<Arc<ArmSmmuV3>>> = Arc::new(OnceLock::new());
        let c2 = cell.clone();
        model.set_irq_handler(Arc::new(move |l| {
            if let Some(s) = c2.get() {
                s.handle_irq(l);
            }
        }));
        let env = SmmuEnv {
            mmio: bus.clone(),
            log: log.clone(),
            frames,
            limits: Arc::new(RateLimits::default()),
        };
        let smmu = ArmSmmuV3::probe(
            &FirmwareDesc::qemu_virt(),
            ModuleParams::default(),
            KernelVersion::V6_1,
            policy,
            env,
        )?;
        let _ = cell.set(smmu.clone());
        let nic = MasterInfo {
            id: DeviceId(1),
            log_name: "e1000e 0000:00:01.0".into(),
            fwspec: FwSpec { ids: vec![8] },
        };
        smmu.probe_device(&nic)?;
        let dom = smmu.domain_alloc(DomainKind::Dma)?;
        bus.clear();
        smmu.attach_dev(dom, DeviceId(1))?;
        smmu.map_pages(
            dom,
            Iova::new(0xffff_f000),
            PhysAddr::new(RAM + 0x100_0000),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE,
        )?;
        if policy == ShutdownPolicy::Linux61 {
            out.push("== probe (v6.1)".into());
            out.extend(log.lines());
            out.push("== attach e1000e 0000:00:01.0 (stream ID 0x8): commands".into());
            out.extend(bus.commands());
            log.clear();
            model.translate(8, Iova::new(0xdead_0000), Access::Write);
            out.push("== a write to an unmapped IOVA".into());
            out.extend(log.lines());
        }
        bus.clear();
        log.clear();
        let s2 = smmu.clone();
        smmu.shutdown(&mut || s2.release_device(DeviceId(1)));
        out.push(format!(
            "== shutdown, {policy:?}: register writes and commands"
        ));
        out.extend(
            bus.lines()
                .into_iter()
                .filter(|l| l.starts_with('W') || l.starts_with("CMD")),
        );
        let next = match model.translate(8, Iova::new(0xffff_f000), Access::Write) {
            Outcome::Bypassed { pa, .. } => format!("untranslated, to PA {pa:#x} (stray DMA)"),
            Outcome::Aborted(why) => format!("aborted ({why:?})"),
            Outcome::Translated { pa } => format!("translated to {pa:#x}"),
        };
        out.push(format!(
            "   the NIC's next DMA write to IOVA 0xfffff000: {next}"
        ));
    }
    Ok(out)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    for l in run()? {
        println!("{l}");
    }
    Ok(())
}
