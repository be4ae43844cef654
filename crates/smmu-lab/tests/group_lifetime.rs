//! The IOMMU group's lifetime on the real stack (issue 13): a device joining a group holds it
//! (Linux's kobject reference), so worked example 3 — etnaviv probing into the group the GPU's
//! removal empties — finds nothing on any kernel; and a DMA call that meets the release is a
//! finding: the NULL group pointer is `no-oops`, a group or domain freed under the call is
//! `no-use-after-free`.

use assert_cmd::Command;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `smmu-lab ARGS` from the repository root: stdout and the exit status.
fn run(args: &[&str]) -> (String, i32) {
    let out = Command::cargo_bin("smmu-lab")
        .expect("the smmu-lab binary is built")
        .current_dir(repo())
        .args(args)
        .output()
        .expect("smmu-lab runs");
    (
        String::from_utf8(out.stdout).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

fn dfs(file: &str, kernel: &str) -> (String, i32) {
    run(&[
        "explore",
        file,
        "--kernel",
        kernel,
        "--strategy",
        "dfs",
        "--depth",
        "2",
        "--runs",
        "100000",
        "--keep-going",
    ])
}

#[test]
fn worked_example_3_finds_no_freed_group_on_any_kernel() {
    // v6.13 releases as iommu_deinit_device does: the driver's release_device after the unlink,
    // under group->mutex with no scheduling point between them (ReleaseSteps::Deinit), so its
    // bounded space is smaller than v6.1's.
    for (kernel, runs) in [("v5.14", 1153), ("v6.1", 597), ("v6.13", 557)] {
        let (out, code) = dfs("scenarios/probe-vs-remove.toml", kernel);
        assert_eq!(
            out,
            format!("probe-vs-remove on {kernel} (real stack, dfs): {runs} runs, no property violated; the bounded space was exhausted\n")
        );
        assert_eq!(code, 0);
    }
}

const MAP_VS_REMOVE: &str = "crates/smmu-lab/tests/stack_ops/map-vs-remove.toml";

/// The GPU maps while it is removed. v6.1: the NULL group (53 runs) or, having loaded the group
/// before the release, its freed default domain (6). v6.13 frees the domain when the last
/// member leaves and clears `default_domain`: a call that loaded the group then reads the freed
/// group (13 runs; its release has no scheduling point between the driver's release and the
/// unlink, so 61 schedules, not v6.1's 65).
#[test]
fn dma_calls_meeting_the_release_are_oops_and_use_after_free_findings() {
    for (kernel, runs, failing, oops, uaf) in [("v6.1", 65, 59, 53, 6), ("v6.13", 61, 48, 35, 13)] {
        let (out, code) = dfs(MAP_VS_REMOVE, kernel);
        assert_eq!(
            out,
            format!(
                "map-vs-remove on {kernel} (real stack, dfs): {runs} runs, {failing} failing (no-oops: {oops}, no-use-after-free: {uaf})
  first failure: run 0, violated no-oops
  reproduce: smmu-lab replay {MAP_VS_REMOVE} map-vs-remove@779aab3ad0ef:{kernel}:s
"
            )
        );
        assert_eq!(code, 1);
    }
    let (out, code) = run(&["replay", MAP_VS_REMOVE, "map-vs-remove@779aab3ad0ef:v6.1:s"]);
    let from = out.find("etnaviv-gpu f0c0000.gpu: Adding").expect(&out);
    assert_eq!(
        &out[from..],
        "etnaviv-gpu f0c0000.gpu: Adding to iommu group 0
etnaviv-gpu f0c0000.gpu: Removing from iommu group 0
f0c0000.gpu: dma_map_page failed: kernel oops: NULL pointer dereference at 0x98

verdict (v6.1, real stack):
  no-oops: f0c0000.gpu: dma_map_page failed: kernel oops: NULL pointer dereference at 0x98
properties violated: no-oops
"
    );
    assert_eq!(code, 1);
}
