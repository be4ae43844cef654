//! Reading a [`Board`] from a device tree: the walk over its nodes, CPUs, memory and platform
//! masters. The SMMU nodes and their `iommus` references are read in `load/smmu.rs`, the PCI
//! host bridges and their functions in `load/pci.rs`.

use super::{apply_ls1028a_tbus, Board, Bus, FwId, Master, MemRegion, MsiController};
use crate::drivers::{self, DriverInfo};
use crate::error::BoardError;
use crate::fdt::{fold, DeviceTree};
use smmu_addr::PhysAddr;

mod pci;
mod smmu;

pub(super) struct Loader<'a> {
    pub(super) t: &'a DeviceTree,
}

/// A platform device pending registration: (order key, master).
type Pending = (u32, Master);
/// A PCI function pending registration: ((domain, bus, devfn), master).
type PciFn = ((u32, u32, u32), Master);

impl Loader<'_> {
    pub(super) fn load(&self) -> Result<Board, BoardError> {
        let t = self.t;
        let root = 0usize;
        let model = t
            .strings(root, "model")?
            .and_then(|v| v.into_iter().next())
            .unwrap_or_default();
        let compatible = t.compatible(root)?;

        // SMMUs, and a phandle → SMMU index map.
        let mut smmus = Vec::new();
        let mut smmu_nodes = Vec::new();
        for idx in 0..t.nodes().len() {
            if let Some(s) = self.smmu(idx)? {
                smmus.push(s);
                smmu_nodes.push(idx);
            }
        }

        let mut platform: Vec<Pending> = Vec::new();
        let mut companions: Vec<Pending> = Vec::new();
        let mut pci: Vec<PciFn> = Vec::new();
        let domains = self.pci_domains()?;
        for idx in 0..t.nodes().len() {
            if !self.available_with_ancestors(idx) {
                continue;
            }
            if t.has_prop(idx, "iommus") && !self.is_pci_function(idx) {
                let ids = self.iommus(idx, &smmu_nodes)?;
                let Some((smmu, ids)) = ids else { continue };
                let compat = t.compatible(idx)?;
                let info = drivers::for_compatible(&compat);
                let creator = self.populating_driver(idx)?;
                let m = self.master(
                    self.platform_name(idx)?,
                    Bus::Platform,
                    info,
                    Some(t.path(idx)),
                    compat.clone(),
                    (smmu, smmus[smmu].enabled),
                    ids.clone(),
                    creator.as_ref().map(|d| d.name.to_string()),
                );
                if let Some(vname) = drivers::virtual_companion(&compat) {
                    let mut v = m.clone();
                    let e = drivers::ETNAVIV_VIRTUAL;
                    v.name = vname.into();
                    v.driver = Some(e.name.into());
                    v.has_shutdown = e.has_shutdown;
                    v.probe_rank = e.probe_rank;
                    v.node = None;
                    v.compatible = Vec::new();
                    v.created_by = Some(e.name.into());
                    companions.push((e.probe_rank, v));
                }
                match creator {
                    Some(d) => companions.push((d.probe_rank, m)),
                    None => platform.push((0, m)),
                }
            }
            if let Some(&domain) = domains.iter().find(|(n, _)| *n == idx).map(|(_, d)| d) {
                for (bdf, m) in self.pci_functions(idx, domain, &smmus, &smmu_nodes)? {
                    pci.push((bdf, m));
                }
            }
        }
        let (msi_controllers, its_nodes) = self.msi_controllers()?;
        let mut pci_hosts = Vec::new();
        for &(h, domain) in &domains {
            if let Some(host) = self.pci_host(h, domain, &smmu_nodes, &its_nodes)? {
                pci_hosts.push(host);
            }
        }
        pci_hosts.sort_by_key(|h| h.domain);
        companions.sort_by_key(|(r, _)| *r);
        pci.sort_by_key(|(k, _)| *k);
        let ls1028a = compatible.iter().any(|c| c == "fsl,ls1028a");
        let mut masters: Vec<Master> = platform
            .into_iter()
            .chain(companions)
            .map(|(_, m)| m)
            .chain(pci.into_iter().map(|(_, m)| m))
            .collect();
        if ls1028a {
            apply_ls1028a_tbus(&mut masters);
        }
        Ok(Board {
            model,
            compatible,
            smmus,
            masters,
            memory: self.memory()?,
            pci_hosts,
            msi_controllers,
            cpus: self.cpus(),
        })
    }

    /// The enabled GICv3 ITS nodes (`arm,gic-v3-its`) whose frame translates to a CPU address,
    /// and their node indices.
    fn msi_controllers(&self) -> Result<(Vec<MsiController>, Vec<usize>), BoardError> {
        let t = self.t;
        let mut its = Vec::new();
        let mut nodes = Vec::new();
        for idx in 0..t.nodes().len() {
            if !self.available_with_ancestors(idx)
                || !t.compatible(idx)?.iter().any(|c| c == "arm,gic-v3-its")
            {
                continue;
            }
            // An ITS whose frame this loader cannot place is left out (a host naming it then
            // has no MSI parent); nothing else on the board depends on it.
            let reg = t.reg(idx)?;
            let Some((addr, _)) = reg.first() else {
                continue;
            };
            let parent = t.node(idx).and_then(|n| n.parent).unwrap_or(0);
            let Some(base) = t.translate(parent, addr)? else {
                continue;
            };
            its.push(MsiController {
                path: t.path(idx),
                base,
            });
            nodes.push(idx);
        }
        Ok((its, nodes))
    }

    /// The CPUs `/cpus` declares.
    fn cpus(&self) -> u32 {
        let t = self.t;
        let Some(cpus) = t.find("/cpus") else {
            return 1;
        };
        let n = t.node(cpus).map_or(0, |node| {
            node.children
                .iter()
                .filter(|&&c| {
                    t.strings(c, "device_type")
                        .ok()
                        .flatten()
                        .is_some_and(|v| v.iter().any(|s| s == "cpu"))
                        && t.is_available(c)
                })
                .count()
        });
        (n as u32).max(1)
    }

    #[allow(clippy::too_many_arguments)]
    fn master(
        &self,
        name: String,
        bus: Bus,
        info: Option<DriverInfo>,
        node: Option<String>,
        compatible: Vec<String>,
        (smmu, attached): (usize, bool),
        ids: Vec<FwId>,
        created_by: Option<String>,
    ) -> Master {
        Master {
            name,
            bus,
            driver: info.filter(|d| d.binds).map(|d| d.name.to_string()),
            has_shutdown: info.is_some_and(|d| d.binds && d.has_shutdown),
            probes: info.is_none_or(|d| d.probes),
            probe_rank: info.map_or(drivers::UNKNOWN_RANK, |d| d.probe_rank),
            node,
            compatible,
            smmu,
            ids,
            tbu: None,
            attached,
            created_by,
        }
    }

    fn err(&self, idx: usize, prop: &str, reason: impl Into<String>) -> BoardError {
        BoardError::Property {
            node: self.t.path(idx),
            property: prop.into(),
            reason: reason.into(),
        }
    }

    fn available_with_ancestors(&self, mut idx: usize) -> bool {
        loop {
            if !self.t.is_available(idx) {
                return false;
            }
            match self.t.node(idx).and_then(|n| n.parent) {
                Some(p) => idx = p,
                None => return true,
            }
        }
    }

    /// If the node's parent is not a bus that `of_platform_populate` descends into, the device
    /// is registered by the parent's driver at its probe (CAAM job rings): that driver.
    fn populating_driver(&self, idx: usize) -> Result<Option<DriverInfo>, BoardError> {
        let t = self.t;
        let Some(parent) = t.node(idx).and_then(|n| n.parent) else {
            return Ok(None);
        };
        if parent == 0 {
            return Ok(None);
        }
        let pc = t.compatible(parent)?;
        let is_bus = pc.iter().any(|c| {
            matches!(
                c.as_str(),
                "simple-bus" | "simple-mfd" | "isa" | "arm,amba-bus"
            )
        });
        if is_bus {
            return Ok(None);
        }
        Ok(Some(
            drivers::for_compatible(&t.compatible(idx)?).unwrap_or(DriverInfo {
                name: "platform",
                has_shutdown: false,
                shutdown_fact: drivers::Fact::Unverified,
                binds: false,
                probes: true,
                probe_rank: drivers::UNKNOWN_RANK,
            }),
        ))
    }

    /// `of_device_make_bus_id`: `<translated reg>.<node name>`, prefixing untranslatable
    /// levels as `<node>:`.
    fn platform_name(&self, idx: usize) -> Result<String, BoardError> {
        let t = self.t;
        let mut cur = idx;
        let mut name: Option<String> = None;
        for _ in 0..=crate::fdt::MAX_DEPTH {
            let Some(node) = t.node(cur) else { break };
            let Some(parent) = node.parent else { break };
            let reg = t.reg(cur)?;
            if let Some((addr, _)) = reg.first() {
                if let Some(a) = t.translate(parent, addr)? {
                    let base = node.base_name();
                    return Ok(match name {
                        Some(n) => format!("{a:x}.{base}:{n}"),
                        None => format!("{a:x}.{base}"),
                    });
                }
            }
            name = Some(match name {
                Some(n) => format!("{}:{n}", node.name),
                None => node.name.clone(),
            });
            cur = parent;
        }
        Ok(name.unwrap_or_default())
    }

    fn memory(&self) -> Result<Vec<MemRegion>, BoardError> {
        let t = self.t;
        let mut out = Vec::new();
        for idx in 0..t.nodes().len() {
            let is_mem = t
                .prop(idx, "device_type")
                .is_some_and(|v| v.starts_with(b"memory\0"));
            if !is_mem || !t.is_available(idx) {
                continue;
            }
            for (a, size) in t.reg(idx)? {
                if size > 0 {
                    // A /memory node sits under the root: its `reg` address is already a CPU
                    // physical address (Linux's early memory scan reads it untranslated).
                    out.push(MemRegion {
                        base: PhysAddr::new(fold(&a)),
                        size,
                    });
                }
            }
        }
        Ok(out)
    }
}
