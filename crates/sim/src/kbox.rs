//! The built-in board: Kontron KBox A-230-LS (NXP LS1028A) as the seed kernel saw it after
//! U-Boot's fix-ups, written from the reference tables (ls1028a-kontron-kbox.md §2, §4.1, §5)
//! rather than read from a blob, so the CLI and tests need no file. The shared
//! `kontron-kbox-a-230-ls.dtb` must load to the same SMMU, masters and stream IDs (tested).

use crate::board::{
    apply_ls1028a_tbus, Board, Bus, FwId, IommuMapEntry, Master, MemRegion, MsiController, PciHost,
    SmmuDesc, SmmuModel, SmmuVersion,
};
use crate::drivers::{self, DriverInfo};
use smmu_addr::PhysAddr;

/// `stream-match-mask` of the LS1028A SMMU.
pub const LS1028A_SMR_MASK: u16 = 0x7c00;

/// The LS1028A MMU-500 (§2): 8 global interrupts (SPI 13–16, 211–214), 64 context interrupts
/// (SPI 146–209).
pub fn ls1028a_smmu() -> SmmuDesc {
    let mut spis = vec![13, 14, 15, 16, 211, 212, 213, 214];
    spis.extend(146..=209);
    SmmuDesc {
        path: "/soc/iommu@5000000".into(),
        name: "5000000.iommu".into(),
        compatible: vec!["arm,mmu-500".into()],
        matched: "arm,mmu-500".into(),
        version: SmmuVersion::V2,
        model: SmmuModel::ArmMmu500,
        base: PhysAddr::new(0x0500_0000),
        size: 0x80_0000,
        global_irqs: 8,
        context_irqs: 64,
        irq_spis: spis,
        iommu_cells: 1,
        stream_match_mask: Some(LS1028A_SMR_MASK),
        dma_coherent: true,
        enabled: true,
        irq_names: Vec::new(),
    }
}

struct Row {
    name: &'static str,
    bus: Bus,
    node: Option<&'static str>,
    compatible: &'static [&'static str],
    sid: u16,
    created_by: Option<&'static str>,
    driver: Option<DriverInfo>,
}

fn row(
    name: &'static str,
    bus: Bus,
    node: &'static str,
    compatible: &'static [&'static str],
    sid: u16,
) -> Row {
    let owned: Vec<String> = compatible.iter().map(|s| s.to_string()).collect();
    Row {
        name,
        bus,
        node: Some(node),
        compatible,
        sid,
        created_by: None,
        driver: drivers::for_compatible(&owned),
    }
}

