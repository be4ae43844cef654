//! Boards from device trees, checked against values read by hand from
//! `../shared/reference/ls1028a-kontron-kbox.md` and `../shared/boards/README.md`: the repo's own
//! fixtures (`crates/fixtures/dts`) always, the real blobs in `../shared/boards` when present
//! (skipped with a message otherwise; a failure under `SMMU_LAB_REQUIRE_SHARED=1`).

use sim::{board_report, kbox_a230_ls, Board, Bus, FwId, SmmuModel, SmmuVersion};
use smmu_addr::PhysAddr;

/// A real blob from `../shared/boards`; `None` (test skipped) on a clone with nothing beside it.
fn load(name: &str) -> Option<Board> {
    let data = lab_fixtures::shared::board(name)?;
    Some(Board::from_dtb(&data).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn fixture(name: &str, blob: Vec<u8>) -> Board {
    Board::from_dtb(&blob).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The repo's KBox text loads to the built-in board, field for field (memory aside: the DT has
/// none, U-Boot adds it).
#[test]
fn fixture_kbox_is_the_builtin_board() {
    let dtb = fixture("kbox", lab_fixtures::kbox_dtb());
    let builtin = kbox_a230_ls();
    assert_eq!(dtb.model, builtin.model);
    assert_eq!(dtb.compatible, builtin.compatible);
    assert_eq!(dtb.smmus, builtin.smmus);
    assert_eq!(dtb.masters, builtin.masters);
    assert!(dtb.memory.is_empty());
}

/// The repo's Juno text agrees with the real blob on every SMMU and master.
#[test]
fn fixture_juno_matches_the_real_blob() {
    let fx = fixture("juno-r2", lab_fixtures::juno_r2_dtb());
    let Some(real) = load("juno-r2.dtb") else {
        return;
    };
    assert_eq!(fx.model, real.model);
    assert_eq!(fx.smmus, real.smmus);
    assert_eq!(fx.masters, real.masters);
    assert_eq!(fx.memory, real.memory);
}

/// (log prefix, stream ID) of every master, in registration order.
fn sids(b: &Board) -> Vec<(String, Vec<FwId>)> {
    b.masters
        .iter()
        .map(|m| (m.log_prefix(), m.ids.clone()))
        .collect()
}

#[test]
fn builtin_kbox_equals_the_kbox_dtb() {
    let Some(dtb) = load("kontron-kbox-a-230-ls.dtb") else {
        return;
    };
    let builtin = kbox_a230_ls();
    assert_eq!(dtb.model, builtin.model);
    assert_eq!(dtb.compatible, builtin.compatible);
    assert_eq!(dtb.smmus, builtin.smmus);
    // Masters: everything but the DRAM (absent from the DT) must agree, field by field.
    assert_eq!(dtb.masters, builtin.masters);
    assert_eq!(dtb.expected_groups(), builtin.expected_groups());
    assert!(dtb.memory.is_empty());
    assert_eq!(builtin.memory.len(), 1);
}

#[test]
fn kbox_smmu_is_the_reference_mmu500() {
    let b = kbox_a230_ls();
    assert_eq!(b.smmus.len(), 1);
    let s = &b.smmus[0];
    assert_eq!(
        (s.name.as_str(), s.base, s.size),
        ("5000000.iommu", PhysAddr::new(0x0500_0000), 0x80_0000)
    );
    assert_eq!(
        (s.version, s.model),
        (SmmuVersion::V2, SmmuModel::ArmMmu500)
    );
    assert_eq!((s.global_irqs, s.context_irqs, s.iommu_cells), (8, 64, 1));
    assert_eq!(s.stream_match_mask, Some(0x7c00));
    assert!(s.dma_coherent && s.enabled);
    assert_eq!(s.irq_spis.len(), 72);
    assert_eq!(&s.irq_spis[..8], &[13, 14, 15, 16, 211, 212, 213, 214]);
    assert_eq!((s.irq_spis[8], s.irq_spis[71]), (146, 209));
    assert_eq!(b.hardware_name(), "Kontron KBox A-230-LS (DT)");
}

/// The seed's groups (reference §5): 22 masters in 21 groups, group 1 shared by the GPU and the
/// etnaviv virtual device; the ENETC PTP function exists but gets none.
#[test]
fn kbox_groups_match_the_seed() {
    let mut boards = vec![fixture("kbox", lab_fixtures::kbox_dtb())];
    boards.extend(load("kontron-kbox-a-230-ls.dtb"));
    for b in boards {
        kbox_groups_match(&b);
    }
}

fn kbox_groups_match(b: &Board) {
    let want: &[(&str, u32, u16)] = &[
        ("platform f080000.display", 0, 0x48),
        ("etnaviv-gpu f0c0000.gpu", 1, 0x47),
        ("etnaviv etnaviv", 1, 0x47),
        ("ahci-qoriq 3200000.sata", 2, 0x04),
        ("mscc_felix 0000:00:00.5", 3, 0x2e),
        ("fsl_enetc 0000:00:00.0", 4, 0x29),
        ("fsl_enetc 0000:00:00.1", 5, 0x2a),
        ("fsl_enetc 0000:00:00.2", 6, 0x2b),
        ("fsl_enetc 0000:00:00.6", 7, 0x2f),
        ("fsl_enetc_mdio 0000:00:00.3", 8, 0x2c),
        ("dwc3 3100000.usb", 9, 0x01),
        ("dwc3 3110000.usb", 10, 0x02),
        ("sdhci-esdhc 2140000.mmc", 11, 0x03),
        ("sdhci-esdhc 2150000.mmc", 12, 0x45),
        ("caam_jr 8010000.jr", 13, 0x41),
        ("caam_jr 8020000.jr", 14, 0x42),
        ("caam_jr 8030000.jr", 15, 0x43),
        ("caam_jr 8040000.jr", 16, 0x44),
        ("fsl-edma 22c0000.dma-controller", 17, 0x28),
        ("pcieport 0001:00:00.0", 18, 0x07),
        ("pcieport 0002:00:00.0", 19, 0x08),
        ("fsl-qdma 8380000.dma-controller", 20, 0x05),
    ];
    let groups = b.expected_groups();
    let got: Vec<(String, u32, u16)> = b
        .probe_order()
        .into_iter()
        .map(|i| {
            (
                b.masters[i].log_prefix(),
                groups[i].unwrap(),
                b.masters[i].ids[0].sid,
            )
        })
        .collect();
    let want: Vec<(String, u32, u16)> = want
        .iter()
        .map(|(p, g, s)| (p.to_string(), *g, *s))
        .collect();
    assert_eq!(got, want);
    for m in &b.masters {
        assert_eq!(m.ids.len(), 1);
        assert_eq!(m.ids[0].mask, 0x7c00, "{}", m.name);
        assert_eq!(m.ids[0].fwid(), u32::from(m.ids[0].sid) | 0x7c00_0000);
    }
    let ptp = &b.masters[b.master("0000:00:00.4").unwrap()];
    assert_eq!(
        (ptp.probes, ptp.ids[0].sid, ptp.log_prefix().as_str()),
        (false, 0x2d, "pci 0000:00:00.4")
    );
    assert_eq!(groups[b.master("0000:00:00.4").unwrap()], None);
    // The RCEC 00:1f.0 (RID 0xf8) is outside the ECAM map.
    assert!(b.master("0000:00:1f.0").is_none());
}

/// Registration order is the seed's removal order (reference §6): platform in DT order, then
/// the driver-created etnaviv and CAAM job rings, then PCI.
#[test]
fn kbox_registration_order_is_the_seed_removal_order() {
    let b = kbox_a230_ls();
    let names: Vec<String> = b
        .masters
        .iter()
        .filter(|m| m.probes)
        .map(|m| m.log_prefix())
        .collect();
    let Some(seed) = lab_fixtures::shared::seed_patch() else {
        return;
    };
    let removed: Vec<String> = seed
        .lines()
        .filter_map(|l| {
            l.split_once(": Removing from iommu group")
                .map(|(p, _)| p.to_string())
        })
        .collect();
    assert_eq!(removed.len(), 22);
    assert_eq!(names, removed);
}

#[test]
fn enetc_sits_behind_tbu1_so_pf0_arrives_as_0x429() {
    let b = kbox_a230_ls();
    let pf0 = &b.masters[b.master("0000:00:00.0").unwrap()];
    assert_eq!(pf0.wire_ids(), Some(vec![0x429]));
    assert!(
        !pf0.has_shutdown,
        "fsl_enetc has no .shutdown (reference §7)"
    );
    assert_eq!(pf0.driver.as_deref(), Some("fsl_enetc"));
    let mmc = &b.masters[b.master("2140000.mmc").unwrap()];
    assert_eq!(mmc.wire_ids(), Some(vec![0x03]));
    assert_eq!(b.masters.iter().filter(|m| m.bus == Bus::Pci).count(), 9);
}

#[test]
fn rdb_and_qds_follow_their_enabled_ports() {
    let Some(rdb) = load("ls1028a-rdb.dtb") else {
        return;
    };
    // RDB: enetc ports 0/2/3, felix; no jr@40000 (README).
    let names: Vec<String> = rdb.masters.iter().map(|m| m.log_prefix()).collect();
    for want in [
        "fsl_enetc 0000:00:00.0",
        "fsl_enetc 0000:00:00.2",
        "mscc_felix 0000:00:00.5",
        "fsl_enetc 0000:00:00.6",
    ] {
        assert!(names.iter().any(|n| n == want), "{want}");
    }
    assert!(!names
        .iter()
        .any(|n| n.ends_with("0000:00:00.1") || n.ends_with("8040000.jr")));
    assert_eq!(rdb.memory.len(), 1);
    let Some(qds) = load("ls1028a-qds.dtb") else {
        return;
    };
    let names: Vec<String> = qds.masters.iter().map(|m| m.log_prefix()).collect();
    // QDS: enetc ports 1/2 only, no Felix.
    assert!(names.iter().any(|n| n == "fsl_enetc 0000:00:00.1"));
    assert!(!names
        .iter()
        .any(|n| n.ends_with("0000:00:00.0") || n.ends_with("0000:00:00.5")));
    assert_eq!(sids(&qds).len(), 19);
}

#[test]
fn juno_has_seven_smmus_and_disabled_ones_attach_nothing() {
    let mut boards = vec![(
        "juno-r2.dts",
        true,
        fixture("juno-r2", lab_fixtures::juno_r2_dtb()),
    )];
    for (file, pcie) in [("juno.dtb", false), ("juno-r2.dtb", true)] {
        boards.extend(load(file).map(|b| (file, pcie, b)));
    }
    for (file, pcie, b) in boards {
        assert_eq!(b.smmus.len(), 7, "{file}");
        assert_eq!(
            b.smmus
                .iter()
                .filter(|s| s.matched == "arm,mmu-401")
                .count(),
            6
        );
        let m400 = &b.smmus[0];
        assert_eq!(
            (m400.matched.as_str(), m400.version, m400.enabled),
            ("arm,mmu-400", SmmuVersion::V1, false)
        );
        assert!(b.smmus.iter().all(|s| s.version != SmmuVersion::V2));
        let pcie_smmu = b
            .smmus
            .iter()
            .position(|s| s.base == PhysAddr::new(0x2b50_0000))
            .unwrap();
        assert_eq!(b.smmus[pcie_smmu].enabled, pcie, "{file}");
        // The DMA controller has 9 stream IDs 0..8 on the SMMU at 0x7fb00000.
        let dma = &b.masters[b.master("7ff00000.dma-controller").unwrap()];
        assert_eq!(
            dma.ids.iter().map(|i| i.sid).collect::<Vec<_>>(),
            (0..9).collect::<Vec<u16>>()
        );
        assert_eq!(b.smmus[dma.smmu].base, PhysAddr::new(0x7fb0_0000));
        // PCIe: iommu-map-mask 0 folds every RID onto stream 0; only r2 enables it.
        let rp = b.master("0000:00:00.0");
        assert_eq!(rp.is_some(), pcie, "{file}");
        if let Some(rp) = rp {
            assert_eq!(b.masters[rp].smmu, pcie_smmu);
            assert_eq!(b.masters[rp].ids, vec![FwId { sid: 0, mask: 0 }]);
        }
        // No master is attached to a disabled SMMU.
        assert!(b
            .masters
            .iter()
            .all(|m| m.attached == b.smmus[m.smmu].enabled));
        assert_eq!(b.memory.len(), 2);
    }
}

#[test]
fn sdm845_two_cells_carry_masks() {
    let Some(b) = load("sdm845-db845c.dtb") else {
        return;
    };
    assert_eq!(b.smmus.len(), 2);
    let apps = b
        .smmus
        .iter()
        .find(|s| s.base == PhysAddr::new(0x1500_0000))
        .unwrap();
    assert_eq!(
        (
            apps.iommu_cells,
            apps.matched.as_str(),
            apps.global_irqs,
            apps.context_irqs
        ),
        (2, "arm,mmu-500", 1, 64)
    );
    assert!(apps.compatible.iter().any(|c| c == "qcom,sdm845-smmu-500"));
    let adreno = b
        .smmus
        .iter()
        .find(|s| s.base == PhysAddr::new(0x0504_0000))
        .unwrap();
    assert_eq!(
        (adreno.matched.as_str(), adreno.model),
        ("qcom,smmu-v2", SmmuModel::Qcom)
    );
    let ufs = &b.masters[b.master("1d84000.ufshc").unwrap()];
    assert_eq!(
        ufs.ids,
        vec![FwId {
            sid: 0x100,
            mask: 0xf
        }]
    );
    assert_eq!(ufs.ids[0].fwid(), 0x000f_0100);
    // Two masters share the same four (sid, mask) pairs → one group.
    let g = b.expected_groups();
    let (a, c) = (
        b.master("1dc4000.dma-controller").unwrap(),
        b.master("1dfa000.crypto").unwrap(),
    );
    assert_eq!(b.masters[a].ids, b.masters[c].ids);
    assert_eq!(b.masters[a].ids.len(), 4);
    assert_eq!(g[a], g[c]);
    // PCIe root ports through iommu-map.
    assert_eq!(
        b.masters[b.master("0000:00:00.0").unwrap()].ids[0].sid,
        0x1c10
    );
    assert_eq!(
        b.masters[b.master("0001:00:00.0").unwrap()].ids[0].sid,
        0x1c00
    );
}

#[test]
fn imx8qm_masters_share_stream_ids() {
    let Some(b) = load("imx8qm-mek.dtb") else {
        return;
    };
    assert_eq!(b.smmus.len(), 1);
    assert_eq!(
        (b.smmus[0].iommu_cells, b.smmus[0].base),
        (2, PhysAddr::new(0x5140_0000))
    );
    let g = b.expected_groups();
    let mmc0 = b.master("5b010000.mmc").unwrap();
    let mmc1 = b.master("5b020000.mmc").unwrap();
    assert_eq!(
        b.masters[mmc0].ids,
        vec![FwId {
            sid: 0x11,
            mask: 0x7f80
        }]
    );
    assert_eq!(b.masters[mmc0].ids, b.masters[mmc1].ids);
    assert_eq!(g[mmc0], g[mmc1]);
    let fec0 = b.master("5b040000.ethernet").unwrap();
    assert_eq!(
        b.masters[fec0].ids,
        vec![FwId {
            sid: 0x12,
            mask: 0x7f80
        }]
    );
    assert_ne!(g[mmc0], g[fec0]);
}

#[test]
fn report_lists_smmu_and_masters_aligned() {
    let r = board_report(&kbox_a230_ls());
    assert!(r.contains("Board: Kontron KBox A-230-LS"));
    let smmu_line = r.lines().find(|l| l.contains("5000000.iommu")).unwrap();
    for cell in [
        "arm,mmu-500",
        "0x5000000",
        "0x800000",
        "8+64",
        "0x7c00",
        "okay",
    ] {
        assert!(smmu_line.contains(cell), "{cell} in {smmu_line}");
    }
    let pf0 = r
        .lines()
        .find(|l| l.contains("fsl_enetc 0000:00:00.0"))
        .unwrap();
    assert!(
        pf0.contains("0x29/0x7c00") && pf0.contains("0x429") && pf0.trim_end().ends_with('4'),
        "{pf0}"
    );
    // Aligned: every row of the master table has its column separators at the same offsets.
    let rows: Vec<&str> = r
        .lines()
        .skip_while(|l| !l.starts_with("DMA masters"))
        .skip(1)
        .take(24)
        .collect();
    let seps = |l: &str| {
        l.char_indices()
            .filter(|(_, c)| *c == '|')
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
    };
    let first = seps(rows[0]);
    assert_eq!(first.len(), 6);
    for l in &rows[2..] {
        assert_eq!(seps(l), first, "{l}");
    }
}

#[test]
fn board_description_round_trips_through_serde() {
    let Some(b) = load("sdm845-db845c.dtb") else {
        return;
    };
    let json = serde_json::to_string(&b).unwrap();
    let back: Board = serde_json::from_str(&json).unwrap();
    assert_eq!(back, b);
}

#[test]
fn typed_bases_serialise_as_the_numbers_they_were() {
    let b = kbox_a230_ls();
    let json = serde_json::to_string(&b).unwrap();
    // The MMU-500 at 0x0500_0000 and DRAM at 0x8000_0000: bare numbers, as when they were u64.
    assert!(
        json.contains("\"base\":83886080,\"size\":8388608"),
        "{json}"
    );
    assert!(
        json.contains("\"memory\":[{\"base\":2147483648,\"size\":2147483648}]"),
        "{json}"
    );
    let back: Board = serde_json::from_str(&json).unwrap();
    assert_eq!(back.smmus[0].base, PhysAddr::new(0x0500_0000));
    assert_eq!(back.memory[0].base, PhysAddr::new(0x8000_0000));
}

#[test]
fn a_masters_bus_is_the_iommu_cores_and_serialises_by_variant_name() {
    let b = kbox_a230_ls();
    let json = serde_json::to_string(&b).unwrap();
    // The same bytes a derived enum writes.
    assert!(json.contains("\"bus\":\"Platform\""), "{json}");
    assert!(json.contains("\"bus\":\"Pci\""), "{json}");
    let back: Board = serde_json::from_str(&json).unwrap();
    assert_eq!(back, b);
    let bad = json.replacen("\"bus\":\"Pci\"", "\"bus\":\"Isa\"", 1);
    let e = serde_json::from_str::<Board>(&bad).unwrap_err().to_string();
    assert!(
        e.starts_with("unknown variant `Isa`, expected `Platform` or `Pci`"),
        "{e}"
    );
    // One type: the board's bus is what the IOMMU core takes.
    let pci: iommu::Bus = Bus::Pci;
    assert_eq!((pci.name(), Bus::Platform.name()), ("pci", "platform"));
}

#[test]
fn builtin_kbox_pci_hosts_equal_the_dtb() {
    let Some(b) = load("kontron-kbox-a-230-ls.dtb") else {
        return;
    };
    assert_eq!(b.pci_hosts, kbox_a230_ls().pci_hosts);
}

#[test]
fn qemu_virt_smmuv3_board() {
    let Some(b) = load("qemu-virt-smmuv3.dtb") else {
        return;
    };
    assert_eq!(b.smmus.len(), 1);
    let s = &b.smmus[0];
    assert_eq!(
        (
            s.name.as_str(),
            s.matched.as_str(),
            s.version,
            s.base,
            s.size
        ),
        (
            "9050000.smmuv3",
            "arm,smmu-v3",
            SmmuVersion::V3,
            PhysAddr::new(0x905_0000),
            0x2_0000
        )
    );
    assert_eq!(s.irq_names, ["eventq", "priq", "cmdq-sync", "gerror"]);
    assert!(s.dma_coherent && s.enabled && s.iommu_cells == 1);
    assert_eq!(b.pci_hosts.len(), 1);
    let h = &b.pci_hosts[0];
    assert_eq!(h.path, "/pcie@10000000");
    assert_eq!(
        h.iommu_map,
        [sim::IommuMapEntry {
            rid_base: 0,
            smmu: Some(0),
            sid_base: 0,
            len: 0x1_0000
        }]
    );
    let report = board_report(&b);
    assert!(report.contains("  0 | 9050000.smmuv3 | arm,smmu-v3 | SMMUv3 Generic | 0x9050000 | 0x20000 | eventq,priq,cmdq-sync,gerror"));
    assert!(report.contains(
        "  /pcie@10000000 | 0000   | 0x0..0x10000  | 0    | 0x0            | 0xffffffff"
    ));
}

/// The ITS and the PCI hosts' MSI parent come from the tree: the KBox blob's
/// `msi-controller@6020000` at 0x0602_0000, doorbell (`GITS_TRANSLATER`) at 0x0603_0040, the
/// parent of all three hosts, as the built-in board has them; the RDB and QDS blobs the same.
#[test]
fn the_its_doorbell_comes_from_the_tree() {
    let builtin = kbox_a230_ls();
    let enetc = builtin.master("0000:00:00.0").expect("PF0");
    assert_eq!(
        builtin.msi_doorbell(&builtin.masters[enetc]),
        Some(smmu_addr::PhysAddr::new(0x0603_0040))
    );
    for name in [
        "kontron-kbox-a-230-ls.dtb",
        "ls1028a-rdb.dtb",
        "ls1028a-qds.dtb",
    ] {
        let Some(b) = load(name) else {
            return;
        };
        assert_eq!(b.msi_controllers, builtin.msi_controllers, "{name}");
        assert!(
            b.pci_hosts.iter().all(|h| h.msi_parent == Some(0)),
            "{name}: {:?}",
            b.pci_hosts
        );
        // Every ENETC function the blob enables (the RDB and QDS enable their own ports).
        let enetc = b
            .masters
            .iter()
            .find(|m| m.driver.as_deref() == Some("fsl_enetc"))
            .expect("an ENETC function");
        assert_eq!(
            b.msi_doorbell(enetc),
            Some(smmu_addr::PhysAddr::new(0x0603_0040)),
            "{name}"
        );
    }
}
