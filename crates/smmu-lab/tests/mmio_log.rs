//! `--mmio-log FILE` on run and replay (format: docs/mmio-log.md): the attach and shutdown
//! slices pinned write by write, the same bytes from run and replay, the run itself unchanged,
//! and bad paths refused before anything runs.

use assert_cmd::Command;

fn lab() -> Command {
    let mut c = Command::cargo_bin("smmu-lab").expect("binary built by cargo");
    c.env("RUST_BACKTRACE", "1");
    c
}

fn run(args: &[&str], code: i32) -> String {
    let out = lab().args(args).assert().code(code).get_output().clone();
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The lines from the marker `from` up to (not including) the next marker.
fn section<'a>(log: &'a str, from: &str) -> Vec<&'a str> {
    let mut lines = log.lines().skip_while(|l| *l != from);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no {from:?} in:\n{log}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| !l.starts_with("== ")))
        .collect()
}

#[test]
fn v2_log_pins_attach_and_shutdown_and_replays_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("run.log");
    let b = dir.path().join("replay.log");
    let a_s = a.to_str().unwrap();
    let plain = run(
        &["run", "reboot", "--kernel", "linux-6.2", "--seed", "2"],
        1,
    );
    let logged = run(
        &[
            "run",
            "reboot",
            "--kernel",
            "linux-6.2",
            "--seed",
            "2",
            "--mmio-log",
            a_s,
        ],
        1,
    );
    // Stray DMA after the fix (exit 1); keeping the log does not change the run.
    assert!(
        plain.contains("properties violated: no-stray-dma"),
        "{plain}"
    );
    assert_eq!(plain, logged);
    run(
        &[
            "replay",
            "reboot:linux-6.2:random@2",
            "--mmio-log",
            b.to_str().unwrap(),
        ],
        1,
    );
    let log = std::fs::read_to_string(&a).unwrap();
    assert_eq!(log, std::fs::read_to_string(&b).unwrap());
    assert!(!dir.path().join("run.log.partial").exists());

    let head: Vec<&str> = log.lines().take(5).collect();
    assert_eq!(
        head,
        [
            "# smmu-lab mmio-log v1",
            "== boot",
            "5000000.iommu R32 0x00020 sIDR0 0x7c013e80",
            "5000000.iommu R32 0x00024 sIDR1 0xd0000040",
            "5000000.iommu R32 0x00028 sIDR2 0x00005555",
        ]
    );
    // The ENETC's attach (v6.2's arm_smmu_attach_dev): SME as fault, context bank 4 for a
    // stage-1 domain, then the S2CR pointing at it. Then its probe's only unmap before the
    // first DMA: the RSS table's temporary buffer (`enetc_configure_si`), freed in strict
    // mode, so its page (IOVA 0xffff_e000) is invalidated by VA in ASID 4 and synced.
    assert_eq!(
        section(&log, "== attach 0000:00:00.0"),
        [
            "== attach 0000:00:00.0",
            "5000000.iommu W32 0x00c10 S2CR4 0x00020000",
            "5000000.iommu W32 0x00810 SMR4 0xfc000029",
            "5000000.iommu W32 0x10810 CBA2R4 0x00000001",
            "5000000.iommu W32 0x10010 CBAR4 0x0001f300",
            "5000000.iommu W32 0x440010 CB4.TCR2 0x00038015",
            "5000000.iommu W32 0x440030 CB4.TCR 0x00803510",
            "5000000.iommu W64 0x440020 CB4.TTBR0 0x0004000080104000",
            "5000000.iommu W64 0x440028 CB4.TTBR1 0x0004000000000000",
            "5000000.iommu W32 0x440038 CB4.MAIR0 0xf404ff44",
            "5000000.iommu W32 0x44003c CB4.MAIR1 0xffffffff",
            "5000000.iommu W32 0x440000 CB4.SCTLR 0x00001067",
            "5000000.iommu W32 0x00c10 S2CR4 0x00000004",
            "5000000.iommu W64 0x440620 CB4.TLBIVAL 0x00040000000ffffe",
            "5000000.iommu W32 0x4407f0 CB4.TLBSYNC 0xffffffff",
            "5000000.iommu R32 0x4407f4 CB4.TLBSTATUS 0x00000000",
        ]
    );
    // The phases come in the scenario's order.
    let phases: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("== ") && !l.starts_with("== attach"))
        .collect();
    assert_eq!(
        phases,
        ["== boot", "== first-dma 0000:00:00.0", "== shutdown reboot"]
    );
    // 32ea2c57dc21's v2 twin, the seed: shutdown is one write, sCR0 := CLIENTPD. The NIC's
    // driver has no .shutdown and keeps running on the other CPU's contexts, so its unmaps' TLB
    // maintenance (TLBIVAL, then TLBSYNC written with a non-zero value since 4e4abae311e4, then
    // the TLBSTATUS poll) may come before or after it; nothing else may touch the SMMU.
    let shutdown = section(&log, "== shutdown reboot");
    let scr0 = "5000000.iommu W32 0x00000 sCR0 0x00000001";
    assert_eq!(
        shutdown.iter().filter(|l| **l == scr0).count(),
        1,
        "{shutdown:?}"
    );
    for line in shutdown[1..].iter().filter(|l| **l != scr0) {
        let reg = line.split_whitespace().nth(3).unwrap_or("");
        assert!(
            ["CB4.TLBIVAL", "CB4.TLBSYNC", "CB4.TLBSTATUS"].contains(&reg),
            "besides the shutdown's write only the driver's TLB maintenance may come: {line}"
        );
    }
}

