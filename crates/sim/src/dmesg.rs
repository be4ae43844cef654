//! The kernel log as `dmesg` shows it, and the arm64 Oops/panic report.
//!
//! [`Dmesg`] implements [`klog::Printk`] on a simulated clock: lines print as
//! `[    1.234567] text` (Linux's `[%5lu.%06lu]`), or bare when timestamps are switched off.
//! [`Dmesg::panic`] prints an [`OopsReport`] the way the seed log shows it and then stops the log: the
//! simulated kernel is dead, later printk calls are dropped and [`Dmesg::stopped`] tells the
//! scenario so.

mod console;

pub use console::{ConsoleOwner, ContextSource};

use console::LogBuf;
use klog::{Level, Printk, Record};
use smmu_addr::PageSize;
use smmu_sync::atomic::{AtomicBool, AtomicU64, Ordering};
use smmu_sync::Mutex;

/// arm64 PAGE_SIZE: faults below it are reported as NULL pointer dereferences.
const PAGE_SIZE: u64 = PageSize::SZ_4K.bytes();

/// The kernel log with a simulated clock, and the console it is written to ([`console`]).
pub struct Dmesg {
    clock_ns: AtomicU64,
    timestamps: AtomicBool,
    stopped: AtomicBool,
    buf: Mutex<LogBuf>,
    /// Serial console speed in baud (0: no console). A record costs its characters' time on
    /// the wire in the context that holds the console when it is written ([`console`]).
    console_baud: AtomicU64,
    /// Where a printk runs (the execution model), for the console owner.
    context_of: Mutex<Option<ContextSource>>,
}

impl std::fmt::Debug for Dmesg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dmesg")
            .field("clock_ns", &self.clock_ns)
            .field("stopped", &self.stopped)
            .field("buf", &*self.buf.lock())
            .field("console_baud", &self.console_baud)
            .finish_non_exhaustive()
    }
}

impl Default for Dmesg {
    fn default() -> Self {
        Dmesg {
            clock_ns: AtomicU64::new(0),
            timestamps: AtomicBool::new(true),
            stopped: AtomicBool::new(false),
            buf: Mutex::new(LogBuf::default()),
            console_baud: AtomicU64::new(0),
            context_of: Mutex::new(None),
        }
    }
}

/// The log's state at one moment ([`Dmesg::snapshot`]): the clock, the switches, the records
/// and the console's position and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmesgSnapshot {
    clock_ns: u64,
    timestamps: bool,
    stopped: bool,
    buf: LogBuf,
    console_baud: u64,
}

impl Dmesg {
    /// The clock, the lines and the switches now (for the booted-machine snapshot).
    pub fn snapshot(&self) -> DmesgSnapshot {
        DmesgSnapshot {
            clock_ns: self.clock_ns.load(Ordering::SeqCst),
            timestamps: self.timestamps.load(Ordering::SeqCst),
            stopped: self.stopped.load(Ordering::SeqCst),
            buf: self.buf.lock().clone(),
            console_baud: self.console_baud.load(Ordering::SeqCst),
        }
    }

    /// Put the log back to `s`: later lines are forgotten, the clock goes back.
    pub fn restore(&self, s: &DmesgSnapshot) {
        self.clock_ns.store(s.clock_ns, Ordering::SeqCst);
        self.timestamps.store(s.timestamps, Ordering::SeqCst);
        self.stopped.store(s.stopped, Ordering::SeqCst);
        self.buf.lock().clone_from(&s.buf);
        self.console_baud.store(s.console_baud, Ordering::SeqCst);
    }
}

/// Characters the console prints around a record's text: the `[%5lu.%06lu] ` time prefix (15)
/// and CR LF (2).
pub const CONSOLE_FRAMING_CHARS: u64 = 15 + 2;

/// Time a printk line of `len` characters takes on a serial console at `baud` (8N1: 10 bits a
/// character, [`CONSOLE_FRAMING_CHARS`] included); 0 for no console (`baud` 0).
pub fn console_line_ns(len: usize, baud: u64) -> u64 {
    if baud == 0 {
        return 0;
    }
    (len as u64 + CONSOLE_FRAMING_CHARS) * 10 * 1_000_000_000 / baud
}

