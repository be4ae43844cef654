//! What several commands share: the machine to simulate, kernel parameters, the JSON
//! envelope, and how a run is printed.

use crate::sim::scenario::{
    outcome_hash, DmaCore, KernelBehaviour, KernelParams, Property, RebootConfig, RebootOutcome,
    RebootScenario, Trigger, Verdict,
};
use crate::sim::Board;
use std::path::PathBuf;

/// Options that define the simulated machine (shared by run, explore, replay, demo).
#[derive(Debug, Clone, clap::Args)]
pub struct MachineArgs {
    /// Board device tree (.dtb); the built-in Kontron KBox A-230-LS (LS1028A) when absent.
    #[arg(long, value_name = "FILE.dtb")]
    pub dtb: Option<PathBuf>,
    /// Kernel command line, e.g. "arm-smmu.disable_bypass=0 iommu.strict=0".
    #[arg(long, value_name = "PARAMS", default_value = "")]
    pub cmdline: String,
    /// Print dmesg lines without the [seconds.micros] prefix.
    #[arg(long)]
    pub no_timestamps: bool,
    /// Echo requests the ping-flood peer sends.
    #[arg(long, value_name = "PACKETS", default_value_t = DEFAULT_FLOOD)]
    pub flood: u32,
    /// Most loop iterations of each simulated actor (every CPU, the NIC engine, each DMA engine):
    /// a bound that ends a run whose traffic would otherwise not end.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ACTOR_STEPS)]
    pub actor_steps: u32,
    /// Kernel build: 6.1-rc5-1930 (the seed's first report, default_domain at 0x98),
    /// 6.1-rc5-a8 (its second report, 0xa8) or 6.2. Default: 6.1-rc5-1930 for linux-6.1, 6.2
    /// for linux-6.2 and quiesce.
    #[arg(long, value_name = "NAME")]
    pub build: Option<String>,
    /// DMA core: linux (Linux's: a released group is a NULL dereference, a freed domain a
    /// use-after-free) or safe (smmu-lab's: DMA-API calls exclude a release).
    #[arg(long, value_name = "CORE", default_value = "linux")]
    pub dma_core: String,
    /// ENETC transmit ring size (descriptors; ENETC's default 2048).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RING)]
    pub tx_ring: usize,
    /// ENETC receive ring size (descriptors; ENETC's default 2048).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RING)]
    pub rx_ring: usize,
    /// Most echo requests per second the ping-flood peer sends, 100 to 1059322 (ping -f sends the
    /// next request when the reply comes back, and at least 100 a second; the top is gigabit line
    /// rate).
    #[arg(long, value_name = "PPS", default_value_t = DEFAULT_FLOOD_RATE)]
    pub flood_rate: u64,
    /// Run a generic DMA engine on this master too (repeatable; a device name such as
    /// 3200000.sata or 22c0000.dma-controller). Masters are idle otherwise.
    #[arg(long = "traffic", value_name = "DEVICE")]
    pub traffic: Vec<String>,
    /// Put an enumerated PCI function on the board (repeatable): [DOMAIN:]BUS:DEV.FN[=DRIVER],
    /// e.g. 00:01.0=e1000e on QEMU virt (stream ID from the host's iommu-map: 0x8). Its driver
    /// is the generic DMA engine, without .shutdown; add --traffic 0000:00:01.0 to run it.
    #[arg(long = "pci", value_name = "BDF[=DRIVER]")]
    pub pci: Vec<String>,
    /// SMMUv3 boards: what the SMMU does with DMA while SMMUEN = 0, as its GBPA resets
    /// (QEMU: bypass).
    #[arg(long, value_name = "bypass|abort", value_parser = ["bypass", "abort"], default_value = "bypass")]
    pub gbpa: String,
}

/// Default size of the flood: long enough to span the whole shutdown.
pub const DEFAULT_FLOOD: u32 = 10_000;
/// Default bound of each actor's loop (every CPU, the NIC engine, each DMA engine).
pub const DEFAULT_ACTOR_STEPS: u32 = 100_000;
/// ENETC's default ring size.
pub const DEFAULT_RING: usize = crate::sim::enetc::DEFAULT_RING_SIZE;
/// The peer's default rate cap.
pub const DEFAULT_FLOOD_RATE: u64 = 2_000;