#[test]
fn bad_mmio_log_paths_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("x.log");
    for (path, why) in [
        (missing.to_str().unwrap(), "does not exist"),
        (dir.path().to_str().unwrap(), "is a directory"),
    ] {
        for cmd in [
            &["run", "reboot", "--mmio-log", path][..],
            &["replay", "reboot:linux-6.1:random@1", "--mmio-log", path][..],
        ] {
            let out = lab().args(cmd).assert().code(2).get_output().clone();
            assert!(out.stdout.is_empty(), "{cmd:?} printed a run");
            let err = String::from_utf8(out.stderr).unwrap();
            assert!(err.contains("--mmio-log") && err.contains(why), "{err}");
        }
    }
    assert!(!missing.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// SMMUv3 (QEMU virt fixture, an e1000e named at 00:01.0 = stream ID 0x8): the attach slice with
/// its decoded commands (the v6.1 driver, which `linux-6.2` runs with 32ea2c57dc21), and the
/// shutdown's one control write, CR0 := 0.
#[test]
fn v3_log_pins_attach_commands_and_the_shutdown_write() {
    let dir = tempfile::tempdir().unwrap();
    let dtb = lab_fixtures::write_to(
        dir.path(),
        "qemu-virt-smmuv3.dtb",
        &lab_fixtures::qemu_virt_smmuv3_dtb(),
    );
    let log_path = dir.path().join("v3.log");
    let args = [
        "run",
        "reboot",
        "--kernel",
        "linux-6.2",
        "--seed",
        "1",
        "--dtb",
        dtb.to_str().unwrap(),
        "--pci",
        "00:01.0=e1000e",
        "--traffic",
        "0000:00:01.0",
        "--mmio-log",
        log_path.to_str().unwrap(),
    ];
    let out = run(&args, 1);
    assert!(out.contains("properties violated: no-stray-dma"), "{out}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(
        section(&log, "== attach 0000:00:01.0"),
        [
            "== attach 0000:00:01.0",
            "9050000.smmuv3 W32 0x00098 CMDQ_PROD 0x0000000c",
            "9050000.smmuv3 CMD CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0",
            "9050000.smmuv3 R32 0x0009c CMDQ_CONS 0x0000000c",
            "9050000.smmuv3 W32 0x00098 CMDQ_PROD 0x0000000d",
            "9050000.smmuv3 CMD CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0",
            "9050000.smmuv3 R32 0x0009c CMDQ_CONS 0x0000000d",
            "9050000.smmuv3 W32 0x00098 CMDQ_PROD 0x0000000f",
            "9050000.smmuv3 CMD CMD_CFGI_STE sid=0x8 leaf=1",
            "9050000.smmuv3 CMD CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0",
            "9050000.smmuv3 R32 0x0009c CMDQ_CONS 0x0000000f",
            "9050000.smmuv3 W32 0x00098 CMDQ_PROD 0x00000011",
            "9050000.smmuv3 CMD CMD_CFGI_STE sid=0x8 leaf=1",
            "9050000.smmuv3 CMD CMD_SYNC cs=sev msiaddr=0x0 msidata=0x0",
            "9050000.smmuv3 R32 0x0009c CMDQ_CONS 0x00000011",
            "9050000.smmuv3 W32 0x00098 CMDQ_PROD 0x00000012",
            "9050000.smmuv3 CMD CMD_PREFETCH_CONFIG sid=0x8",
        ]
    );
    let control: Vec<&str> = log
        .lines()
        .skip_while(|l| !l.starts_with("== shutdown"))
        .filter(|l| l.contains(" W32 ") && (l.contains(" CR0 ") || l.contains(" GBPA ")))
        .collect();
    assert_eq!(control, ["9050000.smmuv3 W32 0x00020 CR0 0x00000000"]);
}
