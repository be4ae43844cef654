//! From a validated file to the real stack's configuration: the SMMU and its driver's and
//! core's switches for the kernel, the masters (with the file's stream-ID and direct-region
//! overrides), which of them boot probes, and each actor's steps.

use super::{DomainOp, StackActor, StackConfig, StackDevice, StackError, StackOp, StackProperty};
use crate::model::ScenarioFile;
use crate::vocab::{ActorKind, Dir, Op};
use arm_smmu::table::LpaeTables;
use arm_smmu::FirmwareDesc;
use iommu::{CoreConfig, DeviceDesc, DmaDirection};
use kernel_history::{KernelSpec, Switches};
use smmu_addr::Iova;

/// Whether the real stack has step `st`'s operation.
pub fn runs_step(st: &crate::model::Step) -> bool {
    matches!(
        st.op,
        Op::FailPgtableAlloc
            | Op::DmaMapSg
            | Op::DmaMapPage
            | Op::DeviceWrite
            | Op::DeviceRead
            | Op::ClaimDmaOwner
            | Op::ReleaseDmaOwner
            | Op::DmaUnmapPage
            | Op::DmaUnmapSg
            | Op::FqTimerExpiry
            | Op::IommuDomainAlloc
            | Op::IommuAttachDevice
            | Op::IommuMap
            | Op::IommuUnmap
            | Op::IommuDetachDevice
            | Op::IommuDomainFree
            | Op::DmaAllocCoherent
            | Op::DmaFreeCoherent
    ) || (matches!(
        st.op,
        Op::Probe | Op::DeferredProbe | Op::Remove | Op::PciHotUnplug | Op::Bind | Op::Unbind
    ) && st.device.is_some())
}

fn direction(d: Option<Dir>) -> DmaDirection {
    match d {
        Some(Dir::ToDevice) => DmaDirection::ToDevice,
        Some(Dir::FromDevice) => DmaDirection::FromDevice,
        Some(Dir::Bidirectional) | None => DmaDirection::Bidirectional,
    }
}

