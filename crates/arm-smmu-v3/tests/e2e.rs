//! The driver under the IOMMU core: the DMA API maps, the model translates the device's DMA,
//! unmapping invalidates, and the seed's bug on v3 in miniature (v6.1 shutdown unregisters, the
//! NIC driver's next map oopses; v6.2+ only disables and DMA bypasses; quiesce aborts).

mod common;

use arm_smmu_v3::{KernelVersion, ShutdownPolicy};
use common::*;
use iommu::{Bus, CoreConfig, DeviceDesc, DmaDirection, DmaError, IommuCore};
use physmem::PhysAddr;
use smmuv3::{AbortReason, Access, Outcome, SmmuV3Config};
use std::sync::Arc;

fn core_on(r: &Rig) -> (Arc<IommuCore>, iommu::DeviceId) {
    let coherent = Arc::new(
        physmem::FrameAllocator::new(r.mem.clone(), PhysAddr::new(RAM + (128 << 20)), 16 << 20)
            .unwrap(),
    );
    let cfg = CoreConfig {
        linux_faithful: true,
        ..CoreConfig::default()
    };
    let core = IommuCore::new(cfg, r.mem.clone(), coherent, r.log.clone());
    let inst = core.register(r.smmu.clone());
    let nic = core
        .probe_device(
            DeviceDesc::new("e1000e 0000:00:01.0", Bus::Pci, 0, &[8]),
            inst,
        )
        .unwrap();
    (core, nic)
}

#[test]
fn dma_api_round_trip_through_the_model() {
    for v in [KernelVersion::V6_1, KernelVersion::V6_12] {
        let r = rig(SmmuV3Config::qemu_virt(), v, ShutdownPolicy::Linux62);
        let (core, nic) = core_on(&r);
        let buf = PhysAddr::new(RAM + (100 << 20));
        let iova = core
            .dma_map_page(nic, buf, 1500, DmaDirection::FromDevice)
            .unwrap();
        r.model.dma_write(8, iova.bus_iova(), b"packet").unwrap();
        let mut got = [0u8; 6];
        r.mem.read_bytes(buf, &mut got).unwrap();
        assert_eq!(&got, b"packet", "{v:?}");
        core.dma_unmap_page(nic, iova, 1500, DmaDirection::FromDevice)
            .unwrap();
        assert_eq!(
            r.model.translate(8, iova.bus_iova(), Access::Write),
            Outcome::Aborted(AbortReason::Event(0x10)),
            "{v:?}"
        );
    }
}

#[test]
fn reboot_race_in_miniature_per_policy() {
    for policy in [
        ShutdownPolicy::Linux61,
        ShutdownPolicy::Linux62,
        ShutdownPolicy::Quiesce,
    ] {
        let r = rig(SmmuV3Config::qemu_virt(), KernelVersion::V6_1, policy);
        let (core, nic) = core_on(&r);
        let iova = core
            .dma_map_page(
                nic,
                PhysAddr::new(RAM + (100 << 20)),
                1500,
                DmaDirection::FromDevice,
            )
            .unwrap();
        let inst = iommu::InstanceId(0);
        let c2 = core.clone();
        r.smmu.shutdown(&mut || {
            let _ = c2.unregister(inst);
        });
        // The NIC (no .shutdown) keeps going: its in-flight DMA, then its driver's next map.
        let dma = r.model.translate(8, iova.bus_iova(), Access::Write);
        let next = core.dma_map_page(
            nic,
            PhysAddr::new(RAM + (101 << 20)),
            1500,
            DmaDirection::FromDevice,
        );
        match policy {
            ShutdownPolicy::Linux61 => {
                assert!(
                    matches!(dma, Outcome::Bypassed { .. }),
                    "stray DMA after CR0 := 0 with GBPA bypass"
                );
                assert!(
                    matches!(next, Err(DmaError::Oops(_))),
                    "the seed's NULL group dereference"
                );
                assert!(r
                    .log
                    .lines()
                    .iter()
                    .any(|l| l == "e1000e 0000:00:01.0: Removing from iommu group 0"));
            }
            ShutdownPolicy::Linux62 => {
                assert!(
                    matches!(dma, Outcome::Bypassed { pa, .. } if pa.as_u64() == iova.as_u64()),
                    "IOVA used as PA"
                );
                assert!(next.is_ok());
            }
            ShutdownPolicy::Quiesce => {
                assert_eq!(dma, Outcome::Aborted(AbortReason::GlobalAbort));
                assert!(next.is_ok());
            }
        }
    }
}
