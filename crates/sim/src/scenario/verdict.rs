//! How a run ended, and the properties checked against it.

use super::timeline::TimelineEvent;
use smmu_addr::PhysAddr;

/// The simulated oops, as the verdict reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OopsVerdict {
    /// `dma_map_page_attrs` or `dma_unmap_page_attrs`.
    pub dma_call: String,
    /// The driver frame that called it (`enetc_start_xmit`, `enetc_unmap_tx_buff.isra.0`).
    pub caller: String,
    /// The task (`kworker/0:1`, `ksoftirqd/0`).
    pub comm: String,
    /// The faulting virtual address (the build's offset of `default_domain`). A kernel virtual
    /// address, neither an IOVA nor a physical address: no `smmu_addr` type fits, so a `u64`.
    pub fault_addr: u64,
    /// The PID of the task.
    pub pid: u32,
    /// The CPU.
    pub cpu: u32,
}

/// The execution model that ran the machine: it decides which of the verdict's measurements
/// exist. A field the model does not measure stays zero and is not printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionModel {
    /// [`crate::exec`]'s CPUs, GIC, softirq and NAPI with the NIC drivers on them (both the
    /// SMMUv2 and the SMMUv3 reboot machines): measures the NIC's DMA aborts, the transactions
    /// Bus Master Enable held back, how CPU 0 ran and where the reboot task ran. (The SMMUv3
    /// race's former single network actor, `network-actor`, is gone.)
    #[default]
    ExecContexts,
}

impl ExecutionModel {
    /// Whether the run measured what the NIC saw (its DMA aborts, a stopped TX ring, and the
    /// transactions Bus Master Enable held back).
    pub fn measures_nic(self) -> bool {
        self == ExecutionModel::ExecContexts
    }

    /// Whether the run measured how CPU 0 ran (hardirqs, softirqs, work items) and which CPU
    /// the reboot task ran on.
    pub fn measures_cpus(self) -> bool {
        self == ExecutionModel::ExecContexts
    }
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Verdict {
    /// The kernel behaviour's name.
    pub kernel: String,
    /// The execution model that produced the run (which measurements below exist).
    pub execution: ExecutionModel,
    /// The simulated kernel crashed.
    pub oops: Option<OopsVerdict>,
    /// DMA that bypassed translation after shutdown and landed at the DMA address used as a
    /// physical address.
    pub stray_dma_writes: u64,
    /// Untranslated reads.
    pub stray_dma_reads: u64,
    /// Where the first stray writes landed (in JSON an array of integers, as docs/json.md says:
    /// `smmu-addr`'s serde feature writes an address as its number).
    pub stray_write_addrs: Vec<PhysAddr>,
    /// Translated DMA into memory the mapping does not own.
    pub foreign_dma: u64,
    /// DMA translated by a freed domain's page tables or TLB entries (the bank's context epoch
    /// the model reports for the translation had been retired when the domain was freed).
    pub freed_domain_dma: u64,
    /// Receive writes completed by the NIC whose data the CPU did not find.
    pub lost_writes: u64,
    /// Transactions the SMMU terminated.
    pub blocked_transactions: u64,
    /// DMA transactions the masters issued (translated, bypassing or blocked). Zero means the
    /// run exercised no DMA property: nothing was there to violate them.
    pub dma_transactions: u64,
    /// `Blocked unknown Stream ID` / `Unexpected global fault` reports.
    pub global_faults_logged: u64,
    /// `Unhandled context fault` reports.
    pub context_faults_logged: u64,
    /// Echo requests received plus frames sent.
    pub packets_delivered: u64,
    /// Frames the NIC or its driver dropped.
    pub packets_dropped: u64,
    /// DMA-API calls that used a domain freed by a concurrent release (Linux-faithful core;
    /// the first is printed as a KASAN report).
    pub use_after_free: u64,
    /// What the flooded NIC saw of its blocked transactions (the cost of blocking to the
    /// device): aborted TX and RX DMA, a stalled transmit ring.
    pub nic_errors: crate::enetc::DeviceErrors,
    /// The flooded functions' MSI writes that raised no interrupt (blocked by the SMMU, or
    /// translated somewhere other than the ITS doorbell). `None` when the machine has no
    /// flooded function.
    pub msis_lost: Option<u64>,
    /// Transactions the NIC did not issue because its Bus Master Enable was clear.
    pub bme_suppressed: u64,
    /// Of the stray transactions, those issued before the NIC's Bus Master Enable was cleared
    /// and completed after (in flight at the clear). None is issued after it.
    pub stray_in_flight_at_bme_clear: u64,
    /// How CPU 0 ran the network: hardirqs, softirqs on irq exit and in ksoftirqd, work items.
    pub cpu0: crate::exec::CpuStats,
    /// The CPU the task that typed the command ran on.
    pub trigger_cpu: u32,
    /// The kernel build (`uname -r` and build number).
    pub build: String,
    /// The DMA core (`linux` or `safe`).
    pub dma_core: String,
    /// Simulated time from `reboot -f` to the end (restart, new kernel, or panic).
    pub shutdown_time_ns: u64,
    /// The trigger finished (the machine restarted / the new kernel started / unbind returned).
    pub completed: bool,
    /// SMMU probes that failed in the kernel kexec or crash kexec started (a kdump kernel
    /// before 3f54c447df34 refuses an SMMU it finds enabled); 0 on SMMUv2 machines.
    pub smmu_probe_failures: u64,
}

/// A checked property of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Property {
    /// The simulated kernel did not oops (`no-oops`).
    NoOops,
    /// No DMA bypassed translation (`no-stray-dma`).
    NoStrayDma,
    /// No DMA reached memory its mapping does not own (`no-foreign-dma`).
    NoForeignDma,
    /// Every completed receive write is where the CPU looks (`no-lost-write`).
    NoLostWrite,
    /// No DMA is translated by a freed domain's tables or TLB entries
    /// (`no-dma-through-freed-domain`).
    NoDmaThroughFreedDomain,
    /// The SMMU faulted nothing at all (`no-fault`, not checked by default).
    NoFault,
    /// No DMA-API call used a freed group or domain (`no-use-after-free`).
    NoUseAfterFree,
    /// Every SMMU probe of the next kernel (kexec, kdump) succeeded (`smmu-probed`).
    SmmuProbed,
}