/// Format one record as dmesg does.
pub fn format_record(r: &Record, timestamps: bool) -> String {
    if timestamps {
        let s = r.time_ns / 1_000_000_000;
        let us = (r.time_ns % 1_000_000_000) / 1000;
        format!("[{s:5}.{us:06}] {}", r.line)
    } else {
        r.line.clone()
    }
}

impl Dmesg {
    /// An empty log at time 0 with timestamps on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Advance the simulated clock.
    pub fn advance_ns(&self, ns: u64) {
        self.clock_ns.fetch_add(ns, Ordering::SeqCst);
    }

    /// Write every line to a serial console at `baud` (8N1: 10 bits a character; the line, its
    /// `[ seconds.micros] ` prefix and CR LF); 0 switches the console off.
    pub fn set_console_baud(&self, baud: u64) {
        self.console_baud.store(baud, Ordering::SeqCst);
    }

    /// Switch the `[ seconds.micros]` prefix on or off.
    pub fn set_timestamps(&self, on: bool) {
        self.timestamps.store(on, Ordering::SeqCst);
    }

    /// Every record kept so far.
    pub fn records(&self) -> Vec<Record> {
        self.buf.lock().records.clone()
    }

    /// Every line, formatted.
    pub fn lines(&self) -> Vec<String> {
        let ts = self.timestamps.load(Ordering::SeqCst);
        self.buf
            .lock()
            .records
            .iter()
            .map(|r| format_record(r, ts))
            .collect()
    }

    /// The whole log, one line per record.
    pub fn text(&self) -> String {
        let mut s = self.lines().join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    }

    /// Whether the kernel has panicked (the log accepts no more lines).
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Print an Oops report followed by the fatal-exception panic, then stop the log. Only the
    /// first panic prints; returns false if the kernel was already stopped. The report's lines
    /// are stored at the moment of the crash; `console_flush_on_panic` then writes every record
    /// not yet written (those an interrupted console holder had left, and the report's), so
    /// the clock moves by their console time.
    pub fn panic(&self, oops: &OopsReport) -> bool {
        let mut g = self.buf.lock();
        if self.stopped.swap(true, Ordering::SeqCst) {
            return false;
        }
        let t = self.clock_ns.load(Ordering::SeqCst);
        for (level, line) in oops.lines() {
            g.records.push(Record {
                time_ns: t,
                level,
                line,
            });
        }
        let ns = Self::flush_on_panic(&mut g, self.console_baud.load(Ordering::SeqCst));
        drop(g);
        self.advance_ns(ns);
        true
    }
}

impl Printk for Dmesg {
    /// `vprintk_emit`: store the record at the current time, then write the console if this
    /// context gets it ([`console`]).
    fn printk(&self, level: Level, line: &str) {
        {
            let mut g = self.buf.lock();
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            g.records.push(Record {
                time_ns: self.clock_ns.load(Ordering::SeqCst),
                level,
                line: line.to_string(),
            });
        }
        self.try_print();
    }

    fn now_ns(&self) -> u64 {
        self.clock_ns.load(Ordering::SeqCst)
    }
}

/// The task an Oops happened in (`CPU: … PID: … Comm: …` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// CPU number.
    pub cpu: u32,
    /// PID.
    pub pid: u32,
    /// Task name (`comm`).
    pub comm: String,
    /// Taint text, `Not tainted` for a clean kernel.
    pub taint: String,
    /// `uname -r`.
    pub release: String,
    /// Build number as printed, e.g. `#1930`.
    pub version: String,
}

impl TaskInfo {
    /// `task` on CPU `cpu` of kernel `build`, not tainted.
    pub fn of(build: &crate::builds::KernelBuild, cpu: u32, pid: u32, comm: &str) -> Self {
        TaskInfo {
            cpu,
            pid,
            comm: comm.into(),
            taint: "Not tainted".into(),
            release: build.release.into(),
            version: build.version.into(),
        }
    }

    /// `dump_stack`'s first line (`dump_stack_print_info`): CPU, PID, comm, ` Kdump: loaded`
    /// when a crash kernel is loaded, taint, release and build (v6.1/v6.2 print no `UID:`).
    pub fn cpu_line(&self, kdump_loaded: bool) -> String {
        format!(
            "CPU: {} PID: {} Comm: {}{} {} {} {}",
            self.cpu,
            self.pid,
            self.comm,
            if kdump_loaded { " Kdump: loaded" } else { "" },
            self.taint,
            self.release,
            self.version
        )
    }

