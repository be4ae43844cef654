//! printk's console ownership as v6.1 has it (`sim::dmesg`'s console): the context that gets
//! the console lock writes the pending records one by one, taking interrupts between them; a
//! printk that finds the console held only stores its record; panic flushes what is pending.
//! Every duration is exact: a record costs `console_line_ns` of its line at 115200 baud.

use klog::{Level, Printk};
use sim::dmesg::{console_line_ns, ConsoleOwner, Dmesg};
use sim::exec::{self, Code, Context, Exec, Irq, Task};
use sim::OopsReport;
use smmu_sync::atomic::{AtomicU32, Ordering};
use smmu_sync::{Arc, Mutex};

const BAUD: u64 = 115_200;
const REMOVAL: &str = "fsl_enetc 0000:00:00.2: Removing from iommu group 6";
const BLOCKED: &str = "arm-smmu 5000000.iommu: Blocked unknown Stream ID 0x429; boot with \"arm-smmu.disable_bypass=0\" to allow, but this may have security implications";
const GFSR: &str = "arm-smmu 5000000.iommu: \tGFSR 0x00000002, GFSYNR0 0x00000000, GFSYNR1 0x00000429, GFSYNR2 0x00000000";
/// The SMMU's global fault line (an SPI, routed to CPU 0).
const IRQ_SMMU: u32 = 32;

fn ns(line: &str) -> u64 {
    console_line_ns(line.len(), BAUD)
}

fn reboot_task() -> Task {
    Task {
        cpu: 0,
        pid: 412,
        comm: "reboot".into(),
    }
}

/// What the handler saw: the clock at its sGFSR read and at its write-back, the console owner
/// after its prints, and the records pending then.
type Handled = (u64, u64, Option<ConsoleOwner>, usize);

/// A CPU-0 machine whose only interrupt is an SMMU global fault handler shaped as arm-smmu's:
/// read sGFSR, print the two lines, write sGFSR back. It notes the clock at the read and at
/// the write-back, and the console owner the handler saw.
struct Machine {
    log: Arc<Dmesg>,
    exec: Arc<Exec>,
    sgfsr: AtomicU32,
    handled: Mutex<Vec<Handled>>,
    /// Panic after printing (the handler's Oops).
    panic_in_handler: bool,
}

impl Code for Machine {
    fn hardirq(&self, _: &Exec, line: u32, _: &Context) {
        assert_eq!(line, IRQ_SMMU);
        let read_at = self.log.now_ns();
        let g = self.sgfsr.load(Ordering::SeqCst);
        self.log.printk(Level::Err, BLOCKED);
        self.log.printk(Level::Err, GFSR);
        let owner = self.log.console_owner();
        let pending = self.log.console_pending();
        if self.panic_in_handler {
            self.log.panic(&sim::dmesg::seed::oops_unmap_path());
        }
        // Write-1-to-clear.
        self.sgfsr.fetch_and(!g, Ordering::SeqCst);
        self.handled
            .lock()
            .push((read_at, self.log.now_ns(), owner, pending));
    }
    fn napi_poll(&self, _: &Exec, _: u32, _: usize, _: &Context) -> Option<usize> {
        Some(0)
    }
    fn run_work(&self, _: &Exec, _: u32, _: &Context) -> Option<()> {
        Some(())
    }
    fn now_ns(&self) -> u64 {
        self.log.now_ns()
    }
    fn advance_ns(&self, ns: u64) {
        self.log.advance_ns(ns);
    }
}

/// The machine, with the calling thread as the reboot task holding CPU 0: its scheduling
/// points take CPU 0's interrupts, its `local_irq_save` masks them, and printk learns its
/// context from the execution model.
fn machine(panic_in_handler: bool) -> Arc<Machine> {
    let log = Arc::new(Dmesg::new());
    log.set_console_baud(BAUD);
    log.set_timestamps(false);
    let exec = Arc::new(Exec::new(2));
    let e = exec.clone();
    log.set_context_source(Arc::new(move || e.current_context()));
    let m = Arc::new(Machine {
        log,
        exec,
        sgfsr: AtomicU32::new(0),
        handled: Mutex::new(Vec::new()),
        panic_in_handler,
    });
    exec::set_task_cpu(Some(0));
    m.exec.hold_cpu(0, reboot_task());
    let hook_m = Arc::downgrade(&m);
    smmu_sync::set_interrupt_hook(Some(Arc::new(move || {
        if let Some(m) = hook_m.upgrade() {
            let _ = m.exec.interrupt_point(0, &reboot_task(), false, &*m);
        }
    })));
    let mask_m = Arc::downgrade(&m);
    smmu_sync::set_irq_mask_hook(Some(Arc::new(move |masked| {
        if let Some(m) = mask_m.upgrade() {
            if masked {
                m.exec.local_irq_save(0);
            } else {
                m.exec.local_irq_restore(0);
            }
        }
    })));
    m
}

fn leave() {
    smmu_sync::set_interrupt_hook(None);
    smmu_sync::set_irq_mask_hook(None);
    exec::set_task_cpu(None);
}

/// The SMMU records a USF and raises its line: the fault came in while the reboot task was
/// writing its removal line (interrupts off), so it is taken right after that record.
fn fault(m: &Machine) {
    m.sgfsr.store(0x2, Ordering::SeqCst);
    m.exec.raise_irq(0, Irq::Line(IRQ_SMMU));
}