impl Property {
    /// Every property.
    pub const ALL: [Property; 8] = [
        Property::NoOops,
        Property::NoStrayDma,
        Property::NoForeignDma,
        Property::NoLostWrite,
        Property::NoDmaThroughFreedDomain,
        Property::NoFault,
        Property::NoUseAfterFree,
        Property::SmmuProbed,
    ];

    /// Checked unless asked otherwise: all but no-fault and smmu-probed.
    pub const DEFAULT: [Property; 6] = [
        Property::NoOops,
        Property::NoStrayDma,
        Property::NoForeignDma,
        Property::NoLostWrite,
        Property::NoDmaThroughFreedDomain,
        Property::NoUseAfterFree,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Property::NoOops => "no-oops",
            Property::NoStrayDma => "no-stray-dma",
            Property::NoForeignDma => "no-foreign-dma",
            Property::NoLostWrite => "no-lost-write",
            Property::NoDmaThroughFreedDomain => "no-dma-through-freed-domain",
            Property::NoFault => "no-fault",
            Property::NoUseAfterFree => "no-use-after-free",
            Property::SmmuProbed => "smmu-probed",
        }
    }

    /// Parse a command-line name.
    pub fn from_name(s: &str) -> Option<Property> {
        Property::ALL.into_iter().find(|p| p.name() == s)
    }

    /// Whether `v` violates this property.
    pub fn violated_by(self, v: &Verdict) -> bool {
        match self {
            Property::NoOops => v.oops.is_some(),
            Property::NoStrayDma => v.stray_dma_writes + v.stray_dma_reads > 0,
            Property::NoForeignDma => v.foreign_dma > 0,
            Property::NoLostWrite => v.lost_writes > 0,
            Property::NoDmaThroughFreedDomain => v.freed_domain_dma > 0,
            Property::NoFault => {
                v.blocked_transactions + v.global_faults_logged + v.context_faults_logged > 0
            }
            Property::NoUseAfterFree => v.use_after_free > 0,
            Property::SmmuProbed => v.smmu_probe_failures > 0,
        }
    }
}

/// A run's log, verdict and timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebootOutcome {
    /// The kernel log, dmesg style.
    pub log: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What each actor did from the moment the actors started.
    pub timeline: Vec<TimelineEvent>,
    /// The MMIO log ([`crate::mmio_log`]), when the configuration asked for one.
    pub mmio_log: Option<String>,
}