    /// The seed's kernel: `6.1.0-rc5-00088-gf3600ff8e322 #1930`, not tainted.
    pub fn seed(cpu: u32, pid: u32, comm: &str) -> Self {
        TaskInfo {
            cpu,
            pid,
            comm: comm.into(),
            taint: "Not tainted".into(),
            release: "6.1.0-rc5-00088-gf3600ff8e322".into(),
            version: "#1930".into(),
        }
    }
}

/// A kernel data abort, as arm64's `die()` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OopsReport {
    /// Faulting virtual address (a kernel virtual address, not an IOVA or a physical address,
    /// hence a plain `u64`).
    pub fault_addr: u64,
    /// The `CPU:` line's task; `None` leaves the line out (as the seed's second report, which
    /// was trimmed by its reporter, shows).
    pub task: Option<TaskInfo>,
    /// `Hardware name:` value, e.g. `Kontron KBox A-230-LS (DT)`; `None` leaves it out.
    pub hardware_name: Option<String>,
    /// `pc` as `symbol+off/size`.
    pub pc: String,
    /// `lr` as `symbol+off/size`.
    pub lr: String,
    /// Call trace frames, innermost first.
    pub call_trace: Vec<String>,
    /// The four instruction words before pc and the one at pc.
    pub code: [u32; 5],
    /// Whether the fault happened in interrupt context (softirq/bh-disabled): selects
    /// "Fatal exception in interrupt" over "Fatal exception".
    pub in_interrupt: bool,
}

impl OopsReport {
    /// The report of the IOMMU core's simulated NULL-group dereference, raised in softirq or
    /// a kworker (both "in interrupt" for the panic message, as in the seed).
    pub fn from_core(
        o: &iommu::Oops,
        task: Option<TaskInfo>,
        hardware_name: Option<String>,
    ) -> OopsReport {
        let words = o
            .code
            .split_whitespace()
            .filter_map(|w| u32::from_str_radix(w.trim_matches(|c| c == '(' || c == ')'), 16).ok());
        let mut code = [0u32; 5];
        for (slot, w) in code.iter_mut().zip(words) {
            *slot = w;
        }
        OopsReport {
            fault_addr: o.fault_addr,
            task,
            hardware_name,
            pc: o.pc.clone(),
            lr: o.lr.clone(),
            call_trace: o.call_trace.clone(),
            code,
            in_interrupt: true,
        }
    }

    /// The panic message.
    pub fn panic_message(&self) -> String {
        if self.in_interrupt {
            "Oops: Fatal exception in interrupt".into()
        } else {
            "Oops: Fatal exception".into()
        }
    }

    /// Every line of the report with its printk level.
    pub fn lines(&self) -> Vec<(Level, String)> {
        let mut v = Vec::new();
        let what = if self.fault_addr < PAGE_SIZE {
            "NULL pointer dereference"
        } else {
            "paging request"
        };
        v.push((
            Level::Alert,
            format!(
                "Unable to handle kernel {what} at virtual address {:016x}",
                self.fault_addr
            ),
        ));
        if let Some(t) = &self.task {
            v.push((Level::Emerg, t.cpu_line(false)));
        }
        if let Some(h) = &self.hardware_name {
            v.push((Level::Emerg, format!("Hardware name: {h}")));
        }
        v.push((Level::Emerg, format!("pc : {}", self.pc)));
        v.push((Level::Emerg, format!("lr : {}", self.lr)));
        v.push((Level::Emerg, "Call trace:".into()));
        for f in &self.call_trace {
            v.push((Level::Emerg, f.clone()));
        }
        let [a, b, c, d, e] = self.code;
        v.push((
            Level::Emerg,
            format!("Code: {a:08x} {b:08x} {c:08x} {d:08x} ({e:08x})"),
        ));
        v.push((Level::Emerg, "---[ end trace 0000000000000000 ]---".into()));
        let msg = self.panic_message();
        v.push((Level::Emerg, format!("Kernel panic - not syncing: {msg}")));
        v.push((
            Level::Emerg,
            format!("---[ end Kernel panic - not syncing: {msg} ]---"),
        ));
        v
    }
}

