//! The real stack's driver-core, coherent-DMA and unmanaged-domain teardown operations
//! (`bind`, `unbind` of a master or of the SMMU, `dma-alloc-coherent`, `dma-free-coherent`,
//! `iommu-detach-device`, `iommu-domain-free`): the exact lines each run prints and the
//! findings the properties derive from them.

use assert_cmd::Command;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `smmu-lab ARGS` from the repository root: its stdout from the first master's group line on
/// (the SMMU's probe banner before it is the same in every run), and its exit status.
fn run(args: &[&str]) -> (String, i32) {
    let out = Command::cargo_bin("smmu-lab")
        .expect("the smmu-lab binary is built")
        .current_dir(repo())
        .args(args)
        .output()
        .expect("smmu-lab runs");
    let text = String::from_utf8(out.stdout).unwrap();
    let from = text.find("ahci-qoriq 3200000.sata: Adding").expect(&text);
    (text[from..].to_string(), out.status.code().unwrap_or(-1))
}

/// A driver that unbinds without a bind, detaches a domain its device is not attached to, maps
/// through a domain it freed and frees it twice: two kernel warnings, two use-after-frees.
#[test]
fn misuse_of_unbind_detach_and_domain_free_is_warned_and_reported_as_use_after_free() {
    let (out, code) = run(&["run", "crates/smmu-lab/tests/stack_ops/misuse.toml"]);
    assert_eq!(
        out,
        r#"ahci-qoriq 3200000.sata: Adding to iommu group 0
WARNING: at drivers/iommu/iommu.c: ahci-qoriq 3200000.sata: iommu_device_unuse_default_domain with no claim on the group
WARNING: at drivers/iommu/iommu.c: ahci-qoriq 3200000.sata: iommu_detach_device of a domain its group is not attached to
3200000.sata: unbound
3200000.sata: iommu_domain_alloc() = a
3200000.sata: iommu_domain_alloc() = b
3200000.sata: iommu_attach_device(a) = 0
3200000.sata: iommu_detach_device(b): nothing detached
3200000.sata: iommu_detach_device(a)
drv: iommu_domain_free(a)
3200000.sata: iommu_map(a, 0x100000, 0x80800000, 0x1000) failed: KASAN: use-after-free of struct iommu_domain in iommu_map
drv: iommu_domain_free(a) failed: KASAN: use-after-free of struct iommu_domain in iommu_domain_free
drv: iommu_domain_free(b)

verdict (v6.13, real stack):
  no-use-after-free: 3200000.sata: iommu_map(a, 0x100000, 0x80800000, 0x1000) failed: KASAN: use-after-free of struct iommu_domain in iommu_map
  no-use-after-free: drv: iommu_domain_free(a) failed: KASAN: use-after-free of struct iommu_domain in iommu_domain_free
  no-kernel-warning: WARNING: at drivers/iommu/iommu.c: ahci-qoriq 3200000.sata: iommu_device_unuse_default_domain with no claim on the group
  no-kernel-warning: WARNING: at drivers/iommu/iommu.c: ahci-qoriq 3200000.sata: iommu_detach_device of a domain its group is not attached to
properties violated: no-use-after-free, no-kernel-warning
replay: smmu-lab replay crates/smmu-lab/tests/stack_ops/misuse.toml misuse@8a8649048a1b:v6.13:random@0
"#
    );
    assert_eq!(code, 1);
}

/// The SMMU unbound under a bound driver: v6.1's `iommu_device_unregister` (57365a04c921)
/// releases the master, so the driver's `dma_free_coherent` finds it released.
#[test]
fn smmu_unbind_on_v6_1_releases_the_bound_master_and_its_coherent_free_fails() {
    let (out, code) = run(&[
        "run",
        "crates/smmu-lab/tests/stack_ops/smmu-unbind-coherent.toml",
        "--kernel",
        "v6.1",
    ]);
    assert_eq!(
        out,
        r#"ahci-qoriq 3200000.sata: Adding to iommu group 0
arm-smmu 5000000.iommu: disabling translation
ahci-qoriq 3200000.sata: Removing from iommu group 0
3200000.sata: bound
3200000.sata: dma_alloc_coherent(0x1000) = 0xfffffffff000 (memory at 0x80200000)
3200000.sata: DMA read of 0x1000 bytes at IOVA 0xfffffffff000: translated
ahci: unbind of the SMMU: .remove returned
3200000.sata: dma_free_coherent failed: device was released from its IOMMU

verdict (v6.1, real stack):
  nothing found
properties: all held
replay: smmu-lab replay crates/smmu-lab/tests/stack_ops/smmu-unbind-coherent.toml smmu-unbind-coherent@817773b181a9:v6.1:random@0
"#
    );
    assert_eq!(code, 0);
}