/// FNV-1a of a run's log and verdict: equal hashes mean byte-identical runs.
pub fn outcome_hash(o: &RebootOutcome) -> u64 {
    // The execution model follows from the machine, which the log already shows (an SMMUv2 or
    // an SMMUv3 boot); it is left out so that hashes taken before the field existed still
    // identify the same runs.
    // So is a zero `smmu_probe_failures` (runs before the field existed had none), and a zero
    // count of irq-thread runs (`CpuStats::irq_threads`, likewise).
    // The stray write addresses are hashed as the numbers they were before they were typed
    // (`[4294955008]`, not `[PhysAddr(0xffffd000)]`), for the same reason.
    let typed = format!("stray_write_addrs: {:?}", o.verdict.stray_write_addrs);
    let numbers: Vec<u64> = o
        .verdict
        .stray_write_addrs
        .iter()
        .map(|a| a.as_u64())
        .collect();
    let verdict = format!("{:?}", o.verdict)
        .replacen(&format!("execution: {:?}, ", o.verdict.execution), "", 1)
        .replacen(", smmu_probe_failures: 0 }", " }", 1)
        .replace(", irq_threads: 0 }", " }")
        .replacen(&typed, &format!("stray_write_addrs: {numbers:?}"), 1);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in o.log.bytes().chain(verdict.into_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The outcome classes of a run, for `explore --stats`: which manifestation of the seed's bug
/// it showed (and in which task), how many `Blocked unknown Stream ID` reports came before the
/// Oops, whether a use-after-free or stray DMA happened, or that it was clean.
pub fn classify(o: &RebootOutcome) -> Vec<String> {
    let v = &o.verdict;
    let mut c = Vec::new();
    let lines: Vec<&str> = o.log.lines().collect();
    let end = lines
        .iter()
        .position(|l| l.contains("Unable to handle kernel"))
        .unwrap_or(lines.len());
    let before = &lines[..end];
    let usf = before
        .iter()
        .filter(|l| l.contains("Blocked unknown Stream ID"))
        .count();
    let removals = before
        .iter()
        .filter(|l| l.contains("Removing from iommu group"))
        .count();
    if let Some(x) = &v.oops {
        let path = if x.dma_call.starts_with("dma_unmap") {
            "unmap-path"
        } else {
            "map-path"
        };
        c.push(format!("{path} Oops"));
        c.push(format!("{path} Oops in {} from {}", x.comm, x.caller));
        c.push(format!("{path} Oops on CPU {}", x.cpu));
        c.push(format!(
            "{path} Oops after {removals} removal lines and {usf} USF reports"
        ));
    }
    c.push(format!("USF reports before the end or the Oops: {usf}"));
    c.extend(seed_shapes(v, removals, usf, &lines));
    // Work of the network on CPU 1 during the shutdown: an ENETC vector's MSI taken there.
    if o.timeline
        .iter()
        .any(|e| e.text.starts_with("hardirq on CPU 1:"))
    {
        c.push("ENETC interrupt taken on CPU 1 during the shutdown".into());
    }
    if o.verdict.trigger_cpu == 1 {
        c.push("reboot task on CPU 1".into());
    }
    if v.use_after_free > 0 {
        c.push("use-after-free".into());
    }
    let stray = v.stray_dma_writes + v.stray_dma_reads;
    if stray > 0 {
        c.push("stray DMA".into());
        if v.stray_in_flight_at_bme_clear > 0 {
            c.push("stray DMA issued before Bus Master Enable was cleared (in flight)".into());
        }
        if stray > v.stray_in_flight_at_bme_clear {
            c.push("stray DMA issued and completed with Bus Master Enable set".into());
        }
    }
    if v.oops.is_none()
        && v.use_after_free == 0
        && v.stray_dma_writes
            + v.stray_dma_reads
            + v.foreign_dma
            + v.lost_writes
            + v.freed_domain_dma
            == 0
    {
        c.push("clean".into());
    }
    c
}

/// The rows naming the seed's two manifestations by their shape, seed facts both: the first
/// report is the map path in the `mld_ifc_work` kworker (where in the removals is not logged);
/// the second is the transmit clean-up's unmap in `ksoftirqd` after the last removal line, with
/// four `Blocked unknown Stream ID` reports before it. `removals` and `usf` count the lines
/// before the Oops; every device added to a group at boot has printed its removal line when
/// `removals` equals the `Adding to iommu group` lines.
fn seed_shapes(v: &Verdict, removals: usize, usf: usize, lines: &[&str]) -> Vec<String> {
    let Some(x) = &v.oops else {
        return Vec::new();
    };
    let grouped = lines
        .iter()
        .filter(|l| l.contains("Adding to iommu group"))
        .count();
    let mut c = Vec::new();
    if x.dma_call.starts_with("dma_map") && x.comm.starts_with("kworker/") {
        c.push("seed's first shape: map-path Oops in a kworker (mld_ifc_work)".to_string());
    }
    if x.dma_call.starts_with("dma_unmap")
        && x.comm.starts_with("ksoftirqd/")
        && removals == grouped
        && grouped > 0
    {
        c.push("seed's second shape: unmap-path Oops in ksoftirqd after every removal line".into());
        if usf == 4 {
            c.push("seed's second shape with the seed's 4 USF reports before the Oops".to_string());
        }
    }
    c
}