impl MachineArgs {
    pub fn board(&self) -> Result<Board, String> {
        let mut b = load_board(self.dtb.as_deref())?;
        add_pci(&mut b, &self.pci)?;
        Ok(b)
    }

    pub fn params(&self) -> Result<KernelParams, String> {
        KernelParams::parse(&self.cmdline).map_err(|e| e.to_string())
    }

    /// The scenario configuration for one kernel behaviour.
    pub fn config(
        &self,
        trigger: Trigger,
        kernel: KernelBehaviour,
    ) -> Result<RebootConfig, String> {
        let mut c = RebootConfig::new(kernel, self.board()?);
        c.trigger = trigger;
        if let Some(b) = &self.build {
            c.build = crate::sim::builds::KernelBuild::preset(b).map_err(|e| e.to_string())?;
        }
        c.dma_core = DmaCore::from_name(&self.dma_core)
            .ok_or_else(|| format!("unknown DMA core '{}': choose linux or safe", self.dma_core))?;
        c.nic.tx_ring_size = self.tx_ring;
        c.nic.rx_ring_size = self.rx_ring;
        c.nic.flood_rate = self.flood_rate;
        c.cmdline = self.params()?;
        c.timestamps = !self.no_timestamps;
        if self.flood == 0 || self.actor_steps == 0 {
            return Err("--flood and --actor-steps must be at least 1".into());
        }
        c.nic.flood_packets = self.flood;
        c.max_actor_steps = self.actor_steps;
        for (i, t) in self.traffic.iter().enumerate() {
            if self.traffic[..i].contains(t) {
                return Err(format!("--traffic {t} is given twice"));
            }
        }
        c.traffic = self.traffic.clone();
        c.gbpa_abort = self.gbpa == "abort";
        if c.gbpa_abort && crate::sim::v3::smmuv3_index(&c.board).is_none() {
            return Err(
                "--gbpa abort: the board's SMMU is not an SMMUv3 (GBPA is a v3 register)".into(),
            );
        }
        c.check().map_err(|e| e.to_string())?;
        Ok(c)
    }

    /// The extra options a replay command needs to rebuild the same machine.
    pub fn replay_suffix(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.dtb {
            s.push_str(&format!(" --dtb {}", shell_quote(&d.display().to_string())));
        }
        if !self.cmdline.is_empty() {
            s.push_str(&format!(" --cmdline {}", shell_quote(&self.cmdline)));
        }
        if self.no_timestamps {
            s.push_str(" --no-timestamps");
        }
        if self.flood != DEFAULT_FLOOD {
            s.push_str(&format!(" --flood {}", self.flood));
        }
        if self.actor_steps != DEFAULT_ACTOR_STEPS {
            s.push_str(&format!(" --actor-steps {}", self.actor_steps));
        }
        for t in &self.traffic {
            s.push_str(&format!(" --traffic {}", shell_quote(t)));
        }
        if let Some(b) = &self.build {
            s.push_str(&format!(" --build {}", shell_quote(b)));
        }
        if self.dma_core != "linux" {
            s.push_str(&format!(" --dma-core {}", shell_quote(&self.dma_core)));
        }
        if self.tx_ring != DEFAULT_RING {
            s.push_str(&format!(" --tx-ring {}", self.tx_ring));
        }
        if self.rx_ring != DEFAULT_RING {
            s.push_str(&format!(" --rx-ring {}", self.rx_ring));
        }
        if self.flood_rate != DEFAULT_FLOOD_RATE {
            s.push_str(&format!(" --flood-rate {}", self.flood_rate));
        }
        for p in &self.pci {
            s.push_str(&format!(" --pci {}", shell_quote(p)));
        }
        if self.gbpa != "bypass" {
            s.push_str(&format!(" --gbpa {}", self.gbpa));
        }
        s
    }
}

