//! `--pci BDF[=DRIVER]`: an enumerated PCI function on a host with an iommu-map (QEMU virt's
//! fixture), shown by `board` with the stream ID the map gives it; bad ones are exit 2.

use assert_cmd::Command;

fn lab() -> Command {
    Command::cargo_bin("smmu-lab").expect("binary built by cargo")
}

fn qemu_virt(dir: &std::path::Path) -> String {
    let blob = lab_fixtures::qemu_virt_smmuv3_dtb();
    let p = lab_fixtures::write_to(dir, "qemu-virt-smmuv3.dtb", &blob);
    p.to_str().unwrap().to_string()
}

#[test]
fn board_shows_the_named_function_at_its_requester_id() {
    let dir = tempfile::tempdir().unwrap();
    let dtb = qemu_virt(dir.path());
    let out = lab()
        .args(["board", &dtb, "--pci", "00:01.0=e1000e"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(
            "  /pcie@10000000 | 0000   | 0x0..0x10000  | 0    | 0x0            | 0xffffffff"
        ),
        "{text}"
    );
    assert!(
        text.contains("  e1000e 0000:00:01.0   | pci | 0    | 0x8                   | -           | no        | 1"),
        "{text}"
    );
}

#[test]
fn bad_functions_are_exit_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let dtb = qemu_virt(dir.path());
    for (pci, why) in [
        ("00:01.9", "function 0x9 is above 0x7"),
        (
            "0002:00:01.0",
            "no host bridge with an iommu-map has domain 0002",
        ),
        ("00:00.0", "0000:00:00.0 is already on the board"),
    ] {
        for args in [
            vec!["board", dtb.as_str(), "--pci", pci],
            vec!["run", "reboot", "--dtb", dtb.as_str(), "--pci", pci],
        ] {
            let out = lab().args(&args).assert().code(2).get_output().clone();
            assert!(out.stdout.is_empty());
            let err = String::from_utf8(out.stderr).unwrap();
            assert!(
                err.contains("--pci: ") && err.contains(why),
                "{args:?}: {err}"
            );
        }
    }
}

/// The SMMUv3 race on `sim::exec` is deterministic: the same exploration gives the same bytes
/// with one job or two, and a run's verdict measures the CPUs and the NIC (issue 13).
#[test]
fn v3_exploration_is_the_same_with_one_job_or_two() {
    let dir = tempfile::tempdir().unwrap();
    let dtb = qemu_virt(dir.path());
    let explore = |jobs: &str| {
        // In the temporary directory: a failing exploration writes its replay file there.
        let out = lab()
            .current_dir(dir.path())
            .args([
                "explore",
                "reboot",
                "--kernel",
                "linux-6.1",
                "--runs",
                "60",
                "--keep-going",
                "--dtb",
                &dtb,
                "--pci",
                "00:01.0=e1000e",
                "--traffic",
                "0000:00:01.0",
                "--jobs",
                jobs,
            ])
            .output()
            .unwrap();
        assert!(out.status.code() == Some(0) || out.status.code() == Some(1));
        String::from_utf8(out.stdout).unwrap()
    };
    let one = explore("1");
    assert!(one.contains("linux-6.1"), "{one}");
    assert_eq!(one, explore("2"));
    let out = lab()
        .args([
            "run",
            "reboot",
            "--kernel",
            "linux-6.1",
            "--seed",
            "1",
            "--dtb",
            &dtb,
            "--pci",
            "00:01.0=e1000e",
            "--traffic",
            "0000:00:01.0",
            "--json",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\"execution\": \"exec-contexts\""), "{text}");
}
