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
//! * GICv3 ITSs (`arm,gic-v3-its`, first `reg` entry) and each PCI host's MSI parent (the
//!   phandle in `msi-map`, else `msi-parent`): where a PCI function's MSI writes go.

use serde::{Deserialize, Serialize};
use smmu_addr::PhysAddr;

use crate::error::BoardError;
use crate::fdt::DeviceTree;
use load::Loader;

mod load;

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
    pub base: PhysAddr,
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

/// Bus of a master: the IOMMU core's, one type for the board, the kernel and the core.
pub use iommu::Bus;

/// A [`Bus`] in a board's serialised form: the variant's name (`"Platform"`, `"Pci"`), as a
/// derived enum would write it (iommu does not depend on serde).
mod bus_by_variant {
    use super::Bus;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    const VARIANTS: &[&str] = &["Platform", "Pci"];

    pub fn serialize<S: Serializer>(bus: &Bus, s: S) -> Result<S::Ok, S::Error> {
        let index = match bus {
            Bus::Platform => 0,
            Bus::Pci => 1,
        };
        s.serialize_unit_variant("Bus", index, VARIANTS[index as usize])
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bus, D::Error> {
        let name = String::deserialize(d)?;
        match name.as_str() {
            "Platform" => Ok(Bus::Platform),
            "Pci" => Ok(Bus::Pci),
            _ => Err(D::Error::unknown_variant(&name, VARIANTS)),
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
    #[serde(with = "bus_by_variant")]
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
    pub base: PhysAddr,
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
    /// GICv3 ITSs (`arm,gic-v3-its` MSI controllers), in DT order.
    #[serde(default)]
    pub msi_controllers: Vec<MsiController>,
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
    /// The MSI controller its functions' MSIs go to (an index into [`Board::msi_controllers`]):
    /// the phandle of `msi-map`'s first entry, else of `msi-parent` (Linux's
    /// `of_msi_map_get_device_domain` reads `msi-map` first). `None`: none this loader knows.
    #[serde(default)]
    pub msi_parent: Option<usize>,
}

/// `GITS_TRANSLATER`'s offset in a GICv3 ITS's register frame (`ITS_base` + 0x1_0040, in the
/// ITS's translation register page): the doorbell every MSI through the ITS is written to
/// (Linux's `its_irq_get_msi_base`).
pub const GITS_TRANSLATER: u64 = 0x1_0040;

/// A GICv3 ITS: where its functions' MSI writes go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsiController {
    /// DT path.
    pub path: String,
    /// The ITS's register frame (first `reg` entry).
    pub base: PhysAddr,
}

impl MsiController {
    /// The doorbell: `GITS_TRANSLATER`.
    pub fn doorbell(&self) -> PhysAddr {
        PhysAddr::new(self.base.as_u64() + GITS_TRANSLATER)
    }
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

    /// The MSI doorbell of a PCI master (its host bridge's MSI controller's); `None` for a
    /// platform master or a host with no MSI controller the board declares.
    pub fn msi_doorbell(&self, m: &Master) -> Option<PhysAddr> {
        if m.bus != Bus::Pci {
            return None;
        }
        // `DDDD:BB:DD.F`: the PCI domain is the name's first field.
        let domain = u32::from_str_radix(m.name.split(':').next()?, 16).ok()?;
        let host = self.pci_hosts.iter().find(|h| h.domain == domain)?;
        Some(self.msi_controllers.get(host.msi_parent?)?.doorbell())
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

/// LS1028A routing: the ENETC integrated endpoints (behind the ECAM host) reach the SMMU
/// through TBU 1, so their stream IDs arrive with 0x400 set (the seed's 0x429); everything else
/// is taken to be behind TBU 0 (inferred; the DT does not say).
pub fn apply_ls1028a_tbus(masters: &mut [Master]) {
    for m in masters {
        let behind_ecam = m.bus == Bus::Pci && m.name.starts_with("0000:");
        m.tbu = Some(if behind_ecam { 1 } else { 0 });
    }
}
