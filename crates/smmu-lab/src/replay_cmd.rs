//! `smmu-lab replay TOKEN|FILE`: reproduce a run exactly.

use crate::common::{self, MachineArgs};
use crate::sim::scenario::{Property, ReplayToken};
use crate::CommandOutcome;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A replay token (SCENARIO:KERNEL:SCHEDULE), a replay file written by `explore`, or a
    /// scenario file (FILE.toml) followed by its token (FILE@HASH:KERNEL:SCHEDULE).
    #[arg(value_name = "TOKEN|REPLAY.json|FILE.toml")]
    token: String,
    /// The token of a scenario file's run (after FILE.toml).
    #[arg(value_name = "FILE-TOKEN")]
    file_token: Option<String>,
    /// Properties that decide the exit code (repeatable): no-oops, no-stray-dma, no-foreign-dma, no-lost-write,
    /// no-dma-through-freed-domain, no-fault, no-use-after-free, smmu-probed. Default: all but
    /// no-fault and smmu-probed.
    #[arg(long = "property", value_parser = common::parse_property)]
    properties: Vec<Property>,
    #[command(flatten)]
    machine: MachineArgs,
    /// Also write the run as a self-contained HTML page (timeline, log, verdict).
    #[arg(long, value_name = "FILE.html")]
    report: Option<std::path::PathBuf>,
    /// Also write every SMMU register access and queue command, with phase markers, to FILE
    /// (format: docs/mmio-log.md).
    #[arg(long, value_name = "FILE")]
    mmio_log: Option<std::path::PathBuf>,
}

/// The schema name a replay file carries (docs/json.md, "replay file").
pub const REPLAY_SCHEMA: &str = "smmu-lab/replay/v1";

/// A replay file: everything needed to rebuild the run.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ReplayFile {
    pub schema: String,
    pub token: String,
    pub dtb: Option<std::path::PathBuf>,
    pub cmdline: String,
    pub no_timestamps: bool,
    pub flood: u32,
    pub actor_steps: u32,
    /// Masters running generic DMA traffic (absent in files from before the option).
    #[serde(default)]
    pub traffic: Vec<String>,
    /// PCI functions put on the board (absent in files from before the option).
    #[serde(default)]
    pub pci: Vec<String>,
    /// SMMUv3 GBPA at reset, bypass or abort (absent in files from before the option).
    #[serde(default = "default_gbpa")]
    pub gbpa: String,
    pub properties: Vec<String>,
    /// The kernel build (absent: the policy's default).
    #[serde(default)]
    pub build: Option<String>,
    /// The DMA core (absent: linux).
    #[serde(default = "default_core")]
    pub dma_core: String,
    /// Ring sizes and flood rate (absent: the defaults).
    #[serde(default = "default_ring")]
    pub tx_ring: usize,
    #[serde(default = "default_ring")]
    pub rx_ring: usize,
    #[serde(default = "default_rate")]
    pub flood_rate: u64,
}

fn default_core() -> String {
    "linux".into()
}
fn default_ring() -> usize {
    common::DEFAULT_RING
}
fn default_rate() -> u64 {
    common::DEFAULT_FLOOD_RATE
}

impl ReplayFile {
    /// The file for `token` run on `m` checking `properties`.
    pub fn new(token: String, m: &MachineArgs, properties: Vec<String>) -> ReplayFile {
        ReplayFile {
            schema: REPLAY_SCHEMA.into(),
            token,
            dtb: m.dtb.clone(),
            cmdline: m.cmdline.clone(),
            no_timestamps: m.no_timestamps,
            flood: m.flood,
            actor_steps: m.actor_steps,
            traffic: m.traffic.clone(),
            properties,
            build: m.build.clone(),
            dma_core: m.dma_core.clone(),
            tx_ring: m.tx_ring,
            rx_ring: m.rx_ring,
            flood_rate: m.flood_rate,
            pci: m.pci.clone(),
            gbpa: m.gbpa.clone(),
        }
    }
}

/// `replay FILE.toml TOKEN`: refused when the file changed since the token was recorded.
fn replay_file(args: &Args, json: bool) -> Result<CommandOutcome, String> {
    let Some(tok) = &args.file_token else {
        return Err(format!(
            "replay {}: give the token after the file (smmu-lab replay FILE.toml FILE@HASH:KERNEL:SCHEDULE)",
            args.token
        ));
    };
    let token: crate::file_model::FileToken = tok.parse()?;
    let path = std::path::Path::new(&args.token);
    let l = crate::file_model::load_for_token(path, &token)?;
    let r = crate::file_model::run_file(&l, &token.schedule)?;
    crate::run_cmd::show_file_run(&args.token, &l, token.schedule, &r, json, false)
}

fn default_gbpa() -> String {
    "bypass".into()
}

pub fn run(args: &Args, json: bool) -> Result<CommandOutcome, String> {
    if crate::file_model::is_file_arg(&args.token) {
        if args.mmio_log.is_some() {
            return Err("--mmio-log is not available for scenario files yet".into());
        }
        return replay_file(args, json);
    }
    if let Some(extra) = &args.file_token {
        return Err(format!(
            "unexpected argument '{extra}': only a scenario file (FILE.toml) is followed by a token"
        ));
    }
    let mmio_log = args
        .mmio_log
        .as_deref()
        .map(crate::mmio_log_out::MmioLogOut::check)
        .transpose()?;
    let (token, machine, properties) = if std::path::Path::new(&args.token).is_file() {
        let text =
            std::fs::read_to_string(&args.token).map_err(|e| format!("{}: {e}", args.token))?;
        let f: ReplayFile = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a replay file: {e}", args.token))?;
        if f.schema != REPLAY_SCHEMA {
            return Err(format!(
                "{}: replay file schema '{}' is not {REPLAY_SCHEMA}",
                args.token, f.schema
            ));
        }
        let props = f
            .properties
            .iter()
            .map(|p| common::parse_property(p))
            .collect::<Result<Vec<_>, _>>()?;
        let m = MachineArgs {
            dtb: f.dtb,
            cmdline: f.cmdline,
            no_timestamps: f.no_timestamps,
            flood: f.flood,
            actor_steps: f.actor_steps,
            traffic: f.traffic,
            build: f.build,
            dma_core: f.dma_core,
            tx_ring: f.tx_ring,
            rx_ring: f.rx_ring,
            flood_rate: f.flood_rate,
            pci: f.pci,
            gbpa: f.gbpa,
        };
        (f.token, m, props)
    } else if args.token.ends_with(".json") || args.token.contains('/') {
        // Not a token (tokens have neither): a replay file that is not there.
        return Err(format!("{}: no such replay file", args.token));
    } else {
        (
            args.token.clone(),
            args.machine.clone(),
            args.properties.clone(),
        )
    };
    let token = token.parse::<ReplayToken>().map_err(|e| e.to_string())?;
    let mut cfg = machine.config(token.trigger, token.kernel)?;
    cfg.mmio_log = mmio_log.is_some();
    let scn = Arc::new(common::scenario(cfg, &properties));
    let rec = match token.schedule.replay(scn.clone(), crate::run_cmd::MAX_STEPS) {
        Ok(r) => r,
        Err(_) => {
            return Err(format!(
                "replay token {token} does not fit this machine (different board, command line or smmu-lab version?)"
            ))
        }
    };
    crate::run_cmd::show(
        &scn,
        &token,
        &machine,
        rec.outcome,
        &rec.violations,
        json,
        &crate::run_cmd::Files {
            report: args.report.as_deref(),
            mmio_log: mmio_log.as_ref(),
        },
    )
}