/// The real stack's configuration for `s` on `kernel`; `Err` names why it cannot run it.
pub fn config(s: &ScenarioFile, kernel: &KernelSpec) -> Result<StackConfig, StackError> {
    let (si, smmu) = s
        .board
        .smmus
        .iter()
        .enumerate()
        .find(|(_, d)| d.enabled && d.version == sim::SmmuVersion::V2)
        .ok_or(StackError::NoSmmuV2)?;
    let fw = FirmwareDesc {
        compatible: smmu.matched.clone(),
        reg_base: smmu.base,
        reg_size: smmu.size,
        dev_name: smmu.name.clone(),
        num_global_irqs: Some(smmu.global_irqs),
        num_context_irqs: smmu.context_irqs,
        dma_coherent: smmu.dma_coherent,
    };
    let sw = Switches::of(kernel);
    let behaviour = sw.driver_behaviour(kernel)?;
    let core = sw.core_config(CoreConfig {
        strict: s.cmdline.strict,
        passthrough: s.cmdline.passthrough,
        ..CoreConfig::default()
    });
    let is_smmu = |d: &str| s.board.smmus.iter().any(|m| m.name == d);
    let mut devices: Vec<StackDevice> = Vec::new();
    // The index of master `name` in `devices`, added on first use.
    let mut device = |name: &str| -> Result<usize, StackError> {
        if let Some(i) = devices.iter().position(|d| d.name == name) {
            return Ok(i);
        }
        let m = s
            .board
            .masters
            .iter()
            .find(|m| m.name == name && m.attached && m.smmu == si)
            .ok_or_else(|| StackError::NotAMaster {
                device: name.to_string(),
                smmu: smmu.name.clone(),
            })?;
        let decl = s.drivers.iter().find(|d| d.device == name);
        let bus = m.bus;
        // `stream-ids` replaces the firmware's IDs (as an edited device tree would).
        let ids: Vec<u32> = match decl.and_then(|d| d.stream_ids.clone()) {
            Some(ids) => ids,
            None => m.ids.iter().map(|id| id.fwid()).collect(),
        };
        let mut desc = DeviceDesc::new(&m.log_prefix(), bus, devices.len() as u64, &ids);
        desc.coherent = true;
        desc.direct_regions = decl.map(|d| d.direct_regions.clone()).unwrap_or_default();
        if let Some(bits) = decl.and_then(|d| d.dma_mask_bits) {
            desc.dma_mask = u64::MAX >> (64 - bits);
        }
        let wire_sid = m
            .wire_ids()
            .and_then(|w| w.first().copied())
            .or_else(|| m.ids.first().map(|id| id.sid))
            .map(u32::from)
            .or_else(|| ids.first().map(|f| f & 0xffff))
            .ok_or_else(|| StackError::NoStreamId {
                device: name.to_string(),
            })?;
        devices.push(StackDevice {
            name: name.to_string(),
            desc,
            wire_sid,
        });
        Ok(devices.len() - 1)
    };
    let mut actors = Vec::new();
    let mut smmu_probed_by_actor = false;
    let mut probed_by_script = Vec::new();
    // The device each domain handle is allocated for: an actor whose script names no device
    // (only `iommu-map`/`iommu-unmap` of another actor's domain) acts for that device, whose
    // stream its checks walk.
    let domain_device = |domain: &str| {
        s.actors.iter().flat_map(|a| &a.script).find_map(|st| {
            (st.op == Op::IommuDomainAlloc && st.domain.as_deref() == Some(domain))
                .then(|| st.device.clone())
                .flatten()
        })
    };
    for a in &s.actors {
        let mut script = Vec::new();
        let mut dev = match &a.device {
            Some(n) => Some(device(n)?),
            None if a.script.iter().all(|st| st.device.is_none()) => a
                .script
                .iter()
                .find_map(|st| st.domain.as_deref().and_then(domain_device))
                .map(|n| device(&n))
                .transpose()?,
            None => None,
        };
        for st in &a.script {
            let target = st.device.as_deref();
            if let Some(n) = target.filter(|n| is_smmu(n)) {
                script.push(match st.op {
                    Op::Probe => {
                        smmu_probed_by_actor = true;
                        StackOp::ProbeSmmu
                    }
                    Op::Unbind | Op::Remove => StackOp::RemoveSmmu(st.op.name()),
                    _ => {
                        return Err(StackError::UnsupportedSmmuOp {
                            op: st.op.name(),
                            smmu: n.to_string(),
                        })
                    }
                });
                continue;
            }
            if st.op == Op::IommuDomainFree {
                script.push(StackOp::Domain(DomainOp::Free {
                    domain: st.domain.clone().unwrap_or_default(),
                }));
                continue;
            }
            let d = match target {
                Some(n) => device(n)?,
                None => dev.ok_or(StackError::NoDevice { op: st.op.name() })?,
            };
            if dev.is_none() {
                dev = Some(d);
            }
            let buffer = st.buffer.clone().unwrap_or_default();
            let domain = st.domain.clone().unwrap_or_default();
            let (iova, size) = (
                st.iova.unwrap_or(Iova::ZERO),
                st.size.unwrap_or(crate::PAGE_SIZE.bytes()),
            );
            script.push(match st.op {
                Op::IommuDomainAlloc => StackOp::Domain(DomainOp::Alloc { domain }),
                Op::IommuAttachDevice => StackOp::Domain(DomainOp::Attach { domain }),
                Op::IommuMap => StackOp::Domain(DomainOp::Map {
                    domain,
                    iova,
                    size,
                    buffer: st.buffer.clone(),
                }),
                Op::IommuDetachDevice => StackOp::Domain(DomainOp::Detach { domain }),
                // The IOMMU probe ran when the device was added (at boot): bind is the
                // driver core's part only.
                Op::Bind => StackOp::Bind(d),
                Op::Unbind => StackOp::Unbind(d),
                Op::DmaAllocCoherent => StackOp::DmaAllocCoherent {
                    size: st.size.unwrap_or(4096),
                    buffer,
                },
                Op::DmaFreeCoherent => StackOp::DmaFreeCoherent { buffer },
                Op::IommuUnmap => StackOp::Domain(DomainOp::Unmap { domain, iova, size }),
                Op::Probe => {
                    probed_by_script.push(d);
                    StackOp::ProbeMaster(d)
                }
                Op::DeferredProbe => {
                    probed_by_script.push(d);
                    StackOp::DeferredProbe(d)
                }
                Op::ClaimDmaOwner => StackOp::ClaimDmaOwner {
                    device: d,
                    owner: st.owner.clone().filter(|o| !o.is_empty()),
                },
                Op::ReleaseDmaOwner => StackOp::ReleaseDmaOwner(d),
                Op::Remove | Op::PciHotUnplug => StackOp::Release(d),
                Op::FqTimerExpiry => StackOp::FqTimerExpiry(d),
                Op::DmaUnmapPage | Op::DmaUnmapSg => StackOp::DmaUnmap { buffer },
                Op::FailPgtableAlloc => StackOp::FailPgtableAlloc,
                Op::DmaMapSg => StackOp::DmaMapSg {
                    nents: st.nents.unwrap_or(1).max(1),
                    size: st.size.unwrap_or(crate::PAGE_SIZE.bytes()),
                    dir: direction(st.dir),
                    buffer,
                },
                Op::DmaMapPage => StackOp::DmaMapPage {
                    size: st.size.unwrap_or(crate::PAGE_SIZE.bytes()),
                    dir: direction(st.dir),
                    buffer,
                },
                Op::DeviceWrite | Op::DeviceRead => StackOp::DeviceAccess {
                    write: st.op == Op::DeviceWrite,
                    buffer,
                },
                other => return Err(StackError::UnsupportedOp { op: other.name() }),
            });
        }
        actors.push(StackActor {
            name: a.name.clone(),
            device: dev,
            engine: a.kind == ActorKind::DmaEngine,
            script,
        });
    }
    // Declared drivers are probed at boot, as are the masters no script probes.
    for d in &s.drivers {
        device(&d.device)?;
    }
    let boot_probed: Vec<usize> = (0..devices.len())
        .filter(|i| !probed_by_script.contains(i))
        .collect();
    if smmu_probed_by_actor && !boot_probed.is_empty() {
        return Err(StackError::ProbeWithMasters);
    }
    // No `[check]`: every property the stack has.
    let properties = if s.properties.is_empty() {
        StackProperty::ALL.to_vec()
    } else {
        s.properties.iter().filter_map(|p| p.stack).collect()
    };
    let model = sim::scenario::model_config(smmu);
    Ok(StackConfig {
        fw,
        model: mmu500::Mmu500Config {
            ias: s.smmu_ias.unwrap_or(model.ias),
            ..model
        },
        params: s.cmdline.smmu,
        behaviour,
        tables: sw.lpae_tables(if core.linux_faithful {
            LpaeTables::LINUX
        } else {
            LpaeTables::SAFE
        }),
        core,
        devices,
        actors,
        properties,
        hypervisor_loses_zero_stores: s
            .quirks
            .contains(&crate::vocab::Quirk::HypervisorLosesZeroStores),
        smmu_probed_by_actor,
        boot_probed,
    })
}
