//! PCI functions named by a run, placed through the host's `iommu-map` (QEMU virt: stream ID =
//! requester ID), on the repo's QEMU virt fixture and, when ../shared is present, the real blob.

use sim::pci_enum::{PciError, PciFunction};
use sim::{Board, Bus, FwId, SmmuVersion};

fn qemu_virt() -> Board {
    Board::from_dtb(&lab_fixtures::qemu_virt_smmuv3_dtb()).expect("fixture loads")
}

/// The repo's QEMU virt text agrees with the real blob on every SMMU, master, host and bank.
#[test]
fn fixture_qemu_virt_matches_the_real_blob() {
    let fx = qemu_virt();
    assert_eq!(fx.smmus.len(), 1);
    assert_eq!(fx.smmus[0].version, SmmuVersion::V3);
    assert_eq!(fx.smmus[0].name, "9050000.smmuv3");
    assert_eq!(fx.pci_hosts.len(), 1);
    let Some(data) = lab_fixtures::shared::board("qemu-virt-smmuv3.dtb") else {
        return;
    };
    let real = Board::from_dtb(&data).expect("real blob loads");
    assert_eq!(fx.model, real.model);
    assert_eq!(fx.smmus, real.smmus);
    assert_eq!(fx.masters, real.masters);
    assert_eq!(fx.memory, real.memory);
    assert_eq!(fx.pci_hosts, real.pci_hosts);
}

#[test]
fn an_e1000e_at_00_01_0_is_stream_id_8() {
    let mut b = qemu_virt();
    let f: PciFunction = "00:01.0=e1000e".parse().unwrap();
    let i = b.add_pci_function(&f).unwrap();
    let m = &b.masters[i];
    assert_eq!(m.name, "0000:00:01.0");
    assert_eq!(m.log_prefix(), "e1000e 0000:00:01.0");
    assert_eq!((m.bus, m.smmu, m.attached), (Bus::Pci, 0, true));
    assert_eq!(m.ids, [FwId { sid: 8, mask: 0 }]);
    assert!(!m.has_shutdown && m.probes);
    // After the root port the loader found (00:00.0), in (bus, devfn) order.
    let names: Vec<&str> = b.masters.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["0000:00:00.0", "0000:00:01.0"]);
    // A function on another bus: stream ID = bus << 8 | devfn.
    let i = b.add_pci_function(&"01:00.1".parse().unwrap()).unwrap();
    assert_eq!(
        b.masters[i].ids,
        [FwId {
            sid: 0x101,
            mask: 0
        }]
    );
}

#[test]
fn bad_functions_are_refused_by_name() {
    let mut b = qemu_virt();
    let e = b
        .add_pci_function(&"0001:00:01.0".parse().unwrap())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "PCI function 0001:00:01.0: no host bridge with an iommu-map has domain 0001 (known: 0000)"
    );
    let e = b.add_pci_function(&"00:00.0".parse().unwrap()).unwrap_err();
    assert_eq!(
        e,
        PciError::Duplicate {
            name: "0000:00:00.0".into()
        }
    );
    // A host whose map covers only part of the requester IDs.
    b.pci_hosts[0].iommu_map[0].len = 0x100;
    let e = b.add_pci_function(&"01:00.0".parse().unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "PCI function 0000:01:00.0: requester ID 0x100 is outside /pcie@10000000's iommu-map"
    );
}
