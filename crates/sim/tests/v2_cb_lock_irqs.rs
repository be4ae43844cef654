//! arm-smmu takes its context bank's `cb_lock` with `spin_lock_irqsave`, as Linux's
//! `arm_smmu_tlb_sync_context` does: while a task holds it (the TLBSYNC write and the
//! TLBSTATUS polls), its CPU takes no interrupt, and one raised meanwhile is taken at the first
//! scheduling point after the unlock. Checked under the schedule explorer: another CPU raises
//! one interrupt for CPU 0 at a point the explorer chooses, while the task on CPU 0 unmaps a
//! page and syncs the context bank's TLB.
//!
//! The smmu-sync hooks are those the simulated machines install (`scenario::contexts`):
//! masking goes to `Exec::local_irq_save`/`restore`, and every scheduling point of the task
//! (one before each register access) is an `Exec::interrupt_point`.

use arm_smmu::testing::{FakeSmmu, IdRegs, RecordingMmio};
use arm_smmu::{
    ArmSmmu, FirmwareDesc, LinuxVersion, LpaeTables, ModuleParams, RateLimits, SmmuEnv,
};
use explore::{explore, ExploreOptions, Scenario, Strategy};
use iommu::{DeviceId, DomainKind, FwSpec, Gather, IommuDriver, MasterInfo, Prot};
use klog::MemLog;
use physmem::{FrameAllocator, PhysAddr, PhysMem, Region};
use sim::exec::{Code, Context, Exec, Irq, Task};
use smmu_addr::{Iova, PageCount, PageSize};
use smmu_arch::regs::cb;
use smmu_sync::{sched_point, thread, Arc, Mutex, Point};

const RAM: u64 = 0x8000_0000;
const LINE: u32 = 77;

/// Records, for each hardirq, how many register accesses the task had made when it was taken.
struct Recorder {
    bus: Arc<RecordingMmio<FakeSmmu>>,
    taken: Mutex<Vec<usize>>,
}

impl Code for Recorder {
    fn hardirq(&self, _: &Exec, line: u32, _: &Context) {
        assert_eq!(line, LINE);
        self.taken.lock().push(self.bus.ops().len());
    }
    fn napi_poll(&self, _: &Exec, _: u32, _: usize, _: &Context) -> Option<usize> {
        Some(0)
    }
    fn run_work(&self, _: &Exec, _: u32, _: &Context) -> Option<()> {
        Some(())
    }
    fn now_ns(&self) -> u64 {
        0
    }
    fn advance_ns(&self, _: u64) {}
}

/// One run: where the interrupt was raised and where it was taken (in register accesses made
/// before), and the section's points (the access counts at the points inside `cb_lock`) and
/// the first point after it.
#[derive(Debug, Clone)]
struct Run {
    raised_at: usize,
    taken_at: Vec<usize>,
    inside: Vec<usize>,
    after: usize,
}

struct CbLockIrq {
    /// Whether the task's `local_irq_save` reaches CPU 0 (the control run: it does not).
    mask: bool,
}

impl Scenario for CbLockIrq {
    type Outcome = Run;

