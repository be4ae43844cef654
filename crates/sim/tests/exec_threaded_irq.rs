//! A threaded interrupt (`request_threaded_irq(irq, NULL, thread_fn, IRQF_ONESHOT, name)`, as
//! arm-smmu-v3 requests its event queue's): the hardirq only wakes the line's irq thread and
//! leaves the line masked; the thread, `irq/NN-name` (a SCHED_FIFO kthread), runs before the
//! CPU's normal kthreads, and unmasks the line when its function returns.

use sim::exec::{Code, Context, Exec, Irq, Task};
use smmu_sync::Mutex;

/// Records what ran: hardirq handlers, irq-thread functions, works.
#[derive(Default)]
struct Recorder {
    ran: Mutex<Vec<String>>,
}

impl Code for Recorder {
    fn hardirq(&self, _: &Exec, line: u32, ctx: &Context) {
        self.ran
            .lock()
            .push(format!("hardirq {line} on {}", ctx.task().comm));
    }
    fn irq_thread(&self, _: &Exec, line: u32, ctx: &Context) -> Option<()> {
        let Context::IrqThread(t) = ctx else {
            panic!("a thread function outside its thread: {ctx:?}");
        };
        self.ran.lock().push(format!(
            "thread {line} in {}/{} on CPU {}",
            t.comm, t.pid, t.cpu
        ));
        Some(())
    }
    fn napi_poll(&self, _: &Exec, _: u32, _: usize, _: &Context) -> Option<usize> {
        Some(0)
    }
    fn run_work(&self, _: &Exec, work: u32, ctx: &Context) -> Option<()> {
        self.ran
            .lock()
            .push(format!("work {work} in {}", ctx.task().comm));
        Some(())
    }
    fn now_ns(&self) -> u64 {
        0
    }
    fn advance_ns(&self, _: u64) {}
}

#[test]
fn the_hardirq_wakes_the_thread_which_runs_first_and_unmasks_the_line() {
    let exec = Exec::new(2);
    let code = Recorder::default();
    let evtq = exec.request_threaded_irq(77, "arm-smmu-v3-evtq");
    // TASK_COMM_LEN: the name is cut to 15 characters, as `Comm:` prints it.
    assert_eq!(
        evtq,
        Task {
            cpu: 0,
            pid: 60,
            comm: "irq/77-arm-smmu".into()
        }
    );
    exec.raise_irq(0, Irq::Line(77));
    exec.raise_irq(0, Irq::Line(33));
    exec.wake_work(0, 5);
    // The threaded line's hardirq runs no handler of the driver's: it wakes the thread.
    exec.cpu_step(0, &code).unwrap();
    assert_eq!(exec.stats(0).hardirqs, 1);
    assert!(code.ran.lock().is_empty());
    // ONESHOT: the line stays masked until the thread ran; another edge waits.
    exec.raise_irq(0, Irq::Line(77));
    // A plain line is still taken first (interrupts come before any task).
    exec.cpu_step(0, &code).unwrap();
    // Then the irq thread, before the kworker (SCHED_FIFO over CFS).
    exec.cpu_step(0, &code).unwrap();
    assert_eq!(exec.stats(0).hardirqs, 2);
    // Unmasked: the edge that waited is taken, and wakes the thread again.
    exec.cpu_step(0, &code).unwrap();
    exec.cpu_step(0, &code).unwrap();
    exec.cpu_step(0, &code).unwrap();
    assert_eq!(
        *code.ran.lock(),
        [
            "hardirq 33 on kworker/0:1",
            "thread 77 in irq/77-arm-smmu/60 on CPU 0",
            "thread 77 in irq/77-arm-smmu/60 on CPU 0",
            "work 5 in kworker/0:1",
        ]
    );
    let s = exec.stats(0);
    assert_eq!((s.hardirqs, s.irq_threads, s.works), (3, 2, 1));
}

#[test]
fn a_held_cpus_irq_thread_waits_for_the_holder_to_let_go() {
    // PREEMPT_NONE: the woken thread does not preempt the task holding the CPU.
    let exec = Exec::new(1);
    let code = Recorder::default();
    exec.request_threaded_irq(77, "arm-smmu-v3-evtq");
    let reboot = Task {
        cpu: 0,
        pid: 412,
        comm: "reboot".into(),
    };
    exec.hold_cpu(0, reboot.clone());
    exec.raise_irq(0, Irq::Line(77));
    exec.interrupt_point(0, &reboot, true, &code).unwrap();
    assert_eq!(exec.stats(0).hardirqs, 1);
    for _ in 0..3 {
        exec.cpu_step(0, &code).unwrap();
    }
    assert!(code.ran.lock().is_empty());
    exec.release_cpu(0);
    exec.cpu_step(0, &code).unwrap();
    assert_eq!(
        *code.ran.lock(),
        ["thread 77 in irq/77-arm-smmu/60 on CPU 0"]
    );
}

#[test]
fn threads_are_numbered_in_request_order_and_a_second_request_is_the_same_thread() {
    let exec = Exec::new(1);
    let a = exec.request_threaded_irq(77, "arm-smmu-v3-evtq");
    let b = exec.request_threaded_irq(78, "arm-smmu-v3-priq");
    assert_eq!((a.pid, b.pid), (60, 61));
    assert_eq!(b.comm, "irq/78-arm-smmu");
    assert_eq!(exec.request_threaded_irq(77, "arm-smmu-v3-evtq"), a);
}