#[test]
fn a_printk_with_the_console_free_writes_in_the_caller() {
    let m = machine(false);
    m.log.advance_ns(1_000);
    m.log.printk(Level::Info, REMOVAL);
    leave();
    // 51 characters + 17 of framing, 10 bits each at 115200 baud.
    assert_eq!(ns(REMOVAL), 5_902_777);
    assert_eq!(m.log.now_ns(), 1_000 + 5_902_777);
    assert_eq!(m.log.records()[0].time_ns, 1_000);
    assert_eq!((m.log.console_pending(), m.log.console_owner()), (0, None));
}

#[test]
fn a_hardirq_on_the_holders_cpu_only_stores_and_the_holder_writes_its_records_next() {
    let m = machine(false);
    fault(&m);
    m.log.printk(Level::Info, REMOVAL);
    m.log.printk(
        Level::Info,
        "fsl_enetc_mdio 0000:00:00.3: Removing from iommu group 8",
    );
    leave();
    let t_removal = ns(REMOVAL);
    // The handler ran after the removal line's record, saw the console held by the task it
    // interrupted, stored its two records and returned: no console time between its sGFSR
    // read and its write-back.
    let handled = m.handled.lock().clone();
    assert_eq!(
        handled,
        [(
            t_removal,
            t_removal,
            Some(ConsoleOwner {
                context: Some(Context::Process(reboot_task()))
            }),
            2
        )]
    );
    assert_eq!(m.sgfsr.load(Ordering::SeqCst), 0);
    // The reboot task wrote them next, in store order, stamped with their store time; then
    // its own next line.
    let recs: Vec<(u64, &str)> = m
        .log
        .records()
        .iter()
        .map(|r| (r.time_ns, &*r.line.clone().leak()))
        .collect();
    let after_pair = t_removal + ns(BLOCKED) + ns(GFSR);
    assert_eq!(
        recs,
        [
            (0, REMOVAL),
            (t_removal, BLOCKED),
            (t_removal, GFSR),
            (
                after_pair,
                "fsl_enetc_mdio 0000:00:00.3: Removing from iommu group 8"
            ),
        ]
    );
    assert_eq!((ns(BLOCKED), ns(GFSR)), (13_975_694, 10_156_250));
    assert_eq!(
        m.log.now_ns(),
        after_pair + ns("fsl_enetc_mdio 0000:00:00.3: Removing from iommu group 8")
    );
    assert_eq!((m.log.console_pending(), m.log.console_owner()), (0, None));
}

#[test]
fn a_hardirq_with_the_console_free_writes_its_lines_itself_between_read_and_write_back() {
    let m = machine(false);
    fault(&m);
    // An interrupt point of the reboot task outside printk (an MMIO access): nobody holds the
    // console, so the handler gets it, writes its two lines in hardirq (sGFSR held for their
    // console time) and releases it before its write-back.
    smmu_sync::sched_point(smmu_sync::Point::Mmio);
    leave();
    let handled = m.handled.lock().clone();
    assert_eq!(handled, [(0, ns(BLOCKED) + ns(GFSR), None, 0)]);
    let times: Vec<u64> = m.log.records().iter().map(|r| r.time_ns).collect();
    assert_eq!(times, [0, ns(BLOCKED)]);
}

#[test]
fn panic_flushes_the_records_the_interrupted_holder_had_not_written() {
    let m = machine(true);
    fault(&m);
    m.log.printk(Level::Info, REMOVAL);
    leave();
    // The handler stored its two lines (pending: the reboot task holds the console), then
    // the kernel died: console_flush_on_panic wrote them and the report, and the reboot task
    // wrote nothing more.
    let report_ns: u64 = sim::dmesg::seed::oops_unmap_path()
        .lines()
        .iter()
        .map(|(_, l)| ns(l))
        .sum();
    let t = ns(REMOVAL);
    let handled = m.handled.lock().clone();
    assert_eq!(handled.len(), 1);
    assert_eq!(handled[0].3, 2);
    assert_eq!(handled[0].1, t + ns(BLOCKED) + ns(GFSR) + report_ns);
    assert!(m.log.stopped());
    assert_eq!(m.log.now_ns(), t + ns(BLOCKED) + ns(GFSR) + report_ns);
    assert_eq!(m.log.console_pending(), 0);
    let recs = m.log.records();
    assert_eq!(
        recs.len(),
        3 + sim::dmesg::seed::oops_unmap_path().lines().len()
    );
    assert!(recs[3..].iter().all(|r| r.time_ns == t));
    // A printk after the panic is dropped.
    m.log.printk(Level::Info, "later");
    assert_eq!(m.log.records().len(), recs.len());
}

#[test]
fn a_log_with_no_console_costs_no_time_and_the_trait_sinks_keep_working() {
    let d = Dmesg::new();
    d.printk(Level::Info, REMOVAL);
    assert_eq!((d.now_ns(), d.console_pending()), (0, 0));
    let m = klog::MemLog::new();
    m.printk(Level::Info, REMOVAL);
    assert_eq!(m.lines(), [REMOVAL]);
    let _ = OopsReport::from_core;
}
