//! Boards: the SMMUs, their DMA masters and DRAM, as Linux would see them, read from a real
//! flattened device tree or built in ([`crate::kbox`]).
//!
//! What is read and how Linux reads it:
//! * SMMU nodes by `compatible` (first entry of the node's list that Linux's arm-smmu match
//!   table has), `reg` with the parent's `#address-cells`/`#size-cells`, `#global-interrupts`
//!   (mandatory), `interrupts` (global vs context), `#iommu-cells` (1 or 2),
//!   `stream-match-mask`, `dma-coherent`, `status`.
//! * Platform masters by `iommus = <&smmu sid [mask]>`; the firmware ID is built as
//!   `arm_smmu_of_xlate` does: `sid | mask << 16`, mask from the 2nd cell or the SMMU's
//!   `stream-match-mask`.
//! * PCI functions by the host bridge's `iommu-map` (+ `iommu-map-mask`), for the functions that
//!   exist: DT child nodes of an ECAM host, and the root port 00:00.0 of a root complex.
//! * Device names as Linux makes them (`of_device_make_bus_id`, `DDDD:BB:DD.F`).

use serde::{Deserialize, Serialize};

use crate::drivers::{self, DriverInfo};
use crate::error::BoardError;
use crate::fdt::{fold, DeviceTree};

/// SMMU architecture version as arm-smmu's match table assigns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmmuVersion {
    /// SMMUv1.
    V1,
    /// SMMUv1 with 64 KiB register pages (MMU-401).
    V1_64K,
    /// SMMUv2.
    V2,
    /// SMMUv3 (`arm,smmu-v3`, Linux's arm-smmu-v3 driver).
    V3,
}

/// Implementation model as arm-smmu's match table assigns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmmuModel {
    /// No implementation quirks.
    Generic,
    /// ARM MMU-500 (also NVIDIA's MMU-500 pair).
    ArmMmu500,
    /// Cavium ThunderX.
    Cavium,
    /// Qualcomm SMMUv2.
    Qcom,
}

/// Linux's arm-smmu OF match table: compatible → (version, model).
pub const SMMU_COMPATIBLES: &[(&str, SmmuVersion, SmmuModel)] = &[
    ("arm,smmu-v1", SmmuVersion::V1, SmmuModel::Generic),
    ("arm,smmu-v2", SmmuVersion::V2, SmmuModel::Generic),
    ("arm,mmu-400", SmmuVersion::V1, SmmuModel::Generic),
    ("arm,mmu-401", SmmuVersion::V1_64K, SmmuModel::Generic),
    ("arm,mmu-500", SmmuVersion::V2, SmmuModel::ArmMmu500),
    ("cavium,smmu-v2", SmmuVersion::V2, SmmuModel::Cavium),
    ("nvidia,smmu-500", SmmuVersion::V2, SmmuModel::ArmMmu500),
    ("qcom,smmu-v2", SmmuVersion::V2, SmmuModel::Qcom),
    // arm-smmu-v3's match table has one entry.
    ("arm,smmu-v3", SmmuVersion::V3, SmmuModel::Generic),
];

/// Which entry of [`SMMU_COMPATIBLES`] a compatible list matches (Linux prefers the earliest
/// string of the node's list that the table has).
pub fn match_smmu(compatible: &[String]) -> Option<(&'static str, SmmuVersion, SmmuModel)> {
    compatible
        .iter()
        .find_map(|c| SMMU_COMPATIBLES.iter().find(|(k, _, _)| k == c).copied())
}

