//! Scenario files: a lifecycle race written as TOML, validated before anything runs.
//!
//! A file names the board (built in, or a device tree relative to the file), the kernel (a
//! version preset with named fixes added or removed, see `kernel-history`), the command line,
//! each device's driver (`.shutdown` or not, the DMA it runs by itself), the actors (CPU tasks,
//! kthreads, workqueue items, timers, device DMA engines), each with a script from a fixed
//! vocabulary ([`Op`]), and the properties to check. The format is documented with examples in
//! `docs/scenarios.md`.
//!
//! What exists today is the format, its validation and its content hash. Running a file
//! awaits the simulated kernel's execution model; [`today`] maps the files that describe one
//! of today's built-in runs (reboot, kexec or unbind with traffic) onto the
//! [`sim::scenario::RebootConfig`] that runs them.
//!
//! Every refusal is a [`ScenarioError`] with the file, line and column of the offending value
//! and a typed [`ErrorKind`].
//!
//! # Example
//!
//! ```
//! use scenario_file::{parse, ErrorKind};
//! use std::path::Path;
//!
//! let text = r#"
//! [board]
//! builtin = "kbox-a230-ls"
//!
//! [kernel]
//! version = "v6.1+ce31e6ca68bd"
//!
//! [[actor]]
//! name = "shell"
//! kind = "cpu-task"
//! cpu = 1
//! script = [{ op = "reboot-force" }]
//! "#;
//! let s = parse(text, Path::new("reboot.toml"))?;
//! assert_eq!(s.kernel.to_string(), "v6.1+ce31e6ca68bd");
//! assert_eq!(s.actors[0].script.len(), 1);
//!
//! let bad = text.replace("reboot-force", "reboot-forcefully");
//! let e = parse(&bad, Path::new("reboot.toml")).unwrap_err();
//! assert_eq!((e.line, e.column), (12, 18));
//! assert!(matches!(*e.kind, ErrorKind::UnknownOperation { .. }));
//! assert!(e.to_string().starts_with("reboot.toml:12:18: unknown operation 'reboot-forcefully'"));
//! # Ok::<(), scenario_file::ScenarioError>(())
//! ```

#![warn(missing_docs)]

mod bug;
pub mod engine;
pub mod error;
mod handles;
pub mod model;
mod raw;
pub mod stack;
mod stack_error;
pub mod today;
mod validate;
pub mod vocab;

pub use engine::{runnable, Runnable};
pub use error::{ErrorKind, LoadError, ScenarioError, SharedIoError};
pub use model::{
    property_names, Actor, BoardSource, Budget, Bug, CheckedProperty, ContentHash, DriverDecl,
    Position, ScenarioFile, Step,
};
pub use validate::{parse, BUILTIN_BOARDS};
pub use vocab::{ActorKind, BufferKind, Dir, DmaPattern, Op, Param};

use std::path::Path;

/// The kernel's page (arm64 with 4 KiB pages): the size of a mapping step that gives none, and
/// the alignment `iommu-map`/`iommu-unmap` ranges and direct regions need.
const PAGE_SIZE: smmu_addr::PageSize = smmu_addr::PageSize::SZ_4K;

/// Read and validate a scenario file.
pub fn load(path: &Path) -> Result<ScenarioFile, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse(&text, path)?)
}
