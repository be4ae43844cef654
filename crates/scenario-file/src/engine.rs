//! What runs a valid scenario: the reboot machine (`sim`'s board with the real driver, core
//! and MMU-500 model; reboot, kexec or unbind of the SMMU under DMA) or the real stack
//! (`stack`: the same driver, core and model with the file's actors probing, mapping and
//! tearing down on threads of the sync facade). The choice follows the operations the file
//! uses; an operation or property neither has is refused here, before anything runs.

use crate::error::{ErrorKind, ScenarioError};
use crate::model::{Position, ScenarioFile};
use crate::vocab::{DmaPattern, Op};
use kernel_history::KernelSpec;
use sim::scenario::{Property, RebootConfig};

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub enum Runnable {
    /// The reboot machine.
    Machine {
        /// Its configuration.
        config: Box<RebootConfig>,
        /// The properties checked.
        properties: Vec<Property>,
    },
    /// The real stack: MMU-500 model, arm-smmu driver, IOMMU core.
    Stack(Box<crate::stack::StackConfig>),
}

impl Runnable {
    /// Which model, in messages.
    pub fn model(&self) -> &'static str {
        match self {
            Runnable::Machine { .. } => "reboot machine",
            Runnable::Stack(_) => "real stack",
        }
    }
}

fn err(s: &ScenarioFile, at: Position, kind: ErrorKind) -> ScenarioError {
    ScenarioError {
        file: s.path.clone(),
        line: at.line,
        column: at.column,
        kind: Box::new(kind),
    }
}

/// Where to point when the whole file is at issue: its first step.
fn first_step(s: &ScenarioFile) -> Position {
    s.actors
        .first()
        .and_then(|a| a.script.first())
        .map(|st| st.at)
        .unwrap_or(Position { line: 1, column: 1 })
}

/// Whether the file needs the reboot machine.
fn needs_machine(s: &ScenarioFile) -> bool {
    let is_smmu = |d: &Option<String>| {
        d.as_ref()
            .is_some_and(|d| s.board.smmus.iter().any(|m| &m.name == d))
    };
    let steps = || s.actors.iter().flat_map(|a| &a.script);
    // The machine's own triggers; `unbind` of the SMMU is also the real stack's, which runs
    // it unless the file is nothing but the machine's triggers.
    let machine_only = |st: &crate::model::Step| {
        matches!(st.op, Op::RebootForce | Op::KexecExecute | Op::CrashKexec)
    };
    let machine_step =
        |st: &crate::model::Step| machine_only(st) || (st.op == Op::Unbind && is_smmu(&st.device));
    s.drivers.iter().any(|d| d.dma != DmaPattern::None)
        || steps().any(machine_only)
        || (steps().any(machine_step) && steps().all(machine_step))
}

/// The model that runs `s` with `kernel` (the file's, or one `bisect` or `--kernel` chose).
pub fn runnable(s: &ScenarioFile, kernel: &KernelSpec) -> Result<Runnable, ScenarioError> {
    if needs_machine(s) {
        machine(s, kernel)
    } else {
        refuse_off_stack(s)?;
        crate::stack::config(s, kernel)
            .map(|c| Runnable::Stack(Box::new(c)))
            .map_err(|why| err(s, first_step(s), ErrorKind::NotOnStack(why)))
    }
}

/// The first operation or property of `s` the real stack does not have, as the error.
fn refuse_off_stack(s: &ScenarioFile) -> Result<(), ScenarioError> {
    for st in s.actors.iter().flat_map(|a| &a.script) {
        if !crate::stack::runs_step(st) {
            return Err(err(
                s,
                st.at,
                ErrorKind::NotModelled {
                    op: st.op.name(),
                    why: "the reboot machine runs reboot-force, kexec-execute, crash-kexec and unbind of the SMMU with DMA patterns; the real stack runs probe, bind, unbind, remove and deferred-probe of a master, probe, unbind and remove of the SMMU, pci-hot-unplug, dma-map/unmap of pages and sg lists, dma-alloc/free-coherent, fq-timer-expiry, claim/release-dma-owner, iommu-domain-alloc/free, iommu-attach/detach-device, iommu-map/unmap, fail-pgtable-alloc, and device reads and writes",
                },
            ));
        }
    }
    for p in &s.properties {
        if p.stack.is_none() {
            return Err(err(
                s,
                p.at,
                ErrorKind::PropertyNotInModel {
                    name: p.name.to_string(),
                    model: "real stack",
                    known: crate::vocab::names(
                        &crate::stack::StackProperty::ALL,
                        crate::stack::StackProperty::name,
                    ),
                },
            ));
        }
    }
    Ok(())
}

fn machine(s: &ScenarioFile, kernel: &KernelSpec) -> Result<Runnable, ScenarioError> {
    if let Some(bits) = s.smmu_ias {
        return Err(err(s, first_step(s), ErrorKind::SmmuIasOffStack { bits }));
    }
    let mut with_kernel = s.clone();
    with_kernel.kernel = kernel.clone();
    let config = crate::today::reboot_config(&with_kernel)
        .map_err(|e| err(s, first_step(s), ErrorKind::NotToday(e)))?;
    let properties = if s.properties.is_empty() {
        Property::DEFAULT.to_vec()
    } else {
        s.properties
            .iter()
            .map(|p| {
                p.machine.ok_or_else(|| {
                    err(
                        s,
                        p.at,
                        ErrorKind::PropertyNotInModel {
                            name: p.name.to_string(),
                            model: "reboot machine",
                            known: crate::vocab::names(&Property::ALL, Property::name),
                        },
                    )
                })
            })
            .collect::<Result<_, _>>()?
    };
    Ok(Runnable::Machine {
        config: Box::new(config),
        properties,
    })
}
