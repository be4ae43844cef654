//! The bridge to what runs today. The simulator's current machine runs one shape of scenario
//! (`sim::scenario::RebootConfig`: one of three kernel behaviours, a trigger on CPU 1, the ENETC
//! ping flood and optional generic traffic). A file that describes exactly that shape maps
//! onto the config that runs it; any other file is valid but waits for the kernel execution
//! model, and [`NotToday`] says why.

use crate::model::ScenarioFile;
use crate::vocab::{ActorKind, DmaPattern, Op};
use kernel_history::{KernelSpec, NoCodePath, Switches};
use sim::scenario::{KernelBehaviour, RebootConfig, Trigger};
use thiserror::Error;

/// Why a valid scenario is not one of today's built-in runs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotToday {
    /// A layer has no code path for this combination of fixes.
    #[error("{0}")]
    NoCodePath(#[from] NoCodePath),
    /// Today's machine hard-codes the iommu core switches of linux-6.1/linux-6.2/quiesce.
    #[error("kernel {kernel}: today's machine runs only linux-6.1 (v6.1), linux-6.2 (v6.2 or v6.12) and quiesce (v6.2+quiesce+guarded_dma_domain)")]
    Kernel {
        /// The kernel spec.
        kernel: String,
    },
    /// Today's runs have exactly one actor: a CPU task with one trigger step.
    #[error("today's runs have one cpu-task actor whose script is one of reboot-force, kexec-execute or unbind of the SMMU")]
    Actors,
    /// Today's machine floods the board's first fsl_enetc function whenever there is one.
    #[error(
        "today's machine floods {nic} with enetc-ping-flood; the file must declare exactly that"
    )]
    Flood {
        /// The NIC it floods.
        nic: String,
    },
    /// Drivers keep the board's name and `.shutdown` today.
    #[error("driver of {device}: today's machine uses the board's driver name and .shutdown")]
    DriverOverride {
        /// The device.
        device: String,
    },
    /// Today's machine has one loop bound for every pattern actor.
    #[error("today's machine has one 'steps' for every DMA pattern")]
    Steps,
}

/// Today's behaviour that runs `kernel`, if one does: the shutdown policy its switches select,
/// with the iommu core switches today's machine sets for that behaviour.
pub fn behaviour(kernel: &KernelSpec) -> Result<KernelBehaviour, NotToday> {
    let sw = Switches::of(kernel);
    let policy = sw.shutdown_policy()?;
    KernelBehaviour::ALL
        .into_iter()
        .find(|b| {
            b.policy() == policy
                // sim's machine: unregister always releases, faithful unless quiesce.
                && sw.unregister_releases_devices
                && sw.unguarded_dma_domain == (*b != KernelBehaviour::Quiesce)
        })
        .ok_or_else(|| NotToday::Kernel {
            kernel: kernel.to_string(),
        })
}

/// The config of today's machine that runs `s`, if `s` is one of today's built-in runs.
pub fn reboot_config(s: &ScenarioFile) -> Result<RebootConfig, NotToday> {
    let kernel = behaviour(&s.kernel)?;
    let [actor] = s.actors.as_slice() else {
        return Err(NotToday::Actors);
    };
    let [step] = actor.script.as_slice() else {
        return Err(NotToday::Actors);
    };
    if actor.kind != ActorKind::CpuTask {
        return Err(NotToday::Actors);
    }
    let is_smmu = |d: &Option<String>| {
        d.as_ref()
            .is_some_and(|d| s.board.smmus.iter().any(|m| &m.name == d))
    };
    let trigger = match step.op {
        Op::RebootForce => Trigger::Reboot,
        Op::KexecExecute => Trigger::Kexec,
        Op::CrashKexec => Trigger::CrashKexec,
        Op::Unbind if is_smmu(&step.device) => Trigger::UnbindSmmu,
        _ => return Err(NotToday::Actors),
    };

    let nic = s
        .board
        .masters
        .iter()
        .find(|m| m.driver.as_deref() == Some("fsl_enetc") && m.attached)
        .map(|m| m.name.clone());
    let floods: Vec<&str> = s
        .drivers
        .iter()
        .filter(|d| d.dma == DmaPattern::EnetcPingFlood)
        .map(|d| d.device.as_str())
        .collect();
    if let Some(nic) = &nic {
        if floods != [nic.as_str()] {
            return Err(NotToday::Flood { nic: nic.clone() });
        }
    } else if !floods.is_empty() {
        return Err(NotToday::Flood {
            nic: "no device on this board".into(),
        });
    }
    for d in &s.drivers {
        let m = s
            .board
            .master(&d.device)
            .and_then(|i| s.board.masters.get(i));
        let same = m.is_some_and(|m| {
            m.has_shutdown == d.has_shutdown
                && m.driver.clone().unwrap_or_else(|| m.bus.name().to_string()) == d.name
        });
        if !same {
            return Err(NotToday::DriverOverride {
                device: d.device.clone(),
            });
        }
    }
    let mut steps: Vec<u32> = s.drivers.iter().filter_map(|d| d.steps).collect();
    steps.dedup();
    if steps.len() > 1 {
        return Err(NotToday::Steps);
    }

    let mut c = RebootConfig::new(kernel, s.board.clone());
    c.trigger = trigger;
    c.v3_enabled_at_probe = Switches::of(&s.kernel).v3_enabled_at_probe()?;
    c.cmdline = s.cmdline.clone();
    if let Some(&n) = steps.first() {
        c.max_actor_steps = n;
    }
    if let Some(p) = s.drivers.iter().find_map(|d| d.packets) {
        c.nic.flood_packets = p;
    }
    c.traffic = s
        .drivers
        .iter()
        .filter(|d| d.dma == DmaPattern::EngineTraffic)
        .map(|d| d.device.clone())
        .collect();
    Ok(c)
}
