//! Kernel specs: a preset plus fixes added or removed, `v6.1+ce31e6ca68bd`,
//! `v6.2-ce31e6ca68bd`, `v6.2+quiesce+guarded_dma_domain`.

use crate::fix::{Fix, Origin};
use crate::preset::Preset;
use std::collections::BTreeSet;
use std::fmt;
use thiserror::Error;

/// A kernel: the preset it starts from and the set of fixes it contains.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelSpec {
    /// The release the spec starts from.
    pub preset: Preset,
    /// Fixes the spec added to the preset, in history order.
    pub added: BTreeSet<Fix>,
    /// Fixes the spec removed from the preset, in history order.
    pub removed: BTreeSet<Fix>,
}

/// Why a kernel spec cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KernelSpecError {
    /// Nothing was given.
    #[error("empty kernel spec: give a version such as v6.1, optionally with +FIX or -FIX terms")]
    Empty,
    /// The spec does not start with a known version.
    #[error("unknown kernel version '{name}' (known: {})", Preset::names().join(", "))]
    UnknownPreset {
        /// What was given.
        name: String,
    },
    /// A `+` or `-` with nothing after it.
    #[error("'{spec}': a '{sign}' must be followed by a fix (a 12-hex commit id or quiesce/guarded_dma_domain)")]
    EmptyTerm {
        /// The whole spec.
        spec: String,
        /// `+` or `-`.
        sign: char,
    },
    /// A fix the model does not know.
    #[error("unknown fix '{name}': the model knows {}", known_fixes())]
    UnknownFix {
        /// What was given.
        name: String,
    },
    /// The same fix named twice.
    #[error("fix {fix} is named more than once")]
    Duplicate {
        /// The fix.
        fix: Fix,
    },
    /// Adding a fix the preset already contains.
    #[error("{preset} already contains {fix} (\"{}\")", fix.subject())]
    AlreadyInPreset {
        /// The preset.
        preset: Preset,
        /// The fix.
        fix: Fix,
    },
    /// Removing a fix the preset does not contain.
    #[error("{preset} does not contain {fix} (\"{}\"), so it cannot be removed", fix.subject())]
    NotInPreset {
        /// The preset.
        preset: Preset,
        /// The fix.
        fix: Fix,
    },
}

fn known_fixes() -> String {
    Fix::ALL
        .iter()
        .map(|f| f.id())
        .collect::<Vec<_>>()
        .join(", ")
}

impl KernelSpec {
    /// The preset unchanged.
    pub fn preset(preset: Preset) -> KernelSpec {
        KernelSpec {
            preset,
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
        }
    }

    /// Parse `PRESET{(+|-)FIX}`. Fix names contain no `+` or `-` (commit ids are hex, our
    /// own changes use `_`), so every sign starts a term.
    pub fn parse(spec: &str) -> Result<KernelSpec, KernelSpecError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(KernelSpecError::Empty);
        }
        let first = spec.find(['+', '-']).unwrap_or(spec.len());
        let preset_name = &spec[..first];
        let preset =
            Preset::from_name(preset_name).ok_or_else(|| KernelSpecError::UnknownPreset {
                name: preset_name.to_string(),
            })?;
        let mut kernel = KernelSpec::preset(preset);
        let mut rest = &spec[first..];
        while let Some(sign) = rest.chars().next() {
            let body = &rest[1..];
            let end = body.find(['+', '-']).unwrap_or(body.len());
            let name = &body[..end];
            rest = &body[end..];
            if name.is_empty() {
                return Err(KernelSpecError::EmptyTerm {
                    spec: spec.to_string(),
                    sign,
                });
            }
            let fix = Fix::lookup(name).ok_or_else(|| KernelSpecError::UnknownFix {
                name: name.to_string(),
            })?;
            if kernel.added.contains(&fix) || kernel.removed.contains(&fix) {
                return Err(KernelSpecError::Duplicate { fix });
            }
            let in_preset = preset.fixes().contains(&fix);
            if sign == '+' {
                if in_preset {
                    return Err(KernelSpecError::AlreadyInPreset { preset, fix });
                }
                kernel.added.insert(fix);
            } else {
                if !in_preset {
                    return Err(KernelSpecError::NotInPreset { preset, fix });
                }
                kernel.removed.insert(fix);
            }
        }
        Ok(kernel)
    }

    /// This kernel with `fix` in it (the spec that says so most simply: a removal undone, or
    /// an addition).
    pub fn with_fix(&self, fix: Fix) -> KernelSpec {
        let mut k = self.clone();
        if !k.removed.remove(&fix) && !k.preset.fixes().contains(&fix) {
            k.added.insert(fix);
        }
        k
    }

    /// This kernel without `fix`.
    pub fn without_fix(&self, fix: Fix) -> KernelSpec {
        let mut k = self.clone();
        if !k.added.remove(&fix) && k.preset.fixes().contains(&fix) {
            k.removed.insert(fix);
        }
        k
    }

    /// Every fix this kernel contains, in history order.
    pub fn fixes(&self) -> Vec<Fix> {
        Fix::ALL.into_iter().filter(|f| self.contains(*f)).collect()
    }

    /// Whether the kernel contains `fix`.
    pub fn contains(&self, fix: Fix) -> bool {
        (self.preset.fixes().contains(&fix) && !self.removed.contains(&fix))
            || self.added.contains(&fix)
    }

    /// Whether every fix is a Linux commit (no change of our own).
    pub fn is_linux(&self) -> bool {
        self.fixes()
            .iter()
            .all(|f| matches!(f.origin(), Origin::Linux { .. }))
    }

    /// The kernel spec today's `--kernel linux-6.1|linux-6.2|quiesce` names stand for.
    pub fn from_legacy_name(name: &str) -> Option<KernelSpec> {
        let spec = match name {
            "linux-6.1" => "v6.1",
            "linux-6.2" => "v6.2",
            "quiesce" => "v6.2+quiesce+guarded_dma_domain",
            _ => return None,
        };
        KernelSpec::parse(spec).ok()
    }
}

/// The canonical spec: preset, then removals and additions in history order.
impl fmt::Display for KernelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.preset.name())?;
        for fix in Fix::ALL {
            if self.removed.contains(&fix) {
                write!(f, "-{fix}")?;
            } else if self.added.contains(&fix) {
                write!(f, "+{fix}")?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for KernelSpec {
    type Err = KernelSpecError;
    fn from_str(s: &str) -> Result<KernelSpec, KernelSpecError> {
        KernelSpec::parse(s)
    }
}
