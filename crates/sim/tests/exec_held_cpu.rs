//! A CPU runs one context at a time: while a task holds a CPU (the reboot task under
//! PREEMPT_NONE), that CPU's interrupts are taken at the holder's own scheduling points, on top
//! of it, and never by the CPU's actor beside it.

use sim::exec::{Code, Context, Exec, Irq, Task};
use smmu_sync::Mutex;

/// Records the hardirqs taken and the task each interrupted.
#[derive(Default)]
struct Recorder {
    taken: Mutex<Vec<(u32, String)>>,
    clock: Mutex<u64>,
}

impl Code for Recorder {
    fn hardirq(&self, _exec: &Exec, line: u32, ctx: &Context) {
        let on = match ctx {
            Context::Hardirq(t) => t.comm.clone(),
            other => format!("{other:?}"),
        };
        self.taken.lock().push((line, on));
    }
    fn napi_poll(&self, _: &Exec, _: u32, _: usize, _: &Context) -> Option<usize> {
        Some(0)
    }
    fn run_work(&self, _: &Exec, _: u32, _: &Context) -> Option<()> {
        Some(())
    }
    fn now_ns(&self) -> u64 {
        *self.clock.lock()
    }
    fn advance_ns(&self, ns: u64) {
        *self.clock.lock() += ns;
    }
}

#[test]
fn a_held_cpus_interrupt_waits_for_the_holders_scheduling_point() {
    let exec = Exec::new(2);
    let code = Recorder::default();
    let reboot = Task {
        cpu: 0,
        pid: 412,
        comm: "reboot".into(),
    };
    exec.hold_cpu(0, reboot.clone());
    exec.raise_irq(0, Irq::Line(34));
    // CPU 0's own scheduling loop does not take it: the reboot task is running there.
    for _ in 0..3 {
        exec.cpu_step(0, &code).expect("no crash");
    }
    assert!(code.taken.lock().is_empty());
    assert_eq!(exec.stats(0).hardirqs, 0);
    // The holder's next scheduling point takes it, on top of the holder.
    exec.interrupt_point(0, &reboot, true, &code)
        .expect("no crash");
    assert_eq!(*code.taken.lock(), [(34, "reboot".to_string())]);
    // Released, the CPU's own loop takes its interrupts again, on top of whatever runs there.
    exec.release_cpu(0);
    exec.raise_irq(0, Irq::Line(35));
    exec.cpu_step(0, &code).expect("no crash");
    assert_eq!(code.taken.lock()[1], (35, "swapper/0".to_string()));
    assert_eq!(exec.stats(0).hardirqs, 2);
}