/// One SMMU instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmmuDesc {
    /// DT path (empty for a built-in board without one).
    pub path: String,
    /// Linux device name, e.g. `5000000.iommu`.
    pub name: String,
    /// The node's full compatible list.
    pub compatible: Vec<String>,
    /// The entry Linux matched.
    pub matched: String,
    /// Architecture version.
    pub version: SmmuVersion,
    /// Implementation model.
    pub model: SmmuModel,
    /// MMIO base.
    pub base: u64,
    /// MMIO size.
    pub size: u64,
    /// `#global-interrupts`.
    pub global_irqs: u32,
    /// Context interrupts (`interrupts` entries minus the global ones).
    pub context_irqs: u32,
    /// GIC SPI numbers of every interrupt, in `interrupts` order (when the parent is a GIC
    /// with 3 cells; empty otherwise).
    pub irq_spis: Vec<u32>,
    /// `#iommu-cells` (1 or 2).
    pub iommu_cells: u32,
    /// `stream-match-mask`, if present.
    pub stream_match_mask: Option<u16>,
    /// `dma-coherent` (coherent table walk).
    pub dma_coherent: bool,
    /// `status` okay (Linux probes it).
    pub enabled: bool,
    /// `interrupt-names` (SMMUv3 wires its lines by name: `eventq`, `priq`, `cmdq-sync`,
    /// `gerror`, or `combined`); empty when absent.
    #[serde(default)]
    pub irq_names: Vec<String>,
}

/// Bus of a master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Bus {
    /// The platform bus.
    Platform,
    /// The PCI bus.
    Pci,
}

impl Bus {
    /// Bus name as `dev_printk` prints it for an unbound device.
    pub fn name(self) -> &'static str {
        match self {
            Bus::Platform => "platform",
            Bus::Pci => "pci",
        }
    }
}

/// One firmware stream ID: what `of_xlate` stores in the fwspec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FwId {
    /// Stream ID.
    pub sid: u16,
    /// SMR mask (bits ignored when matching).
    pub mask: u16,
}

impl FwId {
    /// The fwspec word: `sid | mask << 16`.
    pub fn fwid(self) -> u32 {
        u32::from(self.sid) | (u32::from(self.mask) << 16)
    }
}

/// A DMA master that references an SMMU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Master {
    /// Linux device name (`2140000.mmc`, `0000:00:00.0`, `etnaviv`).
    pub name: String,
    /// Bus.
    pub bus: Bus,
    /// Driver name when a driver binds; `None` prints the bus name instead.
    pub driver: Option<String>,
    /// Whether the driver has a `.shutdown` method.
    pub has_shutdown: bool,
    /// Whether any driver probes it (and so gives it an IOMMU group at boot).
    pub probes: bool,
    /// Seed kernel's driver probe order ([`DriverInfo::probe_rank`]).
    pub probe_rank: u32,
    /// DT node path (`None` for a device a driver created, like `etnaviv`).
    pub node: Option<String>,
    /// DT compatible list.
    pub compatible: Vec<String>,
    /// Index into [`Board::smmus`].
    pub smmu: usize,
    /// Firmware stream IDs.
    pub ids: Vec<FwId>,
    /// TBU the master sits behind (bits 14:10 of the incoming stream ID), where known.
    pub tbu: Option<u8>,
    /// False when its SMMU is disabled: Linux then gives it no IOMMU.
    pub attached: bool,
    /// Name of the driver that registers this device at its own probe (CAAM job rings,
    /// etnaviv's virtual device); `None` for devices the bus core registers.
    pub created_by: Option<String>,
}

impl Master {
    /// The `dev_printk` prefix: `"<driver> <name>"`, or `"<bus> <name>"` when unbound.
    pub fn log_prefix(&self) -> String {
        format!(
            "{} {}",
            self.driver.as_deref().unwrap_or(self.bus.name()),
            self.name
        )
    }

    /// Stream IDs as they arrive at the SMMU: the TBU number in bits 14:10.
    pub fn wire_ids(&self) -> Option<Vec<u16>> {
        let tbu = u16::from(self.tbu?);
        Some(self.ids.iter().map(|id| id.sid | (tbu << 10)).collect())
    }
}

/// A DRAM region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemRegion {
    /// Physical base.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