    fn run(&self) -> Run {
        let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 64 << 20)]).unwrap());
        let frames =
            Arc::new(FrameAllocator::new(mem, PhysAddr::new(RAM + (32 << 20)), 32 << 20).unwrap());
        let bus = Arc::new(RecordingMmio::new(FakeSmmu::new(IdRegs::LS1028A)));
        let smmu = ArmSmmu::probe_and_reset(
            &FirmwareDesc::ls1028a(),
            ModuleParams::default(),
            LinuxVersion::V6_1.behaviour(),
            SmmuEnv {
                mmio: bus.clone(),
                log: Arc::new(MemLog::new()),
                frames,
                tables: Arc::new(LpaeTables::SAFE),
                limits: Arc::new(RateLimits::default()),
            },
        )
        .unwrap();
        let dev = DeviceId(0);
        smmu.probe_device(&MasterInfo {
            id: dev,
            log_name: "fsl_enetc 0000:00:00.0".into(),
            fwspec: FwSpec { ids: vec![0x29] },
        })
        .unwrap();
        let dom = smmu.domain_alloc(DomainKind::Dma).unwrap();
        smmu.attach_dev(dom, dev).unwrap();
        let (iova, pa) = (Iova::new(0x10_0000), PhysAddr::new(RAM + 0x1000));
        let prot = Prot::READ | Prot::WRITE;
        smmu.map_pages(dom, iova, pa, PageSize::SZ_4K, PageCount::new(1), prot)
            .unwrap();
        bus.clear();

        // CPU 0 runs this task; another CPU raises one interrupt for it when the explorer says.
        let exec = Arc::new(Exec::new(2));
        let code = Arc::new(Recorder {
            bus: bus.clone(),
            taken: Mutex::new(Vec::new()),
        });
        let task = Task {
            cpu: 0,
            pid: 1,
            comm: "kworker/0:1".into(),
        };
        exec.hold_cpu(0, task.clone());
        if self.mask {
            let e = exec.clone();
            smmu_sync::set_irq_mask_hook(Some(Arc::new(move |on| {
                if on {
                    e.local_irq_save(0);
                } else {
                    e.local_irq_restore(0);
                }
            })));
        }
        let (e, c) = (exec.clone(), code.clone());
        smmu_sync::set_interrupt_hook(Some(Arc::new(move || {
            e.interrupt_point(0, &task, false, &*c).expect("no crash");
        })));
        let raised_at = Arc::new(Mutex::new(0));
        let (e, b, r) = (exec.clone(), bus.clone(), raised_at.clone());
        let raiser = thread::spawn(move || {
            sched_point(Point::Irq);
            *r.lock() = b.ops().len();
            e.raise_irq(0, Irq::Line(LINE));
        });
        // dma unmap: the leaf invalidation, then iotlb_sync's context sync under cb_lock.
        let mut gather = Gather::new();
        smmu.unmap_pages(dom, iova, PageSize::SZ_4K, PageCount::new(1), &mut gather);
        smmu.iotlb_sync(dom, &mut gather);
        sched_point(Point::Kernel);
        raiser.join().unwrap();
        // An interrupt raised after the task's last point is taken at this one.
        sched_point(Point::Kernel);
        smmu_sync::set_interrupt_hook(None);
        smmu_sync::set_irq_mask_hook(None);

        // The section: the point before the TLBSYNC write (the lock is already held) and the
        // point before each TLBSTATUS poll.
        let ops = bus.ops();
        let in_page = |o: u64| o & 0xfff;
        let inside: Vec<usize> = ops
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                (o.write && in_page(o.offset) == cb::TLBSYNC)
                    || (!o.write && in_page(o.offset) == cb::TLBSTATUS)
            })
            .map(|(i, _)| i)
            .collect();
        let after = inside.last().map_or(0, |&i| i + 1);
        let taken_at = code.taken.lock().clone();
        let raised_at = *raised_at.lock();
        Run {
            raised_at,
            taken_at,
            inside,
            after,
        }
    }

    fn violations(&self, run: &Run) -> Vec<String> {
        let mut v = Vec::new();
        if run.taken_at.iter().any(|t| run.inside.contains(t)) {
            v.push("irq-inside-cb_lock".to_string());
        }
        if run.inside.contains(&run.raised_at) && run.taken_at != [run.after] {
            v.push("irq-deferred-past-the-unlock".to_string());
        }
        if run.taken_at.len() != 1 {
            v.push("irq-taken-once".to_string());
        }
        v
    }

    fn classify(&self, run: &Run) -> Vec<String> {
        let raised = if run.inside.contains(&run.raised_at) {
            "raised-under-cb_lock"
        } else {
            "raised-outside"
        };
        vec![raised.to_string()]
    }
}

fn opts() -> ExploreOptions {
    ExploreOptions {
        strategy: Strategy::Random,
        runs: 300,
        seed: 1,
        stop_at_first: false,
        ..ExploreOptions::default()
    }
}

#[test]
fn an_interrupt_raised_under_cb_lock_is_taken_after_the_unlock() {
    let report = explore(Arc::new(CbLockIrq { mask: true }), opts(), &|_, _| {});
    assert_eq!(report.failures, Default::default(), "{report:?}");
    assert_eq!(report.runs, 300);
    // The explorer put the raise inside the section in some runs and outside in others.
    let under = report.outcomes.get("raised-under-cb_lock").copied();
    assert!(under.is_some_and(|n| n > 0), "{:?}", report.outcomes);
    assert!(report
        .outcomes
        .get("raised-outside")
        .is_some_and(|&n| n > 0));
}

#[test]
fn without_the_mask_the_explorer_finds_it_taken_inside() {
    // The control: a task whose masking reaches no CPU is interrupted while it holds the lock.
    let report = explore(Arc::new(CbLockIrq { mask: false }), opts(), &|_, _| {});
    // Every run that raised it under the lock took it there, before the unlock.
    let under = report.outcomes.get("raised-under-cb_lock").copied();
    assert!(under.is_some_and(|n| n > 0), "{:?}", report.outcomes);
    assert_eq!(report.failures.get("irq-inside-cb_lock").copied(), under);
}
