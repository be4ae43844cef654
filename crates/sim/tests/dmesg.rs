//! dmesg formatting and the Oops report, verbatim against the seed log.

use klog::{Level, Printk};
use sim::{kbox_a230_ls, Dmesg, OopsReport, TaskInfo};

/// The seed patch from `../shared/seed`; every test that reads it first returns early (skipped,
/// with a message) when `../shared` is absent.
fn seed() -> String {
    lab_fixtures::shared::seed_patch().expect("checked by the test")
}

/// The seed's lines from the one starting with `first` through the one starting with `last`.
fn block(first: &str, last: &str) -> Vec<String> {
    let s = seed();
    let lines: Vec<&str> = s.lines().collect();
    let a = lines.iter().position(|l| l.starts_with(first)).unwrap();
    let b = a + lines[a..].iter().position(|l| l.starts_with(last)).unwrap();
    lines[a..=b].iter().map(|l| l.to_string()).collect()
}

fn code(words: &[u32; 5]) -> [u32; 5] {
    *words
}

#[test]
fn timestamps_follow_the_simulated_clock_and_can_be_switched_off() {
    let d = Dmesg::new();
    d.printk(Level::Info, "booting");
    d.advance_ns(1_234_567_890);
    d.printk(
        Level::Notice,
        "arm-smmu 5000000.iommu: disabling translation",
    );
    d.advance_ns(100_000_000_000);
    d.printk(Level::Info, "later");
    assert_eq!(
        d.lines(),
        vec![
            "[    0.000000] booting",
            "[    1.234567] arm-smmu 5000000.iommu: disabling translation",
            "[  101.234567] later",
        ]
    );
    assert_eq!(d.now_ns(), 101_234_567_890);
    d.set_timestamps(false);
    assert_eq!(
        d.lines()[1],
        "arm-smmu 5000000.iommu: disabling translation"
    );
    assert_eq!(d.text().lines().count(), 3);
}

/// First manifestation: the map path in the MLD worker.
#[test]
fn oops_on_the_map_path_matches_the_seed() {
    if lab_fixtures::shared::seed_patch().is_none() {
        return;
    }
    let oops = OopsReport {
        fault_addr: 0x98,
        task: Some(TaskInfo::seed(0, 23, "kworker/0:1")),
        hardware_name: Some(kbox_a230_ls().hardware_name()),
        pc: "iommu_get_dma_domain+0x14/0x20".into(),
        lr: "iommu_dma_map_page+0x9c/0x254".into(),
        call_trace: block("iommu_get_dma_domain+0x14/0x20", "ret_from_fork+0x10/0x20"),
        code: code(&[0xd503201f, 0xf9416800, 0xd503233f, 0xd50323bf, 0xf9404c00]),
        in_interrupt: true,
    };
    let d = Dmesg::new();
    d.set_timestamps(false);
    d.printk(Level::Info, "before");
    assert!(d.panic(&oops));
    let mut want = vec!["before".to_string()];
    want.extend(block(
        "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000098",
        "Kernel panic - not syncing",
    ));
    // The seed's quote of this report stops at the panic line; the kernel goes on to print the
    // end marker.
    want.push(
        "---[ end Kernel panic - not syncing: Oops: Fatal exception in interrupt ]---".into(),
    );
    assert_eq!(d.lines(), want);
    assert!(d.stopped());
    d.printk(Level::Err, "dropped");
    assert_eq!(d.lines().len(), want.len());
    assert!(!d.panic(&oops), "a second panic prints nothing");
}

/// Call-trace frames of the seed's `n`th report.
fn trace(n: usize) -> Vec<String> {
    let s = seed();
    let lines: Vec<&str> = s.lines().collect();
    let start = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == "Call trace:")
        .nth(n)
        .unwrap()
        .0
        + 1;
    let len = lines[start..]
        .iter()
        .position(|l| l.starts_with("Code:"))
        .unwrap();
    lines[start..start + len]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// Second manifestation: the unmap path in NAPI; the reporter trimmed the CPU/Hardware lines.
#[test]
fn oops_on_the_unmap_path_matches_the_seed_verbatim() {
    if lab_fixtures::shared::seed_patch().is_none() {
        return;
    }
    let oops = OopsReport {
        fault_addr: 0xa8,
        task: None,
        hardware_name: None,
        pc: "iommu_get_dma_domain+0x14/0x20".into(),
        lr: "iommu_dma_unmap_page+0x38/0xe0".into(),
        call_trace: trace(1),
        code: code(&[0xd503201f, 0xf9416800, 0xd503233f, 0xd50323bf, 0xf9405400]),
        in_interrupt: true,
    };
    assert_eq!(oops.call_trace.len(), 9);
    let got: Vec<String> = oops.lines().into_iter().map(|(_, l)| l).collect();
    let want = block(
        "Unable to handle kernel NULL pointer dereference at virtual address 00000000000000a8",
        "---[ end Kernel panic",
    );
    assert_eq!(got, want);
    assert_eq!(trace(0).len(), 17);
}

#[test]
fn faults_above_page_zero_are_paging_requests_and_process_context_says_so() {
    if lab_fixtures::shared::seed_patch().is_none() {
        return;
    }
    let oops = OopsReport {
        fault_addr: 0xffff_8000_1234_5000,
        task: Some(TaskInfo::seed(1, 9, "ksoftirqd/1")),
        hardware_name: None,
        pc: "a+0x0/0x4".into(),
        lr: "b+0x0/0x4".into(),
        call_trace: vec![],
        code: [1, 2, 3, 4, 5],
        in_interrupt: false,
    };
    let l: Vec<String> = oops.lines().into_iter().map(|(_, l)| l).collect();
    assert_eq!(
        l[0],
        "Unable to handle kernel paging request at virtual address ffff800012345000"
    );
    assert_eq!(
        l[1],
        "CPU: 1 PID: 9 Comm: ksoftirqd/1 Not tainted 6.1.0-rc5-00088-gf3600ff8e322 #1930"
    );
    assert_eq!(l[5], "Code: 00000001 00000002 00000003 00000004 (00000005)");
    assert_eq!(l[7], "Kernel panic - not syncing: Oops: Fatal exception");
}

/// The ready-made seed reports equal the ones assembled from the seed text above.
#[test]
fn seed_oops_constructors_print_the_seed() {
    if lab_fixtures::shared::seed_patch().is_none() {
        return;
    }
    use sim::dmesg::seed;
    let map = seed::oops_map_path(&kbox_a230_ls().hardware_name());
    assert_eq!(
        map.call_trace,
        block("iommu_get_dma_domain+0x14/0x20", "ret_from_fork+0x10/0x20")
    );
    let lines: Vec<String> = map.lines().into_iter().map(|(_, l)| l).collect();
    let want = block(
        "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000098",
        "Kernel panic - not syncing",
    );
    assert_eq!(&lines[..want.len()], &want[..]);
    let unmap: Vec<String> = seed::oops_unmap_path()
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert_eq!(
        unmap,
        block(
            "Unable to handle kernel NULL pointer dereference at virtual address 00000000000000a8",
            "---[ end Kernel panic",
        )
    );
}
