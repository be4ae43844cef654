//! Why a scenario file is refused: always with the file, line and column of the offending
//! value, and a typed kind that names the problem.

use crate::vocab::{BufferKind, Op, Param};
use kernel_history::KernelSpecError;
use sim::scenario::ParamsError;
use sim::BoardError;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;

/// A scenario file that cannot be used. Nothing has run when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}:{line}:{column}: {kind}", file.display())]
pub struct ScenarioError {
    /// The file as given.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong (boxed: errors stay small on the success path).
    pub kind: Box<ErrorKind>,
}

/// A scenario file that could not be read or is invalid.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read and is invalid.
    #[error(transparent)]
    Invalid(#[from] ScenarioError),
}

/// What is wrong with a scenario file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ErrorKind {
    /// Not TOML, or a value of the wrong type. Shown as the reader's message alone: the
    /// position is the [`ScenarioError`]'s, taken from the error's span.
    #[error("{}", source.message().trim_end())]
    Syntax {
        /// The TOML reader's error, with its span.
        source: toml::de::Error,
    },
    /// A key the format does not have.
    #[error("unknown key '{key}' (expected {expected})")]
    UnknownKey {
        /// The key.
        key: String,
        /// The keys allowed there.
        expected: String,
    },
    /// A required key is absent.
    #[error("missing key '{key}'")]
    MissingKey {
        /// The key.
        key: String,
    },
    /// `[board]` names neither or both of `builtin` and `dtb`.
    #[error("[board] needs exactly one of 'builtin' or 'dtb'")]
    BoardSource,
    /// A built-in board name that does not exist.
    #[error("unknown built-in board '{name}' (known: {known})")]
    UnknownBoard {
        /// What was given.
        name: String,
        /// The built-in boards.
        known: String,
    },
    /// The device tree could not be read.
    #[error("cannot read device tree {}: {source}", path.display())]
    DtbUnreadable {
        /// The path, resolved against the scenario file's directory.
        path: PathBuf,
        /// The I/O error.
        source: SharedIoError,
    },
    /// The device tree is not a usable board.
    #[error("device tree {}: {error}", path.display())]
    Dtb {
        /// The path, resolved against the scenario file's directory.
        path: PathBuf,
        /// Why the board cannot be used.
        #[source]
        error: BoardError,
    },
    /// A `[board] pci` entry that is not a function the board's PCIe hosts can enumerate.
    #[error("[board] pci: {0}")]
    Pci(#[source] sim::pci_enum::PciError),
    /// The kernel spec is invalid (unknown version or fix, duplicate, bad removal).
    #[error("kernel: {0}")]
    Kernel(#[source] KernelSpecError),
    /// The command line is invalid.
    #[error("cmdline: {0}")]
    Cmdline(#[source] ParamsError),
    /// A device that is neither a master nor an SMMU of the board.
    #[error("device '{device}' is not on the board {board} (its DMA masters and SMMUs: {known})")]
    DeviceNotOnBoard {
        /// The name given.
        device: String,
        /// The board's name.
        board: String,
        /// The board's masters and SMMUs.
        known: String,
    },
    /// An operation that needs a master was given an SMMU.
    #[error("'{op}' needs a DMA master, and '{device}' is an SMMU")]
    NotAMaster {
        /// The operation.
        op: &'static str,
        /// The SMMU.
        device: String,
    },
    /// `pci-hot-unplug` of a device that is not on PCI.
    #[error("'{device}' is not a PCI device, so it cannot be hot-unplugged")]
    NotPci {
        /// The device.
        device: String,
    },
    /// Two `[[driver]]` entries for one device.
    #[error("device '{device}' has a [[driver]] already")]
    DuplicateDriver {
        /// The device.
        device: String,
    },
    /// An unknown DMA pattern.
    #[error("unknown DMA pattern '{pattern}' (known: {known})")]
    UnknownDmaPattern {
        /// What was given.
        pattern: String,
        /// The patterns.
        known: String,
    },
    /// A driver key the driver's DMA pattern does not take.
    #[error("DMA pattern '{pattern}' does not take '{key}'")]
    PatternParameter {
        /// The pattern.
        pattern: &'static str,
        /// The key.
        key: &'static str,
    },
    /// The ping-flood pattern on a device that is not an ENETC.
    #[error("'enetc-ping-flood' runs on an fsl_enetc function, and '{device}' is {driver}")]
    NotAnEnetc {
        /// The device.
        device: String,
        /// Its driver.
        driver: String,
    },
    /// A count that must be at least 1.
    #[error("'{key}' must be at least 1")]
    Zero {
        /// The key.
        key: &'static str,
    },
    /// An unknown actor kind.
    #[error("unknown actor kind '{kind}' (known: {known})")]
    UnknownActorKind {
        /// What was given.
        kind: String,
        /// The kinds.
        known: String,
    },
    /// Two actors with one name.
    #[error("actor '{name}' is defined twice")]
    DuplicateActor {
        /// The name.
        name: String,
    },
    /// An actor without a script, or with an empty one.
    #[error("actor '{actor}' has no script")]
    ActorWithoutScript {
        /// The actor.
        actor: String,
    },
    /// An actor key its kind does not take (`cpu` on a DMA engine).
    #[error("a {kind} actor does not take '{key}'")]
    ActorKey {
        /// The actor's kind.
        kind: &'static str,
        /// The key.
        key: &'static str,
    },
    /// An actor key its kind requires.
    #[error("a {kind} actor needs '{key}'")]
    ActorNeeds {
        /// The actor's kind.
        kind: &'static str,
        /// The key.
        key: &'static str,
    },
    /// An operation that is not in the vocabulary.
    #[error("unknown operation '{op}' (known: {known})")]
    UnknownOperation {
        /// What was given.
        op: String,
        /// The vocabulary.
        known: String,
    },
    /// A device-side operation in a CPU actor, or a kernel operation in a DMA engine.
    #[error("'{op}' cannot run in a {kind} actor")]
    OpNotForActor {
        /// The operation.
        op: &'static str,
        /// The actor's kind.
        kind: &'static str,
    },
    /// A parameter the operation needs is absent.
    #[error("'{}' needs '{}'", op.name(), param.key())]
    MissingParameter {
        /// The operation.
        op: Op,
        /// The parameter.
        param: Param,
    },
    /// A parameter the operation does not take.
    #[error("'{}' does not take '{}'", op.name(), param.key())]
    UnexpectedParameter {
        /// The operation.
        op: Op,
        /// The parameter.
        param: Param,
    },
    /// An unknown DMA direction.
    #[error("unknown DMA direction '{dir}' (known: to-device, from-device, bidirectional)")]
    UnknownDirection {
        /// What was given.
        dir: String,
    },
    /// An `iommu-map`/`iommu-unmap` IOVA or size that is not a multiple of 4 KiB.
    #[error("'{key}' {value:#x} is not a multiple of 4 KiB")]
    Unaligned {
        /// The key.
        key: &'static str,
        /// The value.
        value: u64,
    },
    /// Two operations name the same buffer or domain handle.
    #[error("handle '{handle}' is made twice (first at line {first_line})")]
    DuplicateHandle {
        /// The handle.
        handle: String,
        /// Where it was first made.
        first_line: usize,
    },
    /// A buffer or domain handle that no operation makes.
    #[error("no operation makes the handle '{handle}'")]
    UnknownHandle {
        /// The handle.
        handle: String,
    },
    /// An unmap or free of a buffer of another kind (`dma-unmap-sg` of a page mapping).
    #[error("'{}' needs a {}, and '{handle}' is a {}", op.name(), expected.name(), actual.name())]
    BufferKindMismatch {
        /// The operation.
        op: Op,
        /// The handle.
        handle: String,
        /// The kind the operation needs.
        expected: BufferKind,
        /// The kind the handle is.
        actual: BufferKind,
    },
    /// A buffer used with another device than the one it was made for.
    #[error("buffer '{handle}' belongs to '{owner}', not '{device}'")]
    BufferDevice {
        /// The handle.
        handle: String,
        /// The device it was made for.
        owner: String,
        /// The device used here.
        device: String,
    },
    /// A property that does not exist.
    #[error("unknown property '{name}' (known: {known})")]
    UnknownProperty {
        /// What was given.
        name: String,
        /// The properties.
        known: String,
    },
    /// A board quirk the model does not have.
    #[error("unknown quirk '{name}' (known: {known})")]
    UnknownQuirk {
        /// What was given.
        name: String,
        /// The quirks.
        known: String,
    },
    /// `smmu-ias` that ID2.IAS cannot encode.
    #[error(
        "'smmu-ias' must be one of 32, 36, 40, 42, 44, 48 (the sizes ID2.IAS encodes), got {bits}"
    )]
    SmmuIas {
        /// The value given.
        bits: u32,
    },
    /// `smmu-ias` in a file the reboot machine runs (it builds its SMMUs from the board).
    #[error("'smmu-ias = {bits}' is a real-stack option: the reboot machine (reboot, kexec, crash-kexec, unbind of the SMMU, DMA patterns) uses the board's MMU-500 as the preset describes it")]
    SmmuIasOffStack {
        /// The value given.
        bits: u32,
    },
    /// `stream-ids` with no stream ID.
    #[error("'stream-ids' needs at least one stream ID")]
    NoStreamIds,
    /// `dma-mask-bits` outside 12..=64.
    #[error(
        "'dma-mask-bits' must be 12 to 64 (DMA_BIT_MASK's range for a 4 KiB page), got {bits}"
    )]
    DmaMaskBits {
        /// The value given.
        bits: u32,
    },
    /// `[bug] fixed-by` names a fix the file's kernel already contains.
    #[error(
        "the kernel {kernel} already contains {fix}: a bug's file names the kernel before its fix"
    )]
    FixAlreadyIn {
        /// The kernel spec.
        kernel: String,
        /// The fix.
        fix: String,
    },
    /// `[bug] property` is not one of the properties checked.
    #[error("'{name}' is not in [check] properties")]
    BugPropertyNotChecked {
        /// The property.
        name: String,
    },
    /// An explorer strategy that does not exist.
    #[error("unknown strategy '{name}' (known: pct, random, dfs)")]
    UnknownStrategy {
        /// What was given.
        name: String,
    },
    /// A run budget of zero.
    #[error("'runs' must be at least 1")]
    NoRuns,
    /// A valid operation no model executes yet.
    #[error("'{op}' is in the vocabulary, but no model runs it yet ({why})")]
    NotModelled {
        /// The operation.
        op: &'static str,
        /// What runs what.
        why: &'static str,
    },
    /// A property the model that runs this file does not check.
    #[error(
        "property '{name}' is not checked by the {model} that runs this file (it checks: {known})"
    )]
    PropertyNotInModel {
        /// The property.
        name: String,
        /// Which model.
        model: &'static str,
        /// Its properties.
        known: String,
    },
    /// The file describes a reboot-machine run the machine cannot run.
    #[error(transparent)]
    NotToday(#[from] crate::today::NotToday),
    /// The real stack runs the file's operations but not this file (no SMMUv2, a device
    /// that is not behind it).
    #[error("the real stack cannot run this file: {0}")]
    NotOnStack(#[source] crate::stack::StackError),
}

/// An I/O error that a cloneable, comparable error can hold ([`ErrorKind`] is `Clone + Eq`, and
/// tests compare kinds with `==`). It shows and chains exactly as the `io::Error` it holds.
///
/// Equality: two are equal when their [`io::ErrorKind`](std::io::ErrorKind), OS error code
/// and text are the same (an `io::Error` has no equality of its own); a clone equals its
/// original.
#[derive(Debug, Clone, Error)]
#[error(transparent)]
pub struct SharedIoError(Arc<std::io::Error>);

impl SharedIoError {
    /// The I/O error.
    pub fn io(&self) -> &std::io::Error {
        &self.0
    }
}

impl From<std::io::Error> for SharedIoError {
    fn from(e: std::io::Error) -> Self {
        SharedIoError(Arc::new(e))
    }
}

impl PartialEq for SharedIoError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.kind() == other.0.kind()
                && self.0.raw_os_error() == other.0.raw_os_error()
                && self.0.to_string() == other.0.to_string())
    }
}

impl Eq for SharedIoError {}