/// Put the `--pci` functions on `board` (an unparsable or unplaceable one is an input error).
pub fn add_pci(board: &mut Board, pci: &[String]) -> Result<(), String> {
    for text in pci {
        let f: crate::sim::pci_enum::PciFunction =
            text.parse().map_err(|e| format!("--pci: {e}"))?;
        board
            .add_pci_function(&f)
            .map_err(|e| format!("--pci: {e}"))?;
    }
    Ok(())
}

pub fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=,:".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub fn load_board(dtb: Option<&std::path::Path>) -> Result<Board, String> {
    match dtb {
        None => Ok(crate::sim::kbox_a230_ls()),
        Some(p) => {
            let data = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Board::from_dtb(&data).map_err(|e| format!("{}: {e}", p.display()))
        }
    }
}

/// A `--kernel` value: one of today's behaviours by name, or a kernel spec (`v6.1`,
/// `v6.1+ce31e6ca68bd`, `v6.2-ce31e6ca68bd`) that one of them runs.
pub fn parse_kernel(s: &str) -> Result<KernelBehaviour, String> {
    if let Some(k) = KernelBehaviour::from_name(s) {
        return Ok(k);
    }
    if !(s.starts_with('v') || s.starts_with("current")) {
        return Err(format!(
            "unknown kernel '{s}': choose linux-6.1, linux-6.2 or quiesce, or a kernel spec such as v6.1+ce31e6ca68bd (smmu-lab kernel list)"
        ));
    }
    let spec = kernel_history::KernelSpec::parse(s).map_err(|e| e.to_string())?;
    scenario_file::today::behaviour(&spec).map_err(|e| format!("kernel {spec} cannot run yet: {e}"))
}

pub fn parse_trigger(s: &str) -> Result<Trigger, String> {
    Trigger::from_name(s).ok_or_else(|| {
        format!("unknown scenario '{s}': choose reboot, kexec, unbind or crash-kexec")
    })
}

pub fn parse_property(s: &str) -> Result<Property, String> {
    Property::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Property::ALL.iter().map(|p| p.name()).collect();
        format!("unknown property '{s}': choose {}", names.join(", "))
    })
}

/// Run the scenario once on the default schedule: a machine it cannot run on (no enabled SMMU,
/// an unknown traffic master, a driver that fails to bind) is an input error, named here.
pub fn check_scenario(scn: &std::sync::Arc<RebootScenario>) -> Result<(), String> {
    match explore::replay(
        scn.clone(),
        &explore::Schedule::default(),
        crate::run_cmd::MAX_STEPS,
    ) {
        Ok(rec) | Err(rec) => match rec.outcome {
            explore::RunResult::Completed(Err(e)) => Err(e.to_string()),
            _ => Ok(()),
        },
    }
}

pub fn scenario(config: RebootConfig, properties: &[Property]) -> RebootScenario {
    RebootScenario {
        config,
        properties: if properties.is_empty() {
            Property::DEFAULT.to_vec()
        } else {
            properties.to_vec()
        },
        boot_cache: Default::default(),
    }
}

/// Most runs one command may be asked for: a random or PCT exploration never exhausts, so a
/// larger budget would only run until interrupted.
pub const MAX_RUNS: u64 = 1_000_000_000;

/// Check a `--runs` budget (`exhausts`: the strategy stops by itself when its space is done).
pub fn check_runs(runs: u64, exhausts: bool) -> Result<(), String> {
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    if runs > MAX_RUNS && !exhausts {
        return Err(format!(
            "--runs {runs} is more than can ever finish (at most {MAX_RUNS}; random and pct never run out of schedules, dfs stops when its bounded space is exhausted)"
        ));
    }
    Ok(())
}

/// What a run in which no DMA happened tells (nothing about the DMA properties).
pub const NO_DMA: &str = "no DMA happened, so no property was exercised (this board has no flooded NIC; add --traffic DEVICE to run DMA on a master)";