/// The same file on v6.0 (before 57365a04c921): the master stays in its group; the free unmaps.
#[test]
fn smmu_unbind_on_v6_0_keeps_the_master_and_frees_its_buffer() {
    let (out, code) = run(&[
        "run",
        "crates/smmu-lab/tests/stack_ops/smmu-unbind-coherent.toml",
        "--kernel",
        "v6.0",
    ]);
    assert_eq!(
        out,
        r#"ahci-qoriq 3200000.sata: Adding to iommu group 0
arm-smmu 5000000.iommu: disabling translation
3200000.sata: bound
3200000.sata: dma_alloc_coherent(0x1000) = 0xfffffffff000 (memory at 0x80200000)
3200000.sata: DMA read of 0x1000 bytes at IOVA 0xfffffffff000: translated
ahci: unbind of the SMMU: .remove returned
3200000.sata: cmd freed

verdict (v6.0, real stack):
  nothing found
properties: all held
replay: smmu-lab replay crates/smmu-lab/tests/stack_ops/smmu-unbind-coherent.toml smmu-unbind-coherent@817773b181a9:v6.0:random@0
"#
    );
    assert_eq!(code, 0);
}

/// The worked example's first schedule: the engine's reads precede the free and translate.
#[test]
fn worked_example_reads_translated_when_the_engine_runs_before_the_free() {
    let (out, code) = run(&["run", "scenarios/unbind-frees-domain-under-dma.toml"]);
    assert_eq!(
        out,
        r#"ahci-qoriq 3200000.sata: Adding to iommu group 0
3200000.sata: bound
3200000.sata: iommu_domain_alloc() = own
3200000.sata: iommu_attach_device(own) = 0
3200000.sata: iommu_map(own, 0x80100000, 0x80800000, 0x1000) = 0
3200000.sata: DMA read of 0x1000 bytes at IOVA 0x80100000: translated
3200000.sata: DMA read of 0x1000 bytes at IOVA 0x80100000: translated
sysfs: iommu_domain_free(own) while group 0 is still attached to it
3200000.sata: unbound

verdict (v6.13, real stack):
  nothing found
properties: all held
replay: smmu-lab replay scenarios/unbind-frees-domain-under-dma.toml unbind-frees-domain-under-dma@0393536c27b2:v6.13:random@0
"#
    );
    assert_eq!(code, 0);
}

/// The explorer's failing schedule of the worked example: reads after `iommu_domain_free`
/// meet the context bank arm-smmu cleared (SCTLR.M = 0) and go out untranslated.
#[test]
fn worked_example_engine_reading_after_the_free_bypasses_the_freed_context_bank() {
    let (out, code) = run(&[
        "replay",
        "scenarios/unbind-frees-domain-under-dma.toml",
        "unbind-frees-domain-under-dma@0393536c27b2:v6.13:s",
    ]);
    assert_eq!(
        out,
        r#"ahci-qoriq 3200000.sata: Adding to iommu group 0
3200000.sata: bound
3200000.sata: iommu_domain_alloc() = own
3200000.sata: iommu_attach_device(own) = 0
3200000.sata: iommu_map(own, 0x80100000, 0x80800000, 0x1000) = 0
sysfs: iommu_domain_free(own) while group 0 is still attached to it
3200000.sata: unbound
3200000.sata (stream 0x4) DMA read at IOVA 0x80100000 of ring: bypassed translation (the context bank's SCTLR.M is 0: the bank is disabled), reaching physical address 0x80100000
3200000.sata (stream 0x4) DMA read at IOVA 0x80100000 of ring: bypassed translation (the context bank's SCTLR.M is 0: the bank is disabled), reaching physical address 0x80100000

verdict (v6.13, real stack):
  no-stray-dma: 3200000.sata (stream 0x4) DMA read at IOVA 0x80100000 of ring: bypassed translation (the context bank's SCTLR.M is 0: the bank is disabled), reaching physical address 0x80100000
  no-stray-dma: 3200000.sata (stream 0x4) DMA read at IOVA 0x80100000 of ring: bypassed translation (the context bank's SCTLR.M is 0: the bank is disabled), reaching physical address 0x80100000
properties violated: no-stray-dma
"#
    );
    assert_eq!(code, 1);
}