/// A whole board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Board {
    /// Root `model` (what `Hardware name:` prints, without ` (DT)`).
    pub model: String,
    /// Root compatible list.
    pub compatible: Vec<String>,
    /// SMMU instances in DT order.
    pub smmus: Vec<SmmuDesc>,
    /// Masters in bus registration order: platform (DT order, then driver-created devices in
    /// the creating drivers' probe order), then PCI (domain, bus, devfn).
    pub masters: Vec<Master>,
    /// DRAM (`/memory` nodes; empty when the bootloader would add them).
    pub memory: Vec<MemRegion>,
    /// PCI host bridges with an `iommu-map`, in PCI domain order.
    #[serde(default)]
    pub pci_hosts: Vec<PciHost>,
    /// CPUs the `/cpus` node declares (`device_type = "cpu"` children that are available); 1
    /// when the tree has none.
    #[serde(default = "one_cpu")]
    pub cpus: u32,
}

fn one_cpu() -> u32 {
    1
}

/// A PCI host bridge and how its requester IDs reach SMMUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciHost {
    /// DT path.
    pub path: String,
    /// PCI domain (segment).
    pub domain: u32,
    /// `iommu-map-mask` (all ones when absent).
    pub map_mask: u32,
    /// `iommu-map` entries.
    pub iommu_map: Vec<IommuMapEntry>,
}

/// One `iommu-map` entry: requester IDs `rid_base..rid_base+len` map to stream IDs from
/// `sid_base` on SMMU `smmu` (an index into [`Board::smmus`]; `None` if the phandle is not an
/// SMMU this loader knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IommuMapEntry {
    /// First requester ID (bus << 8 | devfn) of the range.
    pub rid_base: u32,
    /// The SMMU, by index.
    pub smmu: Option<usize>,
    /// Stream ID of `rid_base`.
    pub sid_base: u32,
    /// Number of requester IDs.
    pub len: u32,
}

impl Board {
    /// `Hardware name:` line value, as arm64's `dump_stack` prints it.
    pub fn hardware_name(&self) -> String {
        format!("{} (DT)", self.model)
    }

    /// Index of the master named `name`.
    pub fn master(&self, name: &str) -> Option<usize> {
        self.masters.iter().position(|m| m.name == name)
    }

    /// Masters in the order their drivers first probe them on the seed kernel (stable in
    /// registration order within one rank), skipping unattached and never-probed ones. This is
    /// the order in which IOMMU groups are created at boot.
    pub fn probe_order(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.masters.len())
            .filter(|&i| self.masters[i].attached && self.masters[i].probes)
            .collect();
        v.sort_by_key(|&i| self.masters[i].probe_rank);
        v
    }

    /// Expected IOMMU group of each master (index-aligned with `masters`): in probe order a
    /// master whose set of stream IDs equals an earlier master's on the same SMMU joins that
    /// group, otherwise it gets the next number. A simplified stand-in for the driver's
    /// run-time decision (S2CR group reuse, PCI aliasing).
    pub fn expected_groups(&self) -> Vec<Option<u32>> {
        let mut groups = vec![None; self.masters.len()];
        let mut seen: Vec<(usize, Vec<FwId>, u32)> = Vec::new();
        let mut next = 0u32;
        for i in self.probe_order() {
            let m = &self.masters[i];
            let mut key = m.ids.clone();
            key.sort();
            key.dedup();
            let g = match seen.iter().find(|(s, k, _)| *s == m.smmu && *k == key) {
                Some((_, _, g)) => *g,
                None => {
                    next += 1;
                    seen.push((m.smmu, key, next - 1));
                    next - 1
                }
            };
            groups[i] = Some(g);
        }
        groups
    }

    /// Read a board from a flattened device tree.
    pub fn from_dtb(data: &[u8]) -> Result<Board, BoardError> {
        let t = DeviceTree::parse(data)?;
        Loader { t: &t }.load()
    }
}

struct Loader<'a> {
    t: &'a DeviceTree,
}

/// A platform device pending registration: (order key, master).
type Pending = (u32, Master);
/// A PCI function pending registration: ((domain, bus, devfn), master).
type PciFn = ((u32, u32, u32), Master);

