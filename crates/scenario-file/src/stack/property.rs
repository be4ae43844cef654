//! The properties the real stack checks, and the checks of the state a run ends in (groups,
//! domains, references, warnings), read from the IOMMU core and the kernel log.

use super::StackConfig;
use iommu::{DeviceId, IommuCore};
use std::collections::{BTreeMap, BTreeSet};

/// A property the real stack checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StackProperty {
    /// No NULL dereference or other oops.
    NoOops,
    /// No device access faults in the SMMU.
    NoFault,
    /// No device access on an IOVA bypasses translation (SMMU disabled, or its context bank
    /// freed under it), landing on whatever memory has that physical address.
    NoStrayDma,
    /// Nothing is used after it was freed.
    NoUseAfterFree,
    /// No TLB sync times out (the driver's `TLB sync timed out` message).
    NoSyncTimeout,
    /// No task waits forever for a kernel mutex.
    NoDeadlock,
    /// Masters that share a stream ID are in one IOMMU group.
    OneGroupPerStream,
    /// Every member of a group is attached to one domain.
    OneDomainPerGroup,
    /// No kernel warning (`WARN_ON`) was printed.
    NoKernelWarning,
    /// Every group reference taken is put.
    NoRefcountLeak,
    /// No `iommu_unmap` reports part of a block entry unmapped, leaving the rest of the block
    /// mapped through a new table (the split `33729a5fc0ca` removed).
    NoBlockSplit,
    /// The DMA API hands out no IOVA below its domain's first allocatable page (`start_pfn`,
    /// at least 1: IOVA page 0 is never allocated).
    NoIovaBelowStart,
    /// No IOVA an `iommu_unmap` reported unmapped still translates for the device afterwards
    /// (the lost split race `85c7a0f1ef62` fixed).
    NoMappingAfterUnmap,
    /// Every `iommu_map` of a range inside its domain's aperture succeeds, and the device's
    /// own transaction at its first IOVA then reaches the physical address it was mapped to
    /// (the walk a stage-2 PGD past its first page broke before `d71fa842d33c`).
    MapReachable,
}

impl StackProperty {
    /// Every property.
    pub const ALL: [StackProperty; 14] = [
        StackProperty::NoOops,
        StackProperty::NoFault,
        StackProperty::NoStrayDma,
        StackProperty::NoUseAfterFree,
        StackProperty::NoSyncTimeout,
        StackProperty::NoDeadlock,
        StackProperty::OneGroupPerStream,
        StackProperty::OneDomainPerGroup,
        StackProperty::NoKernelWarning,
        StackProperty::NoRefcountLeak,
        StackProperty::NoBlockSplit,
        StackProperty::NoIovaBelowStart,
        StackProperty::NoMappingAfterUnmap,
        StackProperty::MapReachable,
    ];

    /// The name in files.
    pub fn name(self) -> &'static str {
        match self {
            StackProperty::NoOops => "no-oops",
            StackProperty::NoFault => "no-fault",
            StackProperty::NoStrayDma => "no-stray-dma",
            StackProperty::NoUseAfterFree => "no-use-after-free",
            StackProperty::NoSyncTimeout => "no-sync-timeout",
            StackProperty::NoDeadlock => "no-deadlock",
            StackProperty::OneGroupPerStream => "one-group-per-stream",
            StackProperty::OneDomainPerGroup => "one-domain-per-group",
            StackProperty::NoKernelWarning => "no-kernel-warning",
            StackProperty::NoRefcountLeak => "no-refcount-leak",
            StackProperty::NoBlockSplit => "no-block-split",
            StackProperty::NoIovaBelowStart => "no-iova-below-start",
            StackProperty::NoMappingAfterUnmap => "no-mapping-after-unmap",
            StackProperty::MapReachable => "map-reachable",
        }
    }

    /// The property called `name`.
    pub fn from_name(name: &str) -> Option<StackProperty> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// The violations the end state shows: `probed` is each probed device's index into
/// [`StackConfig::devices`] with its core id; `log` the kernel log.
pub(super) fn end_checks(
    cfg: &StackConfig,
    core: &IommuCore,
    probed: &BTreeMap<usize, DeviceId>,
    log: &[String],
) -> Vec<(StackProperty, String)> {
    let mut out = Vec::new();
    let name = |i: usize| cfg.devices[i].name.as_str();
    // Masters sharing a stream ID: one group.
    let mut by_sid: BTreeMap<u32, BTreeMap<u32, Vec<&str>>> = BTreeMap::new();
    for (&i, &id) in probed {
        let Some(g) = core.group_of(id) else { continue };
        for fwid in &cfg.devices[i].desc.fwspec.ids {
            by_sid
                .entry(fwid & 0xffff)
                .or_default()
                .entry(g)
                .or_default()
                .push(name(i));
        }
    }
    for (sid, groups) in by_sid {
        if groups.len() > 1 {
            let who: Vec<String> = groups
                .iter()
                .map(|(g, m)| format!("group {g} ({})", m.join(", ")))
                .collect();
            out.push((
                StackProperty::OneGroupPerStream,
                format!(
                    "stream ID {sid:#x} is shared by masters in {}: the stream's S2CR can point at only one group's domain",
                    who.join(" and ")
                ),
            ));
        }
    }
    // One domain per group.
    let mut by_group: BTreeMap<u32, Vec<(usize, Option<u32>)>> = BTreeMap::new();
    for (&i, &id) in probed {
        if let Some(g) = core.group_of(id) {
            let dom = core.device_domain(id).map(|d| d.0);
            by_group.entry(g).or_default().push((i, dom));
        }
    }
    for (g, members) in by_group {
        let doms: BTreeSet<Option<u32>> = members.iter().map(|m| m.1).collect();
        if doms.len() > 1 {
            let who: Vec<String> = members
                .iter()
                .map(|(i, d)| match d {
                    Some(d) => format!("{} in domain {d}", name(*i)),
                    None => format!("{} in no domain", name(*i)),
                })
                .collect();
            out.push((
                StackProperty::OneDomainPerGroup,
                format!(
                    "group {g} has members attached to {} domains: {}",
                    doms.len(),
                    who.join(", ")
                ),
            ));
        }
    }
    // Every reference put.
    for g in core.groups() {
        if let Some(n) = core.group_refs_outstanding(g).filter(|n| *n != 0) {
            out.push((
                StackProperty::NoRefcountLeak,
                format!(
                    "group {g} holds {n} reference(s) taken with iommu_group_get() and never put"
                ),
            ));
        }
    }
    // Warnings and the driver's own report of a sync that never completed.
    for line in log {
        if line.contains("WARNING:") {
            out.push((StackProperty::NoKernelWarning, line.clone()));
        }
        if line.contains("TLB sync timed out") {
            out.push((StackProperty::NoSyncTimeout, line.clone()));
        }
    }
    out
}
