//! Typed errors of the board loader and the kernel model.

use thiserror::Error;

/// Why a device tree could not be turned into a [`crate::board::Board`]. Every variant names
/// where the problem is (blob offset, or node path and property).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BoardError {
    /// The blob is shorter than its header says (or than a header).
    #[error("device tree truncated: {what} needs {need} bytes, blob has {have}")]
    Truncated {
        /// What did not fit.
        what: String,
        /// Bytes required.
        need: u64,
        /// Bytes present.
        have: u64,
    },
    /// Not a flattened device tree.
    #[error("not a device tree blob: magic {found:#010x}, expected 0xd00dfeed")]
    BadMagic {
        /// The first word of the blob.
        found: u32,
    },
    /// Only FDT version 17 (what dtc writes) is read.
    #[error("unsupported device tree version {version} (need >= 17)")]
    UnsupportedVersion {
        /// Header version field.
        version: u32,
    },
    /// The structure block is malformed.
    #[error("malformed device tree structure at offset {offset:#x}: {reason}")]
    Structure {
        /// Byte offset in the blob.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Nodes nest deeper than [`crate::fdt::MAX_DEPTH`].
    #[error("device tree nests too deeply below {path}")]
    TooDeep {
        /// Path of the deepest node reached.
        path: String,
    },
    /// A property has the wrong shape or value.
    #[error("{node}: property {property}: {reason}")]
    Property {
        /// Node path.
        node: String,
        /// Property name.
        property: String,
        /// What is wrong.
        reason: String,
    },
    /// A property Linux requires is missing.
    #[error("{node}: missing {property} property")]
    MissingProperty {
        /// Node path.
        node: String,
        /// Property name.
        property: String,
    },
    /// A phandle points at no node.
    #[error("{node}: property {property}: phandle {phandle:#x} refers to no node")]
    DanglingPhandle {
        /// Node path.
        node: String,
        /// Property name.
        property: String,
        /// The phandle value.
        phandle: u32,
    },
    /// The blob passed our own structural validation but `flat_device_tree` still refused it.
    #[error("device tree rejected by the parser: {0}")]
    Parser(#[source] FdtParserError),
}

/// `flat_device_tree`'s error, which implements `Display` but not `std::error::Error`; wrapped
/// so [`BoardError::Parser`] keeps it as a typed source instead of a string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FdtParserError(pub flat_device_tree::Error);

impl std::fmt::Display for FdtParserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

// The wrapped enum derives only `PartialEq`, but its fields are integers: equality is total.
impl Eq for FdtParserError {}

impl std::error::Error for FdtParserError {}