impl Loader<'_> {
    fn load(&self) -> Result<Board, BoardError> {
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
        let mut pci_hosts = Vec::new();
        for &(h, domain) in &domains {
            if let Some(host) = self.pci_host(h, domain, &smmu_nodes)? {
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
            cpus: self.cpus(),
        })
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

    /// A host bridge's `iommu-map` as written (validated by [`Self::pci_functions`]).
    fn pci_host(
        &self,
        host: usize,
        domain: u32,
        smmu_nodes: &[usize],
    ) -> Result<Option<PciHost>, BoardError> {
        let t = self.t;
        let Some(map) = t.cells(host, "iommu-map")? else {
            return Ok(None);
        };
        let iommu_map = map
            .chunks_exact(4)
            .map(|e| IommuMapEntry {
                rid_base: e[0],
                smmu: t
                    .by_phandle(e[1])
                    .and_then(|n| smmu_nodes.iter().position(|&x| x == n)),
                sid_base: e[2],
                len: e[3],
            })
            .collect();
        Ok(Some(PciHost {
            path: t.path(host),
            domain,
            map_mask: t.u32_prop(host, "iommu-map-mask")?.unwrap_or(0xffff_ffff),
            iommu_map,
        }))
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

    fn smmu(&self, idx: usize) -> Result<Option<SmmuDesc>, BoardError> {
        let t = self.t;
        let compatible = t.compatible(idx)?;
        let Some((matched, version, model)) = match_smmu(&compatible) else {
            return Ok(None);
        };
        let enabled = self.available_with_ancestors(idx);
        let reg = t.reg(idx)?;
        let (addr, size) = reg
            .first()
            .cloned()
            .ok_or_else(|| BoardError::MissingProperty {
                node: t.path(idx),
                property: "reg".into(),
            })?;
        let parent = t.node(idx).and_then(|n| n.parent).unwrap_or(0);
        let base = t
            .translate(parent, &addr)?
            .ok_or_else(|| self.err(idx, "reg", "address does not translate to a CPU address"))?;
        let v3 = version == SmmuVersion::V3;
        let global = t.u32_prop(idx, "#global-interrupts")?;
        let global = match global {
            Some(g) => g,
            // SMMUv3 has no global/context split: its lines are named.
            None if v3 => 0,
            None if enabled => {
                return Err(BoardError::MissingProperty {
                    node: t.path(idx),
                    property: "#global-interrupts".into(),
                })
            }
            None => 0,
        };
        let cells = match t.u32_prop(idx, "#iommu-cells")? {
            Some(c) => c,
            // Linux never probes a disabled SMMU, so it is not held to the binding.
            None if !enabled => 1,
            None => {
                return Err(BoardError::MissingProperty {
                    node: t.path(idx),
                    property: "#iommu-cells".into(),
                })
            }
        };
        if v3 && cells != 1 && enabled {
            return Err(self.err(
                idx,
                "#iommu-cells",
                format!("{cells} (arm-smmu-v3 takes 1)"),
            ));
        }
        if !(1..=2).contains(&cells) {
            return Err(self.err(
                idx,
                "#iommu-cells",
                format!("{cells} (arm-smmu takes 1 or 2)"),
            ));
        }
        let smm = match t.u32_prop(idx, "stream-match-mask")? {
            Some(m) if m > 0xffff => {
                return Err(self.err(idx, "stream-match-mask", format!("{m:#x} exceeds 16 bits")))
            }
            Some(m) => Some(m as u16),
            None => None,
        };
        let (nirq, spis) = match self.interrupts(idx) {
            Ok(v) => v,
            Err(_) if !enabled => (0, Vec::new()),
            Err(e) => return Err(e),
        };
        if enabled && !v3 && nirq <= global {
            return Err(self.err(
                idx,
                "interrupts",
                // In u64: `#global-interrupts = <0xffffffff>` must not overflow (Linux's %d
                // would print a wrapped 0 here).
                format!(
                    "found {nirq} interrupts but expected at least {}",
                    u64::from(global) + 1
                ),
            ));
        }
        Ok(Some(SmmuDesc {
            path: t.path(idx),
            name: self.platform_name(idx)?,
            compatible,
            matched: matched.into(),
            version,
            model,
            base,
            size,
            global_irqs: global,
            context_irqs: nirq.saturating_sub(global),
            irq_spis: spis,
            iommu_cells: cells,
            stream_match_mask: smm,
            dma_coherent: t.has_prop(idx, "dma-coherent"),
            enabled,
            irq_names: t.strings(idx, "interrupt-names")?.unwrap_or_default(),
        }))
    }

    /// Number of `interrupts` entries (cells / the interrupt parent's `#interrupt-cells`), and
    /// the SPI numbers when the parent uses GIC-style 3 cells.
    fn interrupts(&self, idx: usize) -> Result<(u32, Vec<u32>), BoardError> {
        let t = self.t;
        if let Some(ext) = t.cells(idx, "interrupts-extended")? {
            // <phandle cells...>*: walk it with each parent's #interrupt-cells.
            let (mut i, mut n) = (0usize, 0u32);
            while i < ext.len() {
                let ph = ext[i];
                let p = t
                    .by_phandle(ph)
                    .ok_or_else(|| BoardError::DanglingPhandle {
                        node: t.path(idx),
                        property: "interrupts-extended".into(),
                        phandle: ph,
                    })?;
                let c = t.u32_prop(p, "#interrupt-cells")?.unwrap_or(0) as usize;
                i += 1 + c;
                n += 1;
            }
            if i != ext.len() {
                return Err(self.err(idx, "interrupts-extended", "truncated entry"));
            }
            return Ok((n, Vec::new()));
        }
        let Some(cells) = t.cells(idx, "interrupts")? else {
            return Ok((0, Vec::new()));
        };
        let parent = self.interrupt_parent(idx)?;
        let ic = match parent {
            Some(p) => t.u32_prop(p, "#interrupt-cells")?.unwrap_or(0),
            None => 0,
        };
        if ic == 0 {
            return Err(self.err(
                idx,
                "interrupts",
                "no interrupt parent with #interrupt-cells",
            ));
        }
        if cells.len() % ic as usize != 0 {
            return Err(self.err(
                idx,
                "interrupts",
                format!(
                    "{} cells is not a multiple of #interrupt-cells {ic}",
                    cells.len()
                ),
            ));
        }
        let spis = if ic == 3 {
            cells
                .chunks_exact(3)
                .filter(|c| c[0] == 0)
                .map(|c| c[1])
                .collect()
        } else {
            Vec::new()
        };
        Ok(((cells.len() / ic as usize) as u32, spis))
    }

    fn interrupt_parent(&self, mut idx: usize) -> Result<Option<usize>, BoardError> {
        let t = self.t;
        for _ in 0..=crate::fdt::MAX_DEPTH {
            if let Some(ph) = t.u32_prop(idx, "interrupt-parent")? {
                return t
                    .by_phandle(ph)
                    .map(Some)
                    .ok_or_else(|| BoardError::DanglingPhandle {
                        node: t.path(idx),
                        property: "interrupt-parent".into(),
                        phandle: ph,
                    });
            }
            match t.node(idx).and_then(|n| n.parent) {
                Some(p) => idx = p,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Parse `iommus`: returns the SMMU index and IDs of the entries that point at known SMMUs
    /// (all entries must point at the same SMMU, as arm-smmu requires).
    fn iommus(
        &self,
        idx: usize,
        smmu_nodes: &[usize],
    ) -> Result<Option<(usize, Vec<FwId>)>, BoardError> {
        let t = self.t;
        let cells = t.cells(idx, "iommus")?.unwrap_or_default();
        let mut i = 0usize;
        let mut smmu = None;
        let mut ids = Vec::new();
        while i < cells.len() {
            let ph = cells[i];
            let target = t
                .by_phandle(ph)
                .ok_or_else(|| BoardError::DanglingPhandle {
                    node: t.path(idx),
                    property: "iommus".into(),
                    phandle: ph,
                })?;
            let n = t.u32_prop(target, "#iommu-cells")?.ok_or_else(|| {
                self.err(
                    idx,
                    "iommus",
                    format!("target {} has no #iommu-cells", t.path(target)),
                )
            })? as usize;
            let args = cells.get(i + 1..i + 1 + n).ok_or_else(|| {
                self.err(
                    idx,
                    "iommus",
                    format!("entry for {} is truncated", t.path(target)),
                )
            })?;
            i += 1 + n;
            let Some(s) = smmu_nodes.iter().position(|&x| x == target) else {
                continue;
            };
            if smmu.is_some_and(|x| x != s) {
                return Err(self.err(idx, "iommus", "entries point at different SMMUs"));
            }
            smmu = Some(s);
            ids.push(self.xlate(idx, "iommus", target, args)?);
        }
        Ok(smmu.map(|s| (s, ids)))
    }

    /// `arm_smmu_of_xlate`: sid = args[0]; mask = args[1] or the SMMU's stream-match-mask.
    fn xlate(
        &self,
        idx: usize,
        prop: &str,
        smmu_node: usize,
        args: &[u32],
    ) -> Result<FwId, BoardError> {
        let sid = args.first().copied().unwrap_or(0);
        let mask = match args.get(1) {
            Some(&m) => m,
            None => self
                .t
                .u32_prop(smmu_node, "stream-match-mask")?
                .unwrap_or(0),
        };
        if sid > 0xffff || mask > 0xffff {
            return Err(self.err(
                idx,
                prop,
                format!("stream ID {sid:#x} / mask {mask:#x} exceeds 16 bits"),
            ));
        }
        Ok(FwId {
            sid: sid as u16,
            mask: mask as u16,
        })
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

    fn is_pci_function(&self, idx: usize) -> bool {
        let t = self.t;
        t.node(idx)
            .and_then(|n| n.parent)
            .and_then(|p| t.prop(p, "device_type"))
            .is_some_and(|v| v.starts_with(b"pci"))
    }

    fn is_pci_host(&self, idx: usize) -> bool {
        let t = self.t;
        t.prop(idx, "device_type")
            .is_some_and(|v| v.starts_with(b"pci"))
            && !self.is_pci_function(idx)
    }

    fn is_ecam_host(&self, idx: usize) -> Result<bool, BoardError> {
        Ok(self
            .t
            .compatible(idx)?
            .iter()
            .any(|c| c == "pci-host-ecam-generic"))
    }

    /// Domain numbers of the enabled host bridges: `linux,pci-domain` if present, else a
    /// counter in host-driver probe order (generic ECAM hosts first, then the others, each in
    /// DT order), which gives the seed's 0000 = ENETC ECAM, 0001/0002 = pcie1/pcie2.
    fn pci_domains(&self) -> Result<Vec<(usize, u32)>, BoardError> {
        let t = self.t;
        let hosts: Vec<usize> = (0..t.nodes().len())
            .filter(|&i| self.is_pci_host(i) && self.available_with_ancestors(i))
            .collect();
        let mut out = Vec::new();
        let mut next = 0u32;
        let mut ordered = Vec::new();
        for &h in &hosts {
            if self.is_ecam_host(h)? {
                ordered.push(h);
            }
        }
        for &h in &hosts {
            if !self.is_ecam_host(h)? {
                ordered.push(h);
            }
        }
        for h in ordered {
            let d = match t.u32_prop(h, "linux,pci-domain")? {
                Some(d) => d,
                None => {
                    next += 1;
                    next - 1
                }
            };
            out.push((h, d));
        }
        Ok(out)
    }

    /// The PCI functions of a host bridge that reference an SMMU through its `iommu-map`.
    fn pci_functions(
        &self,
        host: usize,
        domain: u32,
        smmus: &[SmmuDesc],
        smmu_nodes: &[usize],
    ) -> Result<Vec<PciFn>, BoardError> {
        let t = self.t;
        let Some(map) = t.cells(host, "iommu-map")? else {
            return Ok(Vec::new());
        };
        if map.is_empty() || map.len() % 4 != 0 {
            return Err(self.err(
                host,
                "iommu-map",
                format!("bad length {} bytes (entries are 4 cells: rid-base, phandle, sid-base, length)", map.len() * 4),
            ));
        }
        let map_mask = t.u32_prop(host, "iommu-map-mask")?.unwrap_or(0xffff_ffff);
        for e in map.chunks_exact(4) {
            if t.by_phandle(e[1]).is_none() {
                return Err(BoardError::DanglingPhandle {
                    node: t.path(host),
                    property: "iommu-map".into(),
                    phandle: e[1],
                });
            }
            if e[0] & !map_mask != 0 {
                return Err(self.err(
                    host,
                    "iommu-map",
                    format!("rid-base {:#x} outside iommu-map-mask {map_mask:#x}", e[0]),
                ));
            }
        }
        let first_bus = t
            .cells(host, "bus-range")?
            .and_then(|b| b.first().copied())
            .unwrap_or(0);
        // Functions that exist: (bus, devfn, node, compatible).
        let mut funcs: Vec<(u32, u32, Option<usize>)> = Vec::new();
        let ecam = self.is_ecam_host(host)?;
        if ecam {
            for &c in &t.node(host).map(|n| n.children.clone()).unwrap_or_default() {
                if !t.is_available(c) {
                    continue;
                }
                let Some(reg) = t.cells(c, "reg")? else {
                    continue;
                };
                let hi = *reg.first().ok_or_else(|| self.err(c, "reg", "empty"))?;
                funcs.push(((hi >> 16) & 0xff, (hi >> 8) & 0xff, Some(c)));
            }
        }
        // A root complex (or an ECAM host whose functions the DT does not list) has its root
        // port at 00:00.0; endpoints behind it are not modelled.
        if funcs.is_empty() {
            funcs.push((first_bus, 0, None));
        }
        let mut out = Vec::new();
        for (bus, devfn, node) in funcs {
            let rid = (bus << 8) | devfn;
            let masked = rid & map_mask;
            let Some(e) = map
                .chunks_exact(4)
                .find(|e| masked >= e[0] && u64::from(masked) < u64::from(e[0]) + u64::from(e[3]))
            else {
                continue; // outside the map: no IOMMU (e.g. the RCEC)
            };
            let target = t.by_phandle(e[1]).unwrap_or(0);
            let Some(s) = smmu_nodes.iter().position(|&x| x == target) else {
                continue;
            };
            let sid = e[2].wrapping_add(masked - e[0]);
            let id = self.xlate(host, "iommu-map", target, &[sid])?;
            let (compat, info) = match node {
                Some(n) => {
                    let c = t.compatible(n)?;
                    let base = t
                        .node(n)
                        .map(|x| x.base_name().to_string())
                        .unwrap_or_default();
                    let i =
                        drivers::for_compatible(&c).or_else(|| drivers::for_pci_node_name(&base));
                    (c, i)
                }
                None => (Vec::new(), Some(drivers::PCIEPORT)),
            };
            let name = format!("{domain:04x}:{bus:02x}:{:02x}.{}", devfn >> 3, devfn & 7);
            let m = self.master(
                name,
                Bus::Pci,
                info,
                node.map(|n| t.path(n)),
                compat,
                (s, smmus.get(s).is_some_and(|x| x.enabled)),
                vec![id],
                None,
            );
            out.push(((domain, bus, devfn), m));
        }
        Ok(out)
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
                    out.push(MemRegion {
                        base: fold(&a),
                        size,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// LS1028A routing: the ENETC integrated endpoints (behind the ECAM host) reach the SMMU
/// through TBU 1, so their stream IDs arrive with 0x400 set (the seed's 0x429); everything else
/// is taken to be behind TBU 0 (inferred; the DT does not say).
pub fn apply_ls1028a_tbus(masters: &mut [Master]) {
    for m in masters {
        let behind_ecam = m.bus == Bus::Pci && m.name.starts_with("0000:");
        m.tbu = Some(if behind_ecam { 1 } else { 0 });
    }
}
