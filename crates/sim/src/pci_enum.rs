//! PCI functions a run names. A device tree lists host bridges, not what sits behind them (PCI
//! enumerates that at boot), so QEMU's virt board has no e1000e in its tree: the run names it
//! by bus/device/function, and its stream ID comes from the host's `iommu-map`, as Linux's
//! `of_map_id` computes it (requester ID `bus << 8 | dev << 3 | fn`, masked by
//! `iommu-map-mask`, offset into the entry that covers it).

use crate::board::{Board, Bus, FwId, Master};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// The driver a named PCI function gets unless the run names one: smmu-lab's generic DMA
/// engine, which has no `.shutdown` (like `fsl_enetc`, unlike the real `e1000e`).
pub const DEFAULT_PCI_DRIVER: &str = "smmu-lab-dma";

/// A PCI function named on the command line: `[DOMAIN:]BUS:DEV.FN[=DRIVER]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciFunction {
    /// PCI domain (segment).
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device number (0..32).
    pub dev: u8,
    /// Function number (0..8).
    pub func: u8,
    /// The driver's name in log lines (the modelled driver is the generic DMA engine, without
    /// `.shutdown`, whatever the name).
    pub driver: String,
}

/// A PCI function that cannot be placed on the board.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PciError {
    /// Not `[DOMAIN:]BUS:DEV.FN[=DRIVER]`.
    #[error(
        "PCI function '{text}': {why} (expected [DOMAIN:]BUS:DEV.FN[=DRIVER], e.g. 00:01.0=e1000e)"
    )]
    Syntax {
        /// What was given.
        text: String,
        /// What is wrong.
        why: String,
    },
    /// No host bridge with an `iommu-map` has this domain.
    #[error("PCI function {name}: no host bridge with an iommu-map has domain {domain:04x} (known: {known})")]
    NoHost {
        /// The function's name.
        name: String,
        /// The domain asked for.
        domain: u32,
        /// The domains the board has.
        known: String,
    },
    /// The host's `iommu-map` does not cover the requester ID (or names no SMMU).
    #[error("PCI function {name}: requester ID {rid:#x} is outside {host}'s iommu-map")]
    OutsideMap {
        /// The function's name.
        name: String,
        /// Its requester ID.
        rid: u32,
        /// The host bridge's DT path.
        host: String,
    },
    /// The board already has a function at that address.
    #[error("PCI function {name} is already on the board")]
    Duplicate {
        /// The function's name.
        name: String,
    },
}

impl PciFunction {
    /// Linux's name: `0000:00:01.0`.
    pub fn name(&self) -> String {
        format!(
            "{:04x}:{:02x}:{:02x}.{}",
            self.domain, self.bus, self.dev, self.func
        )
    }

    /// The requester ID: `bus << 8 | dev << 3 | fn`.
    pub fn rid(&self) -> u32 {
        (u32::from(self.bus) << 8) | (u32::from(self.dev) << 3) | u32::from(self.func)
    }
}

impl fmt::Display for PciFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name(), self.driver)
    }
}

impl FromStr for PciFunction {
    type Err = PciError;

    fn from_str(text: &str) -> Result<Self, PciError> {
        let bad = |why: &str| PciError::Syntax {
            text: text.to_string(),
            why: why.to_string(),
        };
        let (bdf, driver) = match text.split_once('=') {
            Some((b, d)) if !d.is_empty() => (b, d.to_string()),
            Some(_) => return Err(bad("empty driver name")),
            None => (text, DEFAULT_PCI_DRIVER.to_string()),
        };
        if !driver
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad("a driver name is letters, digits, '_' and '-'"));
        }
        let hex = |s: &str, what: &str, max: u32| {
            if s.is_empty() || s.len() > 4 {
                return Err(bad(&format!("{what} '{s}' is not a hex number")));
            }
            let v = u32::from_str_radix(s, 16)
                .map_err(|_| bad(&format!("{what} '{s}' is not a hex number")))?;
            if v > max {
                return Err(bad(&format!("{what} {v:#x} is above {max:#x}")));
            }
            Ok(v)
        };
        let (head, func) = bdf
            .rsplit_once('.')
            .ok_or_else(|| bad("no '.FN' after the device"))?;
        let parts: Vec<&str> = head.split(':').collect();
        let (domain, bus, dev) = match parts.as_slice() {
            [b, d] => (0, *b, *d),
            [dom, b, d] => (hex(dom, "domain", 0xffff)?, *b, *d),
            _ => return Err(bad("expected BUS:DEV or DOMAIN:BUS:DEV before '.FN'")),
        };
        Ok(PciFunction {
            domain,
            bus: hex(bus, "bus", 0xff)? as u8,
            dev: hex(dev, "device", 0x1f)? as u8,
            func: hex(func, "function", 7)? as u8,
            driver,
        })
    }
}

