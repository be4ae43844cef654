//! A restored core continues as one that never ran the abandoned operations: every result and
//! IOVA it returns, every field of its state, the driver's and the log.
//!
//! Here: the rig (a core on a fake driver, with memory, frames and a log that are saved and
//! restored with it) and the boot every test starts from. By subject: [`ops`] (the operations
//! a run applies), [`dump`] (every field of the core's state as text), [`equivalence`] (the
//! proptests: restored equals never-left, and changes-only equals whole), [`lifecycle`] (what a
//! restore revives, frees and tracks), [`refusals`] (snapshots and restores that are refused).

mod dump;
mod equivalence;
mod lifecycle;
mod ops;
mod refusals;

use super::*;
use crate::fake::{FakeDriver, FakeSnapshot};
use crate::{Bus, CoreConfig, DeviceDesc};
use klog::{Level, Printk};
use physmem::{AllocSnapshot, FrameAllocator, MemSnapshot, PhysMem, Region};
use smmu_addr::{Iova, PhysAddr};

const RAM: u64 = 0x8000_0000;

/// A log whose clock and lines can be saved and put back (the simulated kernel's log is
/// restored by its owner, like this).
#[derive(Default)]
struct TestLog {
    inner: Mutex<(u64, Vec<String>)>,
}

impl Printk for TestLog {
    fn printk(&self, _level: Level, line: &str) {
        self.inner.lock().1.push(line.to_string());
    }
    fn now_ns(&self) -> u64 {
        self.inner.lock().0
    }
}

struct Rig {
    core: Arc<IommuCore>,
    fake: Arc<FakeDriver>,
    mem: Arc<PhysMem>,
    frames: Arc<FrameAllocator>,
    log: Arc<TestLog>,
    inst: InstanceId,
    h: Harness,
}

/// What the test (a device driver) holds.
#[derive(Clone, Default)]
struct Harness {
    devs: Vec<DeviceId>,
    live: Vec<(DeviceId, Live)>,
    unmanaged: Vec<Arc<Domain>>,
    probes: u32,
}

#[derive(Clone, Debug)]
enum Live {
    Page(DmaAddr, u64, DmaDirection),
    Sg(Vec<(DmaAddr, u64)>, DmaDirection),
    Coherent(PhysAddr, DmaAddr, u64),
}

/// Everything a machine restores, the core first.
struct Saved {
    core: CoreSnapshot,
    fake: FakeSnapshot,
    mem: MemSnapshot,
    frames: AllocSnapshot,
    log: (u64, Vec<String>),
    h: Harness,
}

impl Rig {
    fn new(cfg: CoreConfig) -> Rig {
        let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 16 << 20)]).unwrap());
        let frames =
            Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(RAM), 16 << 20).unwrap());
        let log = Arc::new(TestLog::default());
        let core = IommuCore::new(cfg, mem.clone(), frames.clone(), log.clone());
        let fake = Arc::new(FakeDriver::new("arm-smmu 5000000.iommu"));
        let inst = core.register(fake.clone());
        Rig {
            core,
            fake,
            mem,
            frames,
            log,
            inst,
            h: Harness::default(),
        }
    }

    fn save(&self) -> Saved {
        Saved {
            core: self.core.snapshot().unwrap(),
            fake: self.fake.snapshot(),
            mem: self.mem.snapshot(),
            frames: self.frames.snapshot(),
            log: self.log.inner.lock().clone(),
            h: self.h.clone(),
        }
    }

    fn restore(&mut self, s: &Saved) {
        self.restore_as(s, Restore::Changes);
    }

    fn restore_as(&mut self, s: &Saved, how: Restore) {
        self.core.restore_as(&s.core, how).unwrap();
        self.fake.restore(&s.fake);
        self.mem.restore(&s.mem).unwrap();
        self.frames.restore(&s.frames).unwrap();
        self.log.inner.lock().clone_from(&s.log);
        self.h = s.h.clone();
    }
}

/// Devices probed at boot (stream IDs: two share a group) and their boot mappings.
fn boot(r: &mut Rig, maps: &[(u64, u64)]) {
    for (i, sid) in [0x10u32, 0x11, 0x11, 0x12].into_iter().enumerate() {
        let d = r
            .core
            .probe_device(
                DeviceDesc::new(&format!("boot{i}"), Bus::Pci, i as u64, &[sid]),
                r.inst,
            )
            .unwrap();
        r.h.devs.push(d);
    }
    for &(off, size) in maps {
        let d = r.h.devs[(off % 4) as usize];
        let a = r
            .core
            .dma_map_page(d, PhysAddr::new(RAM + off), size, DmaDirection::FromDevice)
            .unwrap();
        r.h.live
            .push((d, Live::Page(a, size, DmaDirection::FromDevice)));
    }
}
