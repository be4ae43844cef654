//! Every refusal: the typed kind, and the exact line and column of the offending value.

use kernel_history::{Fix, KernelSpecError, Preset};
use proptest::prelude::*;
use scenario_file::{parse, BufferKind, ErrorKind, Op, Param, ScenarioError, SharedIoError};
use std::error::Error as _;
use std::path::Path;

const BASE: &str = r#"# a base scenario every test edits
[scenario]
name = "base"

[board]
builtin = "kbox-a230-ls"

[kernel]
version = "v6.1"
cmdline = "iommu.strict=1"

[[driver]]
device = "0000:00:00.0"
dma = "enetc-ping-flood"

[[actor]]
name = "io"
kind = "workqueue"
script = [
  { op = "dma-map-page", device = "3200000.sata", size = 4096, dir = "to-device", buffer = "b" },
  { op = "dma-unmap-page", device = "3200000.sata", buffer = "b" },
]

[[actor]]
name = "shell"
kind = "cpu-task"
cpu = 1
script = [{ op = "reboot-force" }]

[check]
properties = ["no-oops"]
"#;

fn err(text: &str) -> ScenarioError {
    match parse(text, Path::new("dir/race.toml")) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Replace the first `from` with `to`; the error must point at the start of `at` (the first
/// occurrence in the edited text).
fn check(from: &str, to: &str, at: &str) -> ScenarioError {
    assert!(BASE.contains(from), "{from}");
    let text = BASE.replacen(from, to, 1);
    let e = err(&text);
    let offset = text.find(at).unwrap_or_else(|| panic!("{at} not in text"));
    let line = text[..offset].matches('\n').count() + 1;
    let column = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
    assert_eq!(
        (e.line, e.column),
        (line, column),
        "{e} (expected at {at:?})"
    );
    assert_eq!(e.file, Path::new("dir/race.toml"));
    e
}

#[test]
fn the_base_is_valid() {
    let s = parse(BASE, Path::new("dir/race.toml")).unwrap();
    assert_eq!(s.actors.len(), 2);
    assert_eq!(s.actors[0].script[1].op, Op::DmaUnmapPage);
}

#[test]
fn unknown_keys_top_table_actor_and_step() {
    let e = check("[check]", "colour = 1\n[check]", "colour");
    assert_eq!(
        e.to_string(),
        "dir/race.toml:30:1: unknown key 'colour' (expected one of 'name', 'kind', 'cpu', 'device', 'script')"
    );
    let e = check("[board]\n", "[board]\ncolor = \"red\"\n", "color");
    assert!(matches!(*e.kind, ErrorKind::UnknownKey { ref key, .. } if key == "color"));
    let e = check(
        "buffer = \"b\" },\n  { op = \"dma-unmap",
        "buffer = \"b\", prot = 3 },\n  { op = \"dma-unmap",
        "prot",
    );
    assert!(matches!(*e.kind, ErrorKind::UnknownKey { ref key, .. } if key == "prot"));
    let e = check("[scenario]", "[scenery]", "scenery]");
    assert!(matches!(*e.kind, ErrorKind::UnknownKey { ref key, .. } if key == "scenery"));
}

#[test]
fn unknown_operation() {
    let e = check("\"reboot-force\"", "\"reboot\"", "\"reboot\"");
    match *e.kind {
        ErrorKind::UnknownOperation { op, known } => {
            assert_eq!(op, "reboot");
            assert!(known.starts_with("probe, bind, unbind, remove, deferred-probe"));
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn device_not_on_the_board() {
    let e = check(
        "device = \"3200000.sata\", size",
        "device = \"3300000.sata\", size",
        "\"3300000.sata\"",
    );
    match &*e.kind {
        ErrorKind::DeviceNotOnBoard {
            device,
            board,
            known,
        } => {
            assert_eq!(device, "3300000.sata");
            assert_eq!(board, "Kontron KBox A-230-LS (DT)");
            assert!(known.contains("3200000.sata") && known.contains("5000000.iommu"));
        }
        k => panic!("{k:?}"),
    }
    let e = check(
        "device = \"0000:00:00.0\"",
        "device = \"0000:00:07.0\"",
        "\"0000:00:07.0\"",
    );
    assert!(matches!(*e.kind, ErrorKind::DeviceNotOnBoard { .. }));
}

#[test]
fn actor_with_no_script() {
    let e = check(
        "script = [{ op = \"reboot-force\" }]",
        "script = []",
        "\"shell\"",
    );
    assert_eq!(
        *e.kind,
        ErrorKind::ActorWithoutScript {
            actor: "shell".into()
        }
    );
    let e = check("script = [{ op = \"reboot-force\" }]", "", "\"shell\"");
    assert_eq!(
        e.to_string(),
        "dir/race.toml:25:8: actor 'shell' has no script"
    );
}

#[test]
fn unknown_fix_and_other_kernel_errors() {
    let e = check("\"v6.1\"", "\"v6.1+2c3d273eabe8\"", "\"v6.1+");
    assert_eq!(
        *e.kind,
        ErrorKind::Kernel(KernelSpecError::UnknownFix {
            name: "2c3d273eabe8".into()
        })
    );
    // The spec's error is the kind's source.
    let source = e.kind.source().expect("a source");
    assert_eq!(
        source.downcast_ref::<KernelSpecError>(),
        Some(&KernelSpecError::UnknownFix {
            name: "2c3d273eabe8".into()
        })
    );
    assert_eq!(e.kind.to_string(), format!("kernel: {source}"));
    let e = check("\"v6.1\"", "\"v6.1-ce31e6ca68bd\"", "\"v6.1-");
    assert_eq!(
        *e.kind,
        ErrorKind::Kernel(KernelSpecError::NotInPreset {
            preset: Preset::V6_1,
            fix: Fix::DontUnregisterOnShutdown
        })
    );
    let e = check("\"v6.1\"", "\"v7.0\"", "\"v7.0\"");
    assert!(matches!(
        *e.kind,
        ErrorKind::Kernel(KernelSpecError::UnknownPreset { .. })
    ));
    let e = check("\"v6.1\"", "\"v6.1+quiesce+quiesce\"", "\"v6.1+");
    assert!(matches!(
        *e.kind,
        ErrorKind::Kernel(KernelSpecError::Duplicate { .. })
    ));
}

#[test]
fn unknown_property() {
    let e = check(
        "[\"no-oops\"]",
        "[\"no-oops\", \"no-livelock\"]",
        "\"no-livelock\"",
    );
    match *e.kind {
        ErrorKind::UnknownProperty { name, known } => {
            assert_eq!(name, "no-livelock");
            assert_eq!(
                known,
                "no-oops, no-stray-dma, no-foreign-dma, no-lost-write, no-dma-through-freed-domain, no-fault, no-use-after-free, smmu-probed, no-sync-timeout, no-deadlock, one-group-per-stream, one-domain-per-group, no-kernel-warning, no-refcount-leak, no-block-split, no-iova-below-start, no-mapping-after-unmap, map-reachable"
            );
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn parameters_are_exactly_those_the_operation_takes() {
    let e = check(
        "{ op = \"reboot-force\" }",
        "{ op = \"reboot-force\", device = \"3200000.sata\" }",
        "\"3200000.sata\" }",
    );
    assert_eq!(
        *e.kind,
        ErrorKind::UnexpectedParameter {
            op: Op::RebootForce,
            param: Param::Device
        }
    );
    let e = check(", dir = \"to-device\"", "", "{ op = \"dma-map-page\"");
    assert_eq!(
        *e.kind,
        ErrorKind::MissingParameter {
            op: Op::DmaMapPage,
            param: Param::Dir
        }
    );
    let e = check("\"to-device\"", "\"to-cpu\"", "\"to-cpu\"");
    assert!(matches!(*e.kind, ErrorKind::UnknownDirection { .. }));
    let e = check("size = 4096", "size = 0", "0,");
    assert_eq!(*e.kind, ErrorKind::Zero { key: "size" });
}

#[test]
fn handles_are_made_once_used_with_their_kind_and_device() {
    // The op is valid; the buffer it names is a page mapping.
    let e = check("\"dma-unmap-page\"", "\"dma-unmap-sg\"", "\"b\" },\n]");
    assert!(matches!(
        *e.kind,
        ErrorKind::BufferKindMismatch {
            expected: BufferKind::Sg,
            actual: BufferKind::Page,
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        "dir/race.toml:21:60: 'dma-unmap-sg' needs a scatterlist mapping, and 'b' is a page mapping"
    );
    let e = check("buffer = \"b\" },\n]", "buffer = \"c\" },\n]", "\"c\" }");
    assert_eq!(*e.kind, ErrorKind::UnknownHandle { handle: "c".into() });
    let e = check(
        "{ op = \"dma-unmap-page\", device = \"3200000.sata\"",
        "{ op = \"dma-unmap-page\", device = \"3100000.usb\"",
        "\"b\" },\n]",
    );
    assert!(
        matches!(*e.kind, ErrorKind::BufferDevice { ref owner, ref device, .. }
        if owner == "3200000.sata" && device == "3100000.usb")
    );
    let e = check(
        "{ op = \"dma-unmap-page\", device = \"3200000.sata\", buffer = \"b\" }",
        "{ op = \"dma-map-page\", device = \"3200000.sata\", size = 1, dir = \"to-device\", buffer = \"b\" }",
        "\"b\" },\n]",
    );
    assert_eq!(
        *e.kind,
        ErrorKind::DuplicateHandle {
            handle: "b".into(),
            first_line: 20
        }
    );
}

#[test]
fn devices_must_fit_the_operation() {
    let e = check(
        "{ op = \"reboot-force\" }",
        "{ op = \"pci-hot-unplug\", device = \"3200000.sata\" }",
        "\"3200000.sata\" }]",
    );
    assert_eq!(
        *e.kind,
        ErrorKind::NotPci {
            device: "3200000.sata".into()
        }
    );
    let e = check(
        "device = \"3200000.sata\", size",
        "device = \"5000000.iommu\", size",
        "\"5000000.iommu\"",
    );
    assert!(matches!(
        *e.kind,
        ErrorKind::NotAMaster {
            op: "dma-map-page",
            ..
        }
    ));
    // Lifecycle operations take the SMMU itself; hot-unplug takes a PCI function.
    for ok in [
        "{ op = \"remove\", device = \"5000000.iommu\" }",
        "{ op = \"pci-hot-unplug\", device = \"0000:00:00.1\" }",
        "{ op = \"deferred-probe\", device = \"3100000.usb\" }",
    ] {
        let text = BASE.replacen("{ op = \"reboot-force\" }", ok, 1);
        parse(&text, Path::new("x.toml")).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn actors_and_their_kinds() {
    let e = check("kind = \"cpu-task\"", "kind = \"softirq\"", "\"softirq\"");
    assert!(matches!(*e.kind, ErrorKind::UnknownActorKind { .. }));
    let e = check(
        "kind = \"workqueue\"",
        "kind = \"workqueue\"\ncpu = 0",
        "0\nscript",
    );
    assert_eq!(
        *e.kind,
        ErrorKind::ActorKey {
            kind: "workqueue",
            key: "cpu"
        }
    );
    let e = check(
        "name = \"io\"",
        "name = \"shell\"",
        "\"shell\"\nkind = \"cpu-task\"",
    );
    assert_eq!(
        *e.kind,
        ErrorKind::DuplicateActor {
            name: "shell".into()
        }
    );
    // A DMA engine runs only device-side steps, and CPUs never do.
    let e = check(
        "{ op = \"reboot-force\" }",
        "{ op = \"device-write\", buffer = \"b\" }",
        "\"device-write\"",
    );
    assert_eq!(
        *e.kind,
        ErrorKind::OpNotForActor {
            op: "device-write",
            kind: "cpu-task"
        }
    );
    let e = check(
        "kind = \"cpu-task\"\ncpu = 1",
        "kind = \"dma-engine\"",
        "[[actor]]\nname = \"shell\"",
    );
    assert_eq!(
        *e.kind,
        ErrorKind::ActorNeeds {
            kind: "dma-engine",
            key: "device"
        }
    );
}

#[test]
fn board_drivers_and_cmdline() {
    let e = check(
        "builtin = \"kbox-a230-ls\"",
        "builtin = \"ls1028a-rdb\"",
        "\"ls1028a-rdb\"",
    );
    assert!(matches!(*e.kind, ErrorKind::UnknownBoard { .. }));
    let e = check(
        "builtin = \"kbox-a230-ls\"",
        "builtin = \"kbox-a230-ls\"\ndtb = \"x.dtb\"",
        "[board]",
    );
    assert_eq!(*e.kind, ErrorKind::BoardSource);
    let e = check(
        "builtin = \"kbox-a230-ls\"",
        "dtb = \"boards/missing.dtb\"",
        "\"boards/missing.dtb\"",
    );
    let shown = e.to_string();
    match &*e.kind {
        ErrorKind::DtbUnreadable { path, source } => {
            assert_eq!(
                path,
                Path::new("dir/boards/missing.dtb"),
                "relative to the file"
            );
            // The I/O error is kept typed, and the kind's source is it (shown as it shows).
            assert_eq!(source.io().kind(), std::io::ErrorKind::NotFound);
            let io = std::fs::read("dir/boards/missing.dtb").unwrap_err();
            assert_eq!(*source, SharedIoError::from(io));
            assert_eq!(source.clone(), *source);
            let chained = e.kind.source().expect("the kind has a source");
            assert_eq!(chained.to_string(), source.io().to_string());
            assert_eq!(
                shown,
                format!(
                    "dir/race.toml:{}:{}: cannot read device tree dir/boards/missing.dtb: {}",
                    e.line,
                    e.column,
                    source.io()
                )
            );
        }
        k => panic!("{k:?}"),
    }
    let e = check(
        "\"iommu.strict=1\"",
        "\"iommu.strict=maybe\"",
        "\"iommu.strict=maybe\"",
    );
    assert!(matches!(*e.kind, ErrorKind::Cmdline(_)));
    let ErrorKind::Cmdline(params) = &*e.kind else {
        unreachable!()
    };
    assert_eq!(
        e.kind.source().map(|s| s.to_string()),
        Some(params.to_string())
    );
    let e = check("\"iommu.strict=1\"", "\"quiet\"", "\"quiet\"");
    assert!(matches!(*e.kind, ErrorKind::Cmdline(_)), "{e}");
    let e = check(
        "device = \"0000:00:00.0\"",
        "device = \"3200000.sata\"",
        "\"enetc-ping-flood\"",
    );
    assert!(matches!(*e.kind, ErrorKind::NotAnEnetc { .. }));
    let e = check(
        "dma = \"enetc-ping-flood\"",
        "dma = \"engine-traffic\"\npackets = 3",
        "3\n",
    );
    assert_eq!(
        *e.kind,
        ErrorKind::PatternParameter {
            pattern: "engine-traffic",
            key: "packets"
        }
    );
    let e = check("dma = \"enetc-ping-flood\"", "dma = \"flood\"", "\"flood\"");
    assert!(matches!(*e.kind, ErrorKind::UnknownDmaPattern { .. }));
    let e = check(
        "[[actor]]\nname = \"io\"",
        "[[driver]]\ndevice = \"0000:00:00.0\"\n\n[[actor]]\nname = \"io\"",
        "\"0000:00:00.0\"\n\n",
    );
    assert!(matches!(*e.kind, ErrorKind::DuplicateDriver { .. }));
}

#[test]
fn iommu_map_is_page_aligned() {
    let text = BASE.replacen(
        "{ op = \"reboot-force\" }",
        "{ op = \"iommu-domain-alloc\", domain = \"d\", device = \"3200000.sata\" }, { op = \"iommu-map\", domain = \"d\", iova = 0x10800, size = 0x1000 }",
        1,
    );
    let e = err(&text);
    assert_eq!(
        *e.kind,
        ErrorKind::Unaligned {
            key: "iova",
            value: 0x10800
        }
    );
    let ok = text.replace("0x10800", "0x10000");
    parse(&ok, Path::new("x.toml")).unwrap();
    let bad = ok.replace("domain = \"d\", iova", "domain = \"e\", iova");
    assert_eq!(
        *err(&bad).kind,
        ErrorKind::UnknownHandle { handle: "e".into() }
    );
}

#[test]
fn toml_syntax_errors_have_positions() {
    for (to, at, message) in [
        (
            "cpu = one",
            "one",
            "string values must be quoted, expected literal string",
        ),
        (
            "cpu = \"1\"",
            "\"1\"",
            "invalid type: string \"1\", expected u32",
        ),
    ] {
        let e = check("cpu = 1", to, at);
        let ErrorKind::Syntax { source } = &*e.kind else {
            panic!("{e}")
        };
        // The reader's error is kept typed, with its span; the kind shows its message alone,
        // and its source is the reader's error itself.
        let text = BASE.replacen("cpu = 1", to, 1);
        let span = source.span().expect("a span");
        assert_eq!(span.start, text.find(at).unwrap());
        assert_eq!(source.message().trim_end(), message);
        assert_eq!(e.kind.to_string(), message);
        let chained = e.kind.source().expect("the kind has a source");
        assert!(chained.is::<toml::de::Error>());
        assert_eq!(
            e.to_string(),
            format!("dir/race.toml:{}:{}: {message}", e.line, e.column)
        );
    }
    let e = check("[kernel]\nversion = \"v6.1\"\n", "[kernel]\n", "[kernel]");
    assert_eq!(
        *e.kind,
        ErrorKind::MissingKey {
            key: "version".into()
        }
    );
}

proptest! {
    /// Any edit of a valid file is accepted or refused with a position inside the text; never
    /// a panic.
    #[test]
    fn arbitrary_edits_never_panic(pos in 0usize..BASE.len(), len in 0usize..8, insert in "[ -~\n]{0,12}") {
        let start = (0..=pos).rev().find(|&i| BASE.is_char_boundary(i)).unwrap_or(0);
        let end = (start + len).min(BASE.len());
        let end = (end..=BASE.len()).find(|&i| BASE.is_char_boundary(i)).unwrap_or(BASE.len());
        let text = format!("{}{}{}", &BASE[..start], insert, &BASE[end..]);
        if let Err(e) = parse(&text, Path::new("p.toml")) {
            prop_assert!(e.line >= 1 && e.line <= text.lines().count() + 1, "{}", e);
            prop_assert!(e.column >= 1);
        }
    }
}

#[test]
fn dma_mask_bits_out_of_range() {
    let e = check(
        "dma = \"enetc-ping-flood\"",
        "dma = \"enetc-ping-flood\"\ndma-mask-bits = 65",
        "65",
    );
    assert!(matches!(*e.kind, ErrorKind::DmaMaskBits { bits: 65 }));
    assert!(e.to_string().ends_with(
        "'dma-mask-bits' must be 12 to 64 (DMA_BIT_MASK's range for a 4 KiB page), got 65"
    ));
    let e = check(
        "dma = \"enetc-ping-flood\"",
        "dma = \"enetc-ping-flood\"\ndma-mask-bits = 11",
        "11",
    );
    assert!(matches!(*e.kind, ErrorKind::DmaMaskBits { bits: 11 }));
    // In range: accepted, and kept.
    let ok = BASE.replacen(
        "dma = \"enetc-ping-flood\"",
        "dma = \"enetc-ping-flood\"\ndma-mask-bits = 32",
        1,
    );
    let s = parse(&ok, Path::new("dir/race.toml")).unwrap();
    assert_eq!(s.drivers[0].dma_mask_bits, Some(32));
}

#[test]
fn smmu_ias_without_an_id2_encoding_is_refused_at_its_value() {
    let e = check(
        "builtin = \"kbox-a230-ls\"",
        "builtin = \"kbox-a230-ls\"\nsmmu-ias = 39",
        "39",
    );
    assert!(matches!(*e.kind, ErrorKind::SmmuIas { bits: 39 }), "{e}");
    assert_eq!(
        e.kind.to_string(),
        "'smmu-ias' must be one of 32, 36, 40, 42, 44, 48 (the sizes ID2.IAS encodes), got 39"
    );
}

#[test]
fn smmu_ias_is_a_real_stack_option() {
    // BASE reboots with DMA: the reboot machine runs it, which takes its SMMUs as the board
    // describes them.
    let text = BASE.replacen(
        "builtin = \"kbox-a230-ls\"",
        "builtin = \"kbox-a230-ls\"\nsmmu-ias = 40",
        1,
    );
    let s = parse(&text, Path::new("dir/race.toml")).unwrap();
    assert_eq!(s.smmu_ias, Some(40));
    let e = scenario_file::runnable(&s, &s.kernel).unwrap_err();
    assert!(
        matches!(*e.kind, ErrorKind::SmmuIasOffStack { bits: 40 }),
        "{e}"
    );
}
