//! Probe against any ID register values: the driver returns a probe error or a working
//! instance, never panics (the rest of the bus is the real model).

use arm_smmu_v3::{
    ArmSmmuV3, FirmwareDesc, KernelVersion, ModuleParams, RateLimits, ShutdownPolicy, SmmuEnv,
};
use physmem::PhysAddr;
use physmem::{FrameAllocator, PhysMem, Region};
use proptest::prelude::*;
use smmuv3::{Mmio, SmmuV3, SmmuV3Config};
use std::sync::Arc;

struct Ids<M> {
    inner: M,
    idr: [u32; 8],
}

impl<M: Mmio> Mmio for Ids<M> {
    fn read32(&self, off: u64) -> u32 {
        if off < 0x20 {
            return self.idr[(off / 4) as usize];
        }
        self.inner.read32(off)
    }
    fn write32(&self, off: u64, v: u32) {
        self.inner.write32(off, v)
    }
    fn read64(&self, off: u64) -> u64 {
        self.inner.read64(off)
    }
    fn write64(&self, off: u64, v: u64) {
        self.inner.write64(off, v)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn probe_survives_any_id_registers(idr in proptest::array::uniform8(any::<u32>()), v612 in any::<bool>()) {
        let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(0x4000_0000), 32 << 20)]).unwrap());
        let frames = Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(0x4000_0000), 32 << 20).unwrap());
        let model = SmmuV3::new(SmmuV3Config::s1s2_msi(), mem).unwrap();
        let env = SmmuEnv {
            mmio: Arc::new(Ids { inner: model, idr }),
            log: Arc::new(klog::MemLog::new()),
            frames,
            limits: Arc::new(RateLimits::default()),
        };
        let v = if v612 { KernelVersion::V6_12 } else { KernelVersion::V6_1 };
        let _ = ArmSmmuV3::probe(&FirmwareDesc::qemu_virt(), ModuleParams::default(), v, ShutdownPolicy::Quiesce, env);
    }
}

/// A SIDSIZE beyond the architecture's 32 bits (IDR1[5:0] = 58 here, with no 2-level stream
/// table) once made the linear table's size wrap to 0 bytes and the probe then initialise
/// 2^58 STEs, for ever. The allocation must fail instead, as it would in Linux.
#[test]
fn an_impossible_sid_size_fails_the_stream_table_allocation() {
    let idr = [
        0x1841b5fe, 0x5034e3e, 0xd9170de4, 0x1009554b, 0xac49321a, 0xf63b3af7, 0xafd7eddc,
        0xe0ee2290,
    ];
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(0x4000_0000), 32 << 20)]).unwrap());
    let frames =
        Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(0x4000_0000), 32 << 20).unwrap());
    let model = SmmuV3::new(SmmuV3Config::s1s2_msi(), mem).unwrap();
    let log = Arc::new(klog::MemLog::new());
    let env = SmmuEnv {
        mmio: Arc::new(Ids { inner: model, idr }),
        log: log.clone(),
        frames,
        limits: Arc::new(RateLimits::default()),
    };
    let r = ArmSmmuV3::probe(
        &FirmwareDesc::qemu_virt(),
        ModuleParams::default(),
        KernelVersion::V6_12,
        ShutdownPolicy::Quiesce,
        env,
    );
    assert!(r.is_err(), "the probe must fail");
    let text = log.lines().join("\n");
    assert!(
        text.contains("failed to allocate linear stream table"),
        "{text}"
    );
}
