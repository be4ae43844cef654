//! What runs a valid scenario: the reboot machine (`sim`'s board with the real driver, core
//! and MMU-500 model; reboot, kexec or unbind of the SMMU under DMA) or the lifecycle model
//! (`lifecycle`: probe, groups, domains, the DMA layer). The choice follows the operations the
//! file uses; an operation neither runs is refused here, before anything runs.

use crate::error::{ErrorKind, ScenarioError};
use crate::model::{Position, Scenario};
use crate::vocab::{DmaPattern, Op};
use kernel_history::{Kernel, Switches};
use sim::scenario::{Property, RebootConfig};
use sim::Bus;

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
    /// The lifecycle model.
    Lifecycle(lifecycle::LifecycleConfig),
    /// The real stack: MMU-500 model, arm-smmu driver, IOMMU core.
    Stack(Box<crate::stack::StackConfig>),
}

impl Runnable {
    /// Which model, in messages.
    pub fn model(&self) -> &'static str {
        match self {
            Runnable::Machine { .. } => "reboot machine",
            Runnable::Lifecycle(_) => "lifecycle model",
            Runnable::Stack(_) => "real stack",
        }
    }
}

fn err(s: &Scenario, at: Position, kind: ErrorKind) -> ScenarioError {
    ScenarioError {
        file: s.path.clone(),
        line: at.line,
        column: at.column,
        kind: Box::new(kind),
    }
}

/// Where to point when the whole file is at issue: its first step.
fn first_step(s: &Scenario) -> Position {
    s.actors
        .first()
        .and_then(|a| a.script.first())
        .map(|st| st.at)
        .unwrap_or(Position { line: 1, column: 1 })
}

/// Whether the file needs the reboot machine.
fn needs_machine(s: &Scenario) -> bool {
    let is_smmu = |d: &Option<String>| {
        d.as_ref()
            .is_some_and(|d| s.board.smmus.iter().any(|m| &m.name == d))
    };
    s.drivers.iter().any(|d| d.dma != DmaPattern::None)
        || s.actors.iter().flat_map(|a| &a.script).any(|st| {
            matches!(st.op, Op::RebootForce | Op::KexecExecute | Op::CrashKexec)
                || (st.op == Op::Unbind && is_smmu(&st.device))
        })
}

/// The model that runs `s` with `kernel` (the file's, or one `bisect` or `--kernel` chose).
pub fn runnable(s: &Scenario, kernel: &Kernel) -> Result<Runnable, ScenarioError> {
    if needs_machine(s) {
        machine(s, kernel)
    } else if crate::stack::runs(s) {
        crate::stack::config(s, kernel)
            .map(|c| Runnable::Stack(Box::new(c)))
            .map_err(|why| err(s, first_step(s), ErrorKind::NotOnStack(why)))
    } else {
        lifecycle_config(s, kernel).map(Runnable::Lifecycle)
    }
}

fn machine(s: &Scenario, kernel: &Kernel) -> Result<Runnable, ScenarioError> {
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

fn lifecycle_config(
    s: &Scenario,
    kernel: &Kernel,
) -> Result<lifecycle::LifecycleConfig, ScenarioError> {
    use lifecycle::{Actor, Device, DirectRegion, Op as L, Step};
    let devices: Vec<Device> = s
        .board
        .masters
        .iter()
        .filter(|m| m.attached)
        .map(|m| {
            let decl = s.drivers.iter().find(|d| d.device == m.name);
            Device {
                name: m.name.clone(),
                stream_ids: decl
                    .and_then(|d| d.stream_ids.clone())
                    .unwrap_or_else(|| m.ids.iter().map(|i| u32::from(i.sid)).collect()),
                pci: m.bus == Bus::Pci,
                direct: decl
                    .map(|d| {
                        d.direct_regions
                            .iter()
                            .map(|&(base, size)| DirectRegion { base, size })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let mut actors = Vec::new();
    for a in &s.actors {
        let mut script = Vec::new();
        for st in &a.script {
            let buffer = || st.buffer.clone().unwrap_or_default();
            let op = match st.op {
                Op::Probe | Op::DeferredProbe if st.device.is_none() => continue,
                Op::Probe => L::Probe,
                Op::DeferredProbe => L::DeferredProbe,
                Op::Remove | Op::PciHotUnplug => L::Remove,
                Op::DmaMapPage => L::DmaMapPage {
                    size: st.size.unwrap_or(4096),
                    buffer: buffer(),
                },
                Op::DmaMapSg => L::DmaMapSg {
                    nents: st.nents.unwrap_or(1),
                    size: st.size.unwrap_or(4096),
                    buffer: buffer(),
                },
                Op::DmaUnmapPage | Op::DmaUnmapSg => L::DmaUnmap { buffer: buffer() },
                Op::FqTimerExpiry => L::FqTimerExpiry,
                Op::ClaimDmaOwner => L::ClaimDmaOwner {
                    owner: st.owner.clone().filter(|o| !o.is_empty()),
                },
                Op::ReleaseDmaOwner => L::ReleaseDmaOwner,
                Op::DeviceRead => L::DeviceRead { buffer: buffer() },
                Op::DeviceWrite => L::DeviceWrite { buffer: buffer() },
                other => {
                    return Err(err(
                        s,
                        st.at,
                        ErrorKind::NotModelled {
                            op: other.name(),
                            why: "the reboot machine runs reboot-force, kexec-execute, crash-kexec and unbind of the SMMU with DMA patterns; the lifecycle model runs probe, deferred-probe, remove, pci-hot-unplug, dma-map/unmap of pages and sg lists, fq-timer-expiry, claim/release-dma-owner, and device reads and writes; the real stack runs dma-map-sg/page, iommu-domain-alloc, iommu-attach-device, iommu-map/unmap, fail-pgtable-alloc and device reads and writes checked for no-fault, no-sync-timeout or no-block-split",
                        },
                    ))
                }
            };
            let device = match (&st.device, &a.device) {
                (Some(d), _) | (None, Some(d)) => d.clone(),
                (None, None) => String::new(),
            };
            script.push(Step { op, device });
        }
        actors.push(Actor {
            name: a.name.clone(),
            script,
        });
    }
    let properties = if s.properties.is_empty() {
        lifecycle::Property::ALL.to_vec()
    } else {
        s.properties
            .iter()
            .map(|p| {
                p.lifecycle.ok_or_else(|| {
                    err(
                        s,
                        p.at,
                        ErrorKind::PropertyNotInModel {
                            name: p.name.to_string(),
                            model: "lifecycle model",
                            known: crate::vocab::names(
                                &lifecycle::Property::ALL,
                                lifecycle::Property::name,
                            ),
                        },
                    )
                })
            })
            .collect::<Result<_, _>>()?
    };
    let mut c = lifecycle::LifecycleConfig::new(devices, actors);
    if let Some(smmu) = s.board.smmus.first() {
        c.smmu = smmu.name.clone();
    }
    c.switches = Switches::of(kernel).lifecycle;
    c.lazy = !s.cmdline.strict;
    c.properties = properties;
    c.boot_probed = s.drivers.iter().map(|d| d.device.clone()).collect();
    Ok(c)
}
