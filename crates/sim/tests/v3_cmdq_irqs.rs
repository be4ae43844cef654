//! arm-smmu-v3's command-queue sections run with the CPU's interrupts masked, as Linux's
//! `arm_smmu_cmdq_issue_cmdlist` does (`local_irq_save` from the allocation of queue space to
//! the end of the wait for the CMD_SYNC): an interrupt that arrives for the CPU inside a section
//! is taken at the first scheduling point after it, on top of the task that issued.
//!
//! The driver probes on the test's thread, which stands for a task holding CPU 0 of an
//! [`Exec`]; the smmu-sync hooks are those the simulated machines install (`scenario::contexts`):
//! masking goes to `Exec::local_irq_save`/`restore`, and every scheduling point is an
//! `Exec::interrupt_point`. An interrupt is raised at every point, so one is pending wherever
//! the driver could be interrupted.

use arm_smmu_v3::trace::TracingMmio;
use arm_smmu_v3::{
    ArmSmmuV3, FirmwareDesc, KernelVersion, ModuleParams, RateLimits, ShutdownPolicy, SmmuEnv,
};
use klog::MemLog;
use physmem::{FrameAllocator, PhysAddr, PhysMem, Region};
use sim::exec::{Code, Context, Exec, Irq, Task};
use smmu_sync::{Arc, Mutex};
use smmuv3::{SmmuV3, SmmuV3Config};

const RAM: u64 = 0x4000_0000;
const LINE: u32 = 77;

/// Records each hardirq: how many bus lines the driver had made when it was taken, and the
/// task it interrupted.
struct Recorder {
    bus: Arc<TracingMmio<Arc<SmmuV3>>>,
    taken: Mutex<Vec<(usize, String)>>,
}

impl Code for Recorder {
    fn hardirq(&self, _: &Exec, line: u32, ctx: &Context) {
        assert_eq!(line, LINE);
        let on = match ctx {
            Context::Hardirq(t) => t.comm.clone(),
            other => format!("{other:?}"),
        };
        self.taken.lock().push((self.bus.lines().len(), on));
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

/// Probe arm-smmu-v3 (its reset issues CFGI_ALL and TLBI_NSNH_ALL, each with a CMD_SYNC) on a
/// task holding CPU 0; with `mask` the task's `local_irq_save` masks CPU 0. Returns the bus
/// lines and the hardirqs taken.
fn probe_with_irqs(mask: bool) -> (Vec<String>, Vec<(usize, String)>) {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 64 << 20)]).unwrap());
    let frames = Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(RAM), 64 << 20).unwrap());
    let model = SmmuV3::new(SmmuV3Config::qemu_virt(), mem.clone()).unwrap();
    let bus = Arc::new(TracingMmio::new(model, mem));
    let exec = Arc::new(Exec::new(1));
    let code = Arc::new(Recorder {
        bus: bus.clone(),
        taken: Mutex::new(Vec::new()),
    });
    let task = Task {
        cpu: 0,
        pid: 1,
        comm: "swapper/0".into(),
    };
    exec.hold_cpu(0, task.clone());
    let (e, c) = (exec.clone(), code.clone());
    let mask_exec = exec.clone();
    let run = move || {
        if mask {
            smmu_sync::set_irq_mask_hook(Some(Arc::new(move |on| {
                if on {
                    mask_exec.local_irq_save(0);
                } else {
                    mask_exec.local_irq_restore(0);
                }
            })));
        }
        smmu_sync::set_interrupt_hook(Some(Arc::new(move || {
            e.raise_irq(0, Irq::Line(LINE));
            e.interrupt_point(0, &task, false, &*c).expect("no crash");
        })));
        let env = SmmuEnv {
            mmio: bus.clone(),
            log: Arc::new(MemLog::new()),
            frames,
            limits: Arc::new(RateLimits::default()),
        };
        let smmu = ArmSmmuV3::probe(
            &FirmwareDesc::qemu_virt(),
            ModuleParams::default(),
            KernelVersion::V6_1,
            ShutdownPolicy::Linux62,
            env,
        );
        smmu_sync::set_interrupt_hook(None);
        smmu_sync::set_irq_mask_hook(None);
        assert!(smmu.is_ok());
        bus.lines()
    };
    let lines = smmu_sync::thread::spawn(run).join().unwrap();
    let taken = code.taken.lock().clone();
    (lines, taken)
}

/// Each command-queue section on the bus: from the CMDQ_PROD write that publishes to the
/// CMDQ_CONS read that sees the CMD_SYNC consumed (line indices, inclusive).
fn sections(lines: &[String]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut open = None;
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("W32 0x00098 CMDQ_PROD") {
            open = Some(i);
        } else if l.starts_with("R32 0x0009c CMDQ_CONS") {
            if let Some(s) = open.take() {
                out.push((s, i));
            }
        }
    }
    out
}

#[test]
fn an_interrupt_inside_a_cmdq_section_is_taken_after_it() {
    let (lines, taken) = probe_with_irqs(true);
    let secs = sections(&lines);
    // The reset's two synchronised commands, each published and waited for in one section.
    assert_eq!(secs.len(), 2, "{lines:#?}");
    for &(start, _) in &secs {
        assert_eq!(
            lines[start + 2],
            "CMD CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0"
        );
    }
    // Every register access is one scheduling point (a `CMD` line is the tracer's decoding of
    // the queue at a PROD write, not an access). The interrupt raised at each point is taken
    // there, on top of the task, except inside a section: there it stays pending until the
    // first point after the section (the next access outside every section).
    let inside = |i: usize| secs.iter().any(|&(s, e)| (s..=e).contains(&i));
    let want: Vec<(usize, String)> = (0..lines.len())
        .filter(|&i| !lines[i].starts_with("CMD ") && !inside(i))
        .map(|i| (i, "swapper/0".to_string()))
        .collect();
    assert_eq!(taken, want, "{lines:#?}");
    // So the one raised at the PROD write of each section waited for its end.
    for &(_, end) in &secs {
        let next = (end + 1..lines.len()).find(|&i| !inside(i) && !lines[i].starts_with("CMD "));
        let next = next.expect("the probe goes on after its sections");
        assert!(taken.iter().any(|(at, _)| *at == next));
    }
}

#[test]
fn without_the_mask_the_same_interrupt_lands_inside_the_section() {
    // The control: a task whose masking reaches no CPU is interrupted inside the sections,
    // at the PROD write and the CONS poll.
    let (lines, taken) = probe_with_irqs(false);
    let secs = sections(&lines);
    assert_eq!(secs.len(), 2);
    for &(start, end) in &secs {
        assert!(
            taken.contains(&(start, "swapper/0".to_string())),
            "{taken:?}"
        );
        assert!(taken.contains(&(end, "swapper/0".to_string())), "{taken:?}");
    }
}