impl Board {
    /// Put an enumerated PCI function on the board, behind the SMMU its host's `iommu-map`
    /// sends its requester ID to; returns its index in [`Board::masters`].
    pub fn add_pci_function(&mut self, f: &PciFunction) -> Result<usize, PciError> {
        let name = f.name();
        if self.master(&name).is_some() {
            return Err(PciError::Duplicate { name });
        }
        let host = self
            .pci_hosts
            .iter()
            .find(|h| h.domain == f.domain)
            .ok_or_else(|| PciError::NoHost {
                name: name.clone(),
                domain: f.domain,
                known: self
                    .pci_hosts
                    .iter()
                    .map(|h| format!("{:04x}", h.domain))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let rid = f.rid();
        let masked = rid & host.map_mask;
        let placed = host.iommu_map.iter().find_map(|e| {
            let covers = masked >= e.rid_base
                && u64::from(masked) < u64::from(e.rid_base) + u64::from(e.len);
            let sid = e.sid_base.checked_add(masked - e.rid_base.min(masked))?;
            match (covers, e.smmu, u16::try_from(sid)) {
                (true, Some(s), Ok(sid)) => Some((s, sid)),
                _ => None,
            }
        });
        let (smmu, sid) = placed.ok_or_else(|| PciError::OutsideMap {
            name: name.clone(),
            rid,
            host: host.path.clone(),
        })?;
        let rank = self.masters.iter().map(|m| m.probe_rank).max().unwrap_or(0) + 1;
        let m = Master {
            name: name.clone(),
            bus: Bus::Pci,
            driver: Some(f.driver.clone()),
            has_shutdown: false,
            probes: true,
            probe_rank: rank,
            node: None,
            compatible: Vec::new(),
            smmu,
            ids: vec![FwId { sid, mask: 0 }],
            tbu: None,
            attached: self.smmus.get(smmu).is_some_and(|s| s.enabled),
            created_by: None,
        };
        // PCI functions follow the platform devices, in (domain, bus, devfn) order, which is
        // the order of their names.
        let at = self
            .masters
            .iter()
            .position(|x| x.bus == Bus::Pci && x.name > name)
            .unwrap_or(self.masters.len());
        self.masters.insert(at, m);
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdfs_parse_as_linux_names_them() {
        let f: PciFunction = "00:01.0=e1000e".parse().unwrap();
        assert_eq!(
            (f.name(), f.rid(), f.driver.as_str()),
            ("0000:00:01.0".into(), 0x8, "e1000e")
        );
        let f: PciFunction = "0001:02:1f.7".parse().unwrap();
        assert_eq!((f.name(), f.rid()), ("0001:02:1f.7".into(), 0x2ff));
        assert_eq!(f.driver, DEFAULT_PCI_DRIVER);
        for (bad, why) in [
            ("00:20.0", "device 0x20 is above 0x1f"),
            ("00:01.8", "function 0x8 is above 0x7"),
            ("100:01.0", "bus 0x100 is above 0xff"),
            ("00:01", "no '.FN'"),
            ("01.0", "expected BUS:DEV"),
            ("zz:01.0", "bus 'zz' is not a hex number"),
            ("00:01.0=", "empty driver name"),
            ("00:01.0=e 1", "a driver name is"),
        ] {
            let e = bad.parse::<PciFunction>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