/// The board, masters in bus registration order (platform, then PCI).
pub fn kbox_a230_ls() -> Board {
    use Bus::{Pci, Platform};
    const ESDHC: &[&str] = &["fsl,ls1028a-esdhc", "fsl,esdhc"];
    const DWC3: &[&str] = &["fsl,ls1028a-dwc3", "snps,dwc3"];
    const JR: &[&str] = &["fsl,sec-v5.0-job-ring", "fsl,sec-v4.0-job-ring"];
    const ENETC: &[&str] = &["pci1957,e100", "fsl,enetc"];
    let jr = |name, node, sid| Row {
        created_by: Some("caam_jr"),
        ..row(name, Platform, node, JR, sid)
    };
    let rows = vec![
        row("2140000.mmc", Platform, "/soc/mmc@2140000", ESDHC, 0x03),
        row("2150000.mmc", Platform, "/soc/mmc@2150000", ESDHC, 0x45),
        row(
            "22c0000.dma-controller",
            Platform,
            "/soc/dma-controller@22c0000",
            &["fsl,ls1028a-edma", "fsl,vf610-edma"],
            0x28,
        ),
        row("3100000.usb", Platform, "/soc/usb@3100000", DWC3, 0x01),
        row("3110000.usb", Platform, "/soc/usb@3110000", DWC3, 0x02),
        row(
            "3200000.sata",
            Platform,
            "/soc/sata@3200000",
            &["fsl,ls1028a-ahci"],
            0x04,
        ),
        row(
            "8380000.dma-controller",
            Platform,
            "/soc/dma-controller@8380000",
            &["fsl,ls1028a-qdma", "fsl,ls1021a-qdma"],
            0x05,
        ),
        row(
            "f080000.display",
            Platform,
            "/soc/display@f080000",
            &["arm,mali-dp500"],
            0x48,
        ),
        row(
            "f0c0000.gpu",
            Platform,
            "/soc/gpu@f0c0000",
            &["vivante,gc"],
            0x47,
        ),
        Row {
            name: "etnaviv",
            bus: Platform,
            node: None,
            compatible: &[],
            sid: 0x47,
            created_by: Some("etnaviv"),
            driver: Some(drivers::ETNAVIV_VIRTUAL),
        },
        jr("8010000.jr", "/soc/crypto@8000000/jr@10000", 0x41),
        jr("8020000.jr", "/soc/crypto@8000000/jr@20000", 0x42),
        jr("8030000.jr", "/soc/crypto@8000000/jr@30000", 0x43),
        jr("8040000.jr", "/soc/crypto@8000000/jr@40000", 0x44),
        row(
            "0000:00:00.0",
            Pci,
            "/soc/pcie@1f0000000/ethernet@0,0",
            ENETC,
            0x29,
        ),
        row(
            "0000:00:00.1",
            Pci,
            "/soc/pcie@1f0000000/ethernet@0,1",
            ENETC,
            0x2a,
        ),
        row(
            "0000:00:00.2",
            Pci,
            "/soc/pcie@1f0000000/ethernet@0,2",
            ENETC,
            0x2b,
        ),
        row(
            "0000:00:00.3",
            Pci,
            "/soc/pcie@1f0000000/mdio@0,3",
            &["pci1957,ee01", "fsl,enetc-mdio"],
            0x2c,
        ),
        row(
            "0000:00:00.4",
            Pci,
            "/soc/pcie@1f0000000/ethernet@0,4",
            &["pci1957,ee02", "fsl,enetc-ptp"],
            0x2d,
        ),
        Row {
            driver: drivers::for_pci_node_name("ethernet-switch"),
            ..row(
                "0000:00:00.5",
                Pci,
                "/soc/pcie@1f0000000/ethernet-switch@0,5",
                &[],
                0x2e,
            )
        },
        row(
            "0000:00:00.6",
            Pci,
            "/soc/pcie@1f0000000/ethernet@0,6",
            ENETC,
            0x2f,
        ),
        Row {
            node: None,
            driver: Some(drivers::PCIEPORT),
            ..row("0001:00:00.0", Pci, "", &[], 0x07)
        },
        Row {
            node: None,
            driver: Some(drivers::PCIEPORT),
            ..row("0002:00:00.0", Pci, "", &[], 0x08)
        },
    ];
    let mut masters: Vec<Master> = rows
        .into_iter()
        .map(|r| {
            let info = r.driver;
            Master {
                name: r.name.into(),
                bus: r.bus,
                driver: info.filter(|d| d.binds).map(|d| d.name.to_string()),
                has_shutdown: info.is_some_and(|d| d.binds && d.has_shutdown),
                probes: info.is_none_or(|d| d.probes),
                probe_rank: info.map_or(drivers::UNKNOWN_RANK, |d| d.probe_rank),
                node: r.node.map(str::to_string),
                compatible: r.compatible.iter().map(|s| s.to_string()).collect(),
                smmu: 0,
                ids: vec![FwId {
                    sid: r.sid,
                    mask: LS1028A_SMR_MASK,
                }],
                tbu: None,
                attached: true,
                created_by: r.created_by.map(str::to_string),
            }
        })
        .collect();
    apply_ls1028a_tbus(&mut masters);
    Board {
        model: "Kontron KBox A-230-LS".into(),
        compatible: [
            "kontron,kbox-a-230-ls",
            "kontron,sl28-var4",
            "kontron,sl28",
            "fsl,ls1028a",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        // Two Cortex-A72s (the LS1028A's /cpus node).
        cpus: 2,
        smmus: vec![ls1028a_smmu()],
        masters,
        // LS1028A DRAM window 1 (the DT has no /memory; U-Boot adds it). 2 GiB is an assumption
        // about the fitted memory, not a reference fact.
        memory: vec![MemRegion {
            base: PhysAddr::new(0x8000_0000),
            size: 0x8000_0000,
        }],
        // U-Boot's iommu-map fix-ups (reference §4.1): the ECAM host's functions from 0x29, the
        // two root complexes' root ports at 0x07 and 0x08.
        pci_hosts: [
            ("/soc/pcie@1f0000000", 0, 0x29, 12),
            ("/soc/pcie@3400000", 1, 0x07, 1),
            ("/soc/pcie@3500000", 2, 0x08, 1),
        ]
        .iter()
        .map(|&(path, domain, sid_base, len)| PciHost {
            path: path.into(),
            domain,
            map_mask: 0xffff_ffff,
            iommu_map: vec![IommuMapEntry {
                rid_base: 0,
                smmu: Some(0),
                sid_base,
                len,
            }],
            // Every host's MSIs go to the one ITS (`msi-map` / `msi-parent` = `&its`).
            msi_parent: Some(0),
        })
        .collect(),
        // The GIC's ITS, `msi-controller@6020000` (reference §5: reg 0x0602_0000 + 0x20000).
        msi_controllers: vec![MsiController {
            path: "/interrupt-controller@6000000/msi-controller@6020000".into(),
            base: PhysAddr::new(0x0602_0000),
        }],
    }
}