/// The verdict as text, one fact a line.
pub fn verdict_text(v: &Verdict) -> String {
    let mut s = String::new();
    let oops = match &v.oops {
        Some(o) => format!(
            "yes: NULL dereference at {:#x} in iommu_get_dma_domain via {} from {} ({})",
            o.fault_addr, o.dma_call, o.caller, o.comm
        ),
        None => "no".into(),
    };
    let addrs: Vec<String> = v
        .stray_write_addrs
        .iter()
        .map(|a| format!("{a:#x}"))
        .collect();
    s.push_str(&format!(
        "verdict ({}, build {}, {} DMA core):\n",
        v.kernel, v.build, v.dma_core
    ));
    s.push_str(&format!("  oops:                 {oops}\n"));
    s.push_str(&format!(
        "  stray DMA:            {} writes{}, {} reads (untranslated: IOVA used as physical address)\n",
        v.stray_dma_writes,
        if addrs.is_empty() { String::new() } else { format!(" at {}", addrs.join(", ")) },
        v.stray_dma_reads
    ));
    if v.stray_in_flight_at_bme_clear > 0 {
        s.push_str(&format!(
            "                        {} of them issued before Bus Master Enable was cleared (in flight at the clear; none issued after)\n",
            v.stray_in_flight_at_bme_clear
        ));
    }
    s.push_str(&format!("  foreign DMA:          {}\n", v.foreign_dma));
    s.push_str(&format!(
        "  freed-domain DMA:     {} (translated by a freed domain's tables or TLB entries)\n",
        v.freed_domain_dma
    ));
    s.push_str(&format!("  lost writes:          {}\n", v.lost_writes));
    s.push_str(&format!(
        "  use-after-free:       {} (DMA-API calls that used a domain a concurrent release freed)\n",
        v.use_after_free
    ));
    s.push_str(&format!(
        "  blocked transactions: {}\n",
        v.blocked_transactions
    ));
    s.push_str(&format!("  DMA transactions:     {}\n", v.dma_transactions));
    // Only what the run's execution model measured: the SMMUv3 race's single network actor
    // has no NIC error paths, Bus Master Enable or CPUs, so it prints neither line.
    if v.execution.measures_nic() {
        let e = &v.nic_errors;
        s.push_str(&format!(
            "  NIC saw:              {} TX / {} RX DMA aborts{}, {} transactions held back (Bus Master Enable clear)\n",
            e.tx_dma_aborts,
            e.rx_dma_aborts,
            if e.tx_ring_stalled {
                sim::enetc::watchdog::stalled_ring_note()
            } else {
                ""
            },
            v.bme_suppressed,
        ));
        if let Some(n) = v.msis_lost {
            s.push_str(&format!(
                "  MSIs lost:            {n} (blocked, or not translated to the ITS: no interrupt)\n"
            ));
        }
    }
    if v.execution.measures_cpus() {
        s.push_str(&format!(
            "  CPU 0:                {} hardirqs, softirqs {} on irq exit / {} in ksoftirqd/0, {} work items; reboot task on CPU {}\n",
            v.cpu0.hardirqs, v.cpu0.softirq_on_irq_exit, v.cpu0.softirq_in_ksoftirqd, v.cpu0.works, v.trigger_cpu
        ));
    }
    s.push_str(&format!(
        "  faults logged:        {} global, {} context\n",
        v.global_faults_logged, v.context_faults_logged
    ));
    s.push_str(&format!(
        "  packets:              {} delivered, {} dropped\n",
        v.packets_delivered, v.packets_dropped
    ));
    s.push_str(&format!(
        "  shutdown:             {} in {} µs of simulated time\n",
        if v.completed {
            "completed"
        } else {
            "did not complete"
        },
        v.shutdown_time_ns / 1000
    ));
    s
}

/// The JSON form of one run (schema: docs/json.md, "run").
pub fn run_json(
    token: &str,
    o: &RebootOutcome,
    violations: &[String],
    properties: &[Property],
) -> serde_json::Value {
    serde_json::json!({
        "schema": "smmu-lab/run/v2",
        "token": token,
        "hash": format!("{:016x}", outcome_hash(o)),
        "properties_checked": properties.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "violations": violations,
        "verdict": o.verdict,
        "log": o.log.lines().collect::<Vec<_>>(),
    })
}

pub fn print_json(v: &serde_json::Value) -> Result<(), String> {
    outln!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| e.to_string())?
    );
    Ok(())
}
