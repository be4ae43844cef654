//! A validated scenario: every name resolved against the vocabulary, the kernel history and the
//! board.

use crate::vocab::{ActorKind, Dir, DmaPattern, Op};
use kernel_history::Fix;
use kernel_history::KernelSpec;
use sim::scenario::{KernelParams, Property};
use sim::Board;
use smmu_addr::{Iova, PhysAddr};
use std::path::PathBuf;

/// Where the board comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardSource {
    /// A built-in board, by name.
    Builtin(&'static str),
    /// A device tree; the path as written (relative to the scenario file) and as resolved.
    Dtb {
        /// As written in the file.
        written: String,
        /// Resolved against the file's directory.
        resolved: PathBuf,
    },
}

/// A line and column in the file (1-based), for messages about a step at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line.
    pub line: usize,
    /// Column.
    pub column: usize,
}

/// A driver as the scenario declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverDecl {
    /// The master it drives.
    pub device: String,
    /// The driver's name (the board's when the file gives none).
    pub name: String,
    /// Whether it has a `.shutdown` (the board's when the file does not say).
    pub has_shutdown: bool,
    /// The DMA it runs by itself.
    pub dma: DmaPattern,
    /// Echo requests of a ping flood (`enetc-ping-flood` only).
    pub packets: Option<u32>,
    /// Loop bound of the pattern's actors.
    pub steps: Option<u32>,
    /// Stream IDs replacing the firmware's (`stream-ids`, as an edited device tree would).
    pub stream_ids: Option<Vec<u32>>,
    /// Reserved regions to identity-map for the device (`direct-regions`: base, size).
    pub direct_regions: Vec<(PhysAddr, u64)>,
    /// The device's DMA mask in bits (`dma-mask-bits`, as its driver's
    /// `dma_set_mask_and_coherent(dev, DMA_BIT_MASK(n))`; the real stack; default 64).
    pub dma_mask_bits: Option<u32>,
}

/// One step of a script: an operation and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The operation.
    pub op: Op,
    /// `device`.
    pub device: Option<String>,
    /// `domain`.
    pub domain: Option<String>,
    /// `buffer`.
    pub buffer: Option<String>,
    /// `size` in bytes.
    pub size: Option<u64>,
    /// `nents`.
    pub nents: Option<u32>,
    /// `iova`.
    pub iova: Option<Iova>,
    /// `dir`.
    pub dir: Option<Dir>,
    /// `owner` (`Some("")` is a NULL owner).
    pub owner: Option<String>,
    /// Where the step is written.
    pub at: Position,
}

/// One actor and its script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Its name (unique in the file).
    pub name: String,
    /// What runs it.
    pub kind: ActorKind,
    /// The CPU (CPU tasks; optional for kthreads).
    pub cpu: Option<u32>,
    /// The device whose engine it is (DMA engines).
    pub device: Option<String>,
    /// The script, in order.
    pub script: Vec<Step>,
}

/// A scenario file, validated. Nothing in it is unknown to the model or absent from the
/// board.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    /// The file it was read from.
    pub path: PathBuf,
    /// `[scenario] name`, else the file's stem.
    pub name: String,
    /// `[scenario] description`.
    pub description: String,
    /// Where the board comes from.
    pub board_source: BoardSource,
    /// The board.
    pub board: Board,
    /// The kernel: a preset with fixes added or removed.
    pub kernel: KernelSpec,
    /// The kernel command line, parsed as the simulated kernel parses it.
    pub cmdline: KernelParams,
    /// Drivers the file declares, in file order.
    pub drivers: Vec<DriverDecl>,
    /// Actors, in file order.
    pub actors: Vec<Actor>,
    /// Properties to check (`[check]`); empty when the file has none (each model then checks
    /// its default set).
    pub properties: Vec<CheckedProperty>,
    /// Board quirks (`[board] quirks`).
    pub quirks: Vec<crate::vocab::Quirk>,
    /// `[board] smmu-ias`: the input address size the board's MMU-500 reports in ID2.IAS
    /// (its stage-2 input and stage-1 output size), instead of the preset's 48 bits.
    pub smmu_ias: Option<u32>,
    /// `[bug]`: the corpus record of a real Linux bug.
    pub bug: Option<Bug>,
    /// SHA-256 of the file's bytes: a replay token carries it, so a token recorded against
    /// one version of the file is refused against an edited one.
    pub content_hash: ContentHash,
}

/// SHA-256 of a scenario file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Hash `bytes`.
    pub fn of(bytes: &[u8]) -> ContentHash {
        use sha2::{Digest, Sha256};
        ContentHash(Sha256::digest(bytes).into())
    }

    /// The first 12 hex digits, as a replay token carries them.
    pub fn short(&self) -> String {
        self.to_string()[..12].to_string()
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A property named in `[check]`: a name known to the reboot machine, the real stack, or
/// both (which one runs the file decides which applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedProperty {
    /// The name.
    pub name: &'static str,
    /// The reboot machine's property of that name.
    pub machine: Option<Property>,
    /// The real stack's property of that name.
    pub stack: Option<crate::stack::StackProperty>,
    /// Where it is written.
    pub at: Position,
}

/// Every property name either model knows, in a stable order.
pub fn property_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Property::ALL.iter().map(|p| p.name()).collect();
    for p in crate::stack::StackProperty::ALL {
        if !v.contains(&p.name()) {
            v.push(p.name());
        }
    }
    v
}

/// How the explorer searches: the strategy and its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Random, PCT or bounded DFS.
    pub strategy: explore::Strategy,
    /// Run budget (DFS: at most; it stops when the bounded space is exhausted).
    pub runs: u64,
    /// Explorer seed (random and PCT).
    pub seed: u64,
}

/// `[bug]`: a real Linux bug as the corpus records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bug {
    /// The commit that fixed it: the file's kernel lacks it, the kernel after adds it.
    pub fixed_by: Fix,
    /// The commit that introduced it (or what the record knows of it).
    pub introduced_by: String,
    /// The mechanism, in one sentence.
    pub mechanism: String,
    /// The property the bug violates.
    pub property: CheckedProperty,
    /// The search that must find the failure on the file's kernel.
    pub before: Budget,
    /// The pinned replay token of the failure (without the file and kernel parts).
    pub token: Option<String>,
    /// The search after which the property must hold on the fixed kernel.
    pub after: Budget,
}
