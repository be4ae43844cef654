//! Malformed, truncated and unsupported trees give typed errors naming where the problem is;
//! random corruption of a real blob never panics.

use proptest::prelude::*;
use sim::{Board, BoardError};

/// A minimal FDT writer for building test trees.
struct Node {
    name: &'static str,
    props: Vec<(&'static str, Vec<u8>)>,
    children: Vec<Node>,
}

fn cells(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|c| c.to_be_bytes()).collect()
}
fn string(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn dtb(root: &Node) -> Vec<u8> {
    fn emit(n: &Node, st: &mut Vec<u8>, strings: &mut Vec<u8>) {
        st.extend(1u32.to_be_bytes());
        st.extend(n.name.as_bytes());
        st.push(0);
        while !st.len().is_multiple_of(4) {
            st.push(0);
        }
        for (k, v) in &n.props {
            let off = find_or_add(strings, k);
            st.extend(3u32.to_be_bytes());
            st.extend((v.len() as u32).to_be_bytes());
            st.extend(off.to_be_bytes());
            st.extend(v);
            while !st.len().is_multiple_of(4) {
                st.push(0);
            }
        }
        for c in &n.children {
            emit(c, st, strings);
        }
        st.extend(2u32.to_be_bytes());
    }
    fn find_or_add(strings: &mut Vec<u8>, k: &str) -> u32 {
        let off = strings.len() as u32;
        strings.extend(k.as_bytes());
        strings.push(0);
        off
    }
    let mut st = Vec::new();
    let mut strings = Vec::new();
    emit(root, &mut st, &mut strings);
    st.extend(9u32.to_be_bytes());
    let off_rsv = 40u32;
    let off_struct = off_rsv + 16;
    let off_strings = off_struct + st.len() as u32;
    let total = off_strings + strings.len() as u32;
    let mut out = Vec::new();
    for w in [
        0xd00d_feed,
        total,
        off_struct,
        off_strings,
        off_rsv,
        17,
        16,
        0,
        strings.len() as u32,
        st.len() as u32,
    ] {
        out.extend(w.to_be_bytes());
    }
    out.extend([0u8; 16]);
    out.extend(st);
    out.extend(strings);
    out
}

/// An LS1028A-like tree: one MMU-500 (phandle 1), one platform master, one ECAM host.
fn tree(
    smmu_extra: Vec<(&'static str, Vec<u8>)>,
    master_iommus: Vec<u8>,
    ecam_map: Vec<u8>,
) -> Vec<u8> {
    let mut smmu_props = vec![
        ("compatible", string("arm,mmu-500")),
        ("reg", cells(&[0, 0x500_0000, 0, 0x80_0000])),
        ("#iommu-cells", cells(&[1])),
        ("stream-match-mask", cells(&[0x7c00])),
        ("interrupts", cells(&[0, 15, 4, 0, 146, 4])),
        ("phandle", cells(&[1])),
    ];
    smmu_props.extend(smmu_extra);
    let root = Node {
        name: "",
        props: vec![
            ("model", string("Test board")),
            ("#address-cells", cells(&[2])),
            ("#size-cells", cells(&[2])),
            ("interrupt-parent", cells(&[2])),
        ],
        children: vec![
            Node {
                name: "gic",
                props: vec![("#interrupt-cells", cells(&[3])), ("phandle", cells(&[2]))],
                children: vec![],
            },
            Node {
                name: "soc",
                props: vec![
                    ("compatible", string("simple-bus")),
                    ("#address-cells", cells(&[2])),
                    ("#size-cells", cells(&[2])),
                    ("ranges", vec![]),
                ],
                children: vec![
                    Node {
                        name: "iommu@5000000",
                        props: smmu_props,
                        children: vec![],
                    },
                    Node {
                        name: "mmc@2140000",
                        props: vec![
                            ("compatible", string("fsl,esdhc")),
                            ("reg", cells(&[0, 0x214_0000, 0, 0x1_0000])),
                            ("iommus", master_iommus),
                        ],
                        children: vec![],
                    },
                    Node {
                        name: "pcie@1f0000000",
                        props: vec![
                            ("compatible", string("pci-host-ecam-generic")),
                            ("device_type", string("pci")),
                            ("reg", cells(&[1, 0xf000_0000, 0, 0x10_0000])),
                            ("#address-cells", cells(&[3])),
                            ("#size-cells", cells(&[2])),
                            ("iommu-map", ecam_map),
                        ],
                        children: vec![
                            Node {
                                name: "ethernet@0,0",
                                props: vec![
                                    ("compatible", string("fsl,enetc")),
                                    ("reg", cells(&[0, 0, 0, 0, 0])),
                                ],
                                children: vec![],
                            },
                            Node {
                                name: "ethernet@0,6",
                                props: vec![
                                    ("compatible", string("fsl,enetc")),
                                    ("reg", cells(&[0x600, 0, 0, 0, 0])),
                                ],
                                children: vec![],
                            },
                        ],
                    },
                ],
            },
        ],
    };
    dtb(&root)
}

fn good() -> Vec<u8> {
    tree(
        vec![("#global-interrupts", cells(&[1]))],
        cells(&[1, 3]),
        cells(&[0, 1, 0x29, 0xc]),
    )
}

/// The KBox as a blob: the repo's own text, built by the fixtures crate (the corruption tests
/// need a realistic blob, not the real one).
fn real_kbox() -> Vec<u8> {
    lab_fixtures::kbox_dtb()
}

#[test]
fn the_builder_tree_loads() {
    let b = Board::from_dtb(&good()).unwrap();
    assert_eq!(b.model, "Test board");
    assert_eq!((b.smmus[0].global_irqs, b.smmus[0].context_irqs), (1, 1));
    let names: Vec<String> = b.masters.iter().map(|m| m.log_prefix()).collect();
    assert_eq!(
        names,
        vec![
            "sdhci-esdhc 2140000.mmc",
            "fsl_enetc 0000:00:00.0",
            "fsl_enetc 0000:00:00.6"
        ]
    );
    let sids: Vec<u16> = b.masters.iter().map(|m| m.ids[0].sid).collect();
    assert_eq!(sids, vec![3, 0x29, 0x2f]);
}

#[test]
fn truncated_blob() {
    let d = real_kbox();
    assert!(matches!(
        Board::from_dtb(&d[..20]),
        Err(BoardError::Truncated {
            need: 40,
            have: 20,
            ..
        })
    ));
    let e = Board::from_dtb(&d[..d.len() - 100]).unwrap_err();
    assert!(matches!(e, BoardError::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("totalsize"), "{e}");
}

#[test]
fn bad_magic_and_version() {
    let mut d = real_kbox();
    d[0] = 0;
    assert_eq!(
        Board::from_dtb(&d),
        Err(BoardError::BadMagic { found: 0x000d_feed })
    );
    let mut d = real_kbox();
    d[20..24].copy_from_slice(&16u32.to_be_bytes());
    assert_eq!(
        Board::from_dtb(&d),
        Err(BoardError::UnsupportedVersion { version: 16 })
    );
}

#[test]
fn missing_global_interrupts_names_node_and_property() {
    let d = tree(vec![], cells(&[1, 3]), cells(&[0, 1, 0x29, 0xc]));
    let e = Board::from_dtb(&d).unwrap_err();
    assert_eq!(
        e,
        BoardError::MissingProperty {
            node: "/soc/iommu@5000000".into(),
            property: "#global-interrupts".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "/soc/iommu@5000000: missing #global-interrupts property"
    );
}

#[test]
fn iommus_phandle_to_nothing() {
    let d = tree(
        vec![("#global-interrupts", cells(&[1]))],
        cells(&[7, 3]),
        cells(&[0, 1, 0x29, 0xc]),
    );
    assert_eq!(
        Board::from_dtb(&d),
        Err(BoardError::DanglingPhandle {
            node: "/soc/mmc@2140000".into(),
            property: "iommus".into(),
            phandle: 7
        })
    );
}

#[test]
fn iommus_entry_truncated() {
    let d = tree(
        vec![("#global-interrupts", cells(&[1]))],
        cells(&[1]),
        cells(&[0, 1, 0x29, 0xc]),
    );
    let e = Board::from_dtb(&d).unwrap_err();
    assert!(
        matches!(&e, BoardError::Property { node, property, .. } if node == "/soc/mmc@2140000" && property == "iommus"),
        "{e}"
    );
}

#[test]
fn iommu_map_with_bad_length() {
    let d = tree(
        vec![("#global-interrupts", cells(&[1]))],
        cells(&[1, 3]),
        cells(&[0, 1, 0x29]),
    );
    let e = Board::from_dtb(&d).unwrap_err();
    assert!(
        matches!(&e, BoardError::Property { node, property, .. } if node == "/soc/pcie@1f0000000" && property == "iommu-map"),
        "{e}"
    );
    assert!(e.to_string().contains("bad length 12 bytes"), "{e}");
}

#[test]
fn bad_iommu_cells_and_too_few_interrupts() {
    let d = tree(
        vec![("#global-interrupts", cells(&[2]))],
        cells(&[1, 3]),
        cells(&[0, 1, 0x29, 0xc]),
    );
    let e = Board::from_dtb(&d).unwrap_err();
    assert!(
        e.to_string()
            .contains("found 2 interrupts but expected at least 3"),
        "{e}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    /// Any corruption of a real blob either still loads or fails with a typed error.
    #[test]
    fn corrupting_a_real_dtb_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut d = real_kbox();
        for (i, b) in edits {
            let at = i.index(d.len());
            d[at] = b;
        }
        if let Some(c) = cut {
            let n = c.index(d.len());
            d.truncate(n);
        }
        let _ = Board::from_dtb(&d);
    }

    /// Corruption aimed at the structure block (header intact) is the harder case.
    #[test]
    fn corrupting_the_structure_block_never_panics(
        edits in proptest::collection::vec((0usize..4000, any::<u32>()), 1..6),
    ) {
        let mut d = real_kbox();
        let off = u32::from_be_bytes([d[8], d[9], d[10], d[11]]) as usize;
        for (w, v) in edits {
            let at = off + w * 4;
            if at + 4 <= d.len() {
                d[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
        }
        let _ = Board::from_dtb(&d);
    }
}

#[test]
fn absurd_nesting_is_an_error_not_a_stack_overflow() {
    fn nest(depth: usize) -> Node {
        Node {
            name: "n",
            props: vec![],
            children: if depth == 0 {
                vec![]
            } else {
                vec![nest(depth - 1)]
            },
        }
    }
    let root = Node {
        name: "",
        props: vec![],
        children: vec![nest(200)],
    };
    let e = Board::from_dtb(&dtb(&root)).unwrap_err();
    assert!(matches!(e, BoardError::TooDeep { .. }), "{e}");
}

/// A master pointing at a disabled SMMU is kept but not attached (Linux gives it no IOMMU), and
/// a disabled SMMU is not held to the probe-time requirements.
#[test]
fn masters_of_a_disabled_smmu_are_not_attached() {
    let d = tree(
        vec![("status", string("disabled"))],
        cells(&[1, 3]),
        cells(&[0, 1, 0x29, 0xc]),
    );
    let b = Board::from_dtb(&d).unwrap();
    assert!(!b.smmus[0].enabled);
    assert_eq!(b.masters.len(), 3);
    assert!(b.masters.iter().all(|m| !m.attached));
    assert_eq!(b.expected_groups(), vec![None, None, None]);
    assert!(b.probe_order().is_empty());
    let r = sim::board_report(&b);
    assert_eq!(r.matches("none (SMMU disabled)").count(), 3, "{r}");
}

/// `#global-interrupts = <0xffffffff>` is an error naming the property's consequence, not an
/// arithmetic overflow (this test runs in debug builds, where `global + 1` panicked).
#[test]
fn absurd_global_interrupt_count_is_an_error_not_an_overflow() {
    let d = tree(
        vec![("#global-interrupts", cells(&[0xffff_ffff]))],
        cells(&[1, 3]),
        cells(&[0, 1, 0x29, 0xc]),
    );
    let e = Board::from_dtb(&d).unwrap_err();
    assert!(
        e.to_string()
            .contains("found 2 interrupts but expected at least 4294967296"),
        "{e}"
    );
}

/// The header's `off_mem_rsvmap` must point at a reservation map inside the blob.
#[test]
fn reservation_map_outside_the_blob_is_rejected() {
    for (off, why) in [
        (0xffff_fff0u32, "outside the blob"),
        (44, "not 8-byte aligned"),
        (8, "not 8-byte aligned"),
    ] {
        let mut d = good();
        d[16..20].copy_from_slice(&off.to_be_bytes());
        let e = Board::from_dtb(&d).unwrap_err();
        assert!(
            matches!(&e, BoardError::Structure { offset, .. } if *offset == u64::from(off)),
            "{off:#x}: {e}"
        );
        assert!(e.to_string().contains(why), "{off:#x}: {e}");
    }
    // A map that runs to the end of the blob without its (0, 0) terminator.
    let mut d = good();
    let total = d.len() as u32;
    let last = (total - 8) & !7;
    d[16..20].copy_from_slice(&last.to_be_bytes());
    let n = d.len();
    d[n - 8..].copy_from_slice(&[0xff; 8]);
    assert!(Board::from_dtb(&d).is_err());
}