/// The seed's two Oops reports as data, so a scenario can raise exactly what the seed shows.
/// The IOMMU core supplies the faulting frames (`iommu::Oops`); the frames below the DMA API are
/// the NIC driver's and the kernel's, listed here once.
pub mod seed {
    use super::{OopsReport, TaskInfo};
    use iommu::OopsPath;

    /// `pc` of both seed reports.
    pub const PC: &str = iommu::OOPS_PC;

    /// Frames below `dma_map_page_attrs` in the first report: an MLD report sent by the
    /// `mld_ifc_work` kworker.
    pub const MLD_XMIT_FRAMES: &[&str] = &[
        "enetc_start_xmit+0x14c/0x10b0",
        "enetc_xmit+0x60/0xdc",
        "dev_hard_start_xmit+0xb8/0x210",
        "sch_direct_xmit+0x11c/0x420",
        "__dev_queue_xmit+0x354/0xb20",
        "ip6_finish_output2+0x280/0x5b0",
        "__ip6_finish_output+0x15c/0x270",
        "ip6_output+0x78/0x15c",
        "NF_HOOK.constprop.0+0x50/0xd0",
        "mld_sendpack+0x1bc/0x320",
        "mld_ifc_work+0x1d8/0x4dc",
        "process_one_work+0x1e8/0x460",
        "worker_thread+0x178/0x534",
        "kthread+0xe0/0xe4",
        "ret_from_fork+0x10/0x20",
    ];

    /// Frames below `dma_unmap_page_attrs` in the second report: NAPI TX completion in
    /// `ksoftirqd`.
    pub const POLL_UNMAP_FRAMES: &[&str] = &[
        "enetc_unmap_tx_buff.isra.0+0x6c/0x80",
        "enetc_poll+0x170/0x910",
        "__napi_poll+0x40/0x1e0",
        "net_rx_action+0x164/0x37c",
        "__do_softirq+0x128/0x368",
        "run_ksoftirqd+0x68/0x90",
        "smpboot_thread_fn+0x14c/0x190",
    ];

    fn report(path: OopsPath, below: &[&str]) -> OopsReport {
        // The seed's two reports come from two builds (0x98 and 0xa8).
        let build = match path {
            OopsPath::MapPage => crate::builds::SEED_1930,
            OopsPath::UnmapPage => crate::builds::SEED_A8,
        };
        let o = iommu::Oops::null_group(path, build.group_default_domain_offset);
        let words: Vec<u32> = o
            .code
            .split_whitespace()
            .filter_map(|w| u32::from_str_radix(w.trim_matches(|c| c == '(' || c == ')'), 16).ok())
            .collect();
        let mut code = [0u32; 5];
        for (slot, w) in code.iter_mut().zip(words) {
            *slot = w;
        }
        OopsReport {
            fault_addr: o.fault_addr,
            task: None,
            hardware_name: None,
            pc: o.pc,
            lr: o.lr,
            call_trace: o
                .call_trace
                .into_iter()
                .chain(below.iter().map(|s| s.to_string()))
                .collect(),
            code,
            in_interrupt: true,
        }
    }

    /// First manifestation: `kworker/0:1` (PID 23, CPU 0) sending an MLD report through
    /// `enetc_start_xmit` → `dma_map_page_attrs` finds the group gone; fault at 0x98.
    pub fn oops_map_path(hardware_name: &str) -> OopsReport {
        OopsReport {
            task: Some(TaskInfo::seed(0, 23, "kworker/0:1")),
            hardware_name: Some(hardware_name.into()),
            ..report(OopsPath::MapPage, MLD_XMIT_FRAMES)
        }
    }

    /// Second manifestation: NAPI TX completion in `ksoftirqd` unmapping through
    /// `dma_unmap_page_attrs`; fault at 0xa8. The seed's copy has no CPU/Hardware lines, so
    /// `task` and `hardware_name` are `None`; set them to print the full header.
    pub fn oops_unmap_path() -> OopsReport {
        report(OopsPath::UnmapPage, POLL_UNMAP_FRAMES)
    }
}
