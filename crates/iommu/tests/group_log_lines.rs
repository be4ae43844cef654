//! Where the core prints its group lines, per era (facts from Linux's history, cited in
//! `ReleaseSteps` and `IommuCore::probe_device`):
//!
//! * `Adding to iommu group N` when the device joins its group, before its default domain and
//!   the probe's attach, so a probe whose attach fails has printed it (v6.1:
//!   `iommu_group_add_device`; v6.6+: `iommu_group_alloc_device`, fa0828036488); up to v6.4 a
//!   device joining a group that has a domain is attached at the join, before the line, and a
//!   failure there prints `Failed to add to iommu group N: ERR` instead (`join_attach.rs`);
//! * up to v6.3 a release prints `Removing from iommu group N` (`iommu_group_remove_device`),
//!   also the release of a probe that failed after joining (v6.1's `err_release`);
//! * from dba9ca9d41f5 (v6.4) the release prints no removal line at all.

mod common;
use common::*;
use iommu::*;
use std::sync::atomic::Ordering;

/// v6.12's core as kernel-history sets it: domains freed by the last member (aa0958570f24), a
/// silent release (dba9ca9d41f5) and no attach at the join (0046a4337eae).
fn v6_12() -> CoreConfig {
    CoreConfig {
        domains_freed_with_last_member: true,
        release_steps: ReleaseSteps::Deinit,
        join_attaches_to_group_domain: false,
        ..CoreConfig::default()
    }
}

#[test]
fn v6_1_a_failed_attach_prints_the_add_then_the_removal() {
    let r = rig(CoreConfig::default());
    r.fake.fail_attach.store(true, Ordering::Relaxed);
    let e = r
        .core
        .probe_device(pci("fsl_enetc 0000:00:00.0", 0, 0x429), r.inst);
    assert!(
        matches!(e, Err(CoreError::Driver(DriverError::NoDevice))),
        "{e:?}"
    );
    assert_eq!(
        r.log.lines(),
        [
            "fsl_enetc 0000:00:00.0: Adding to iommu group 0",
            "fsl_enetc 0000:00:00.0: Removing from iommu group 0",
        ]
    );
    // The failed device's group is gone, its number free for the next one.
    assert!(r.core.groups().is_empty());
    r.fake.fail_attach.store(false, Ordering::Relaxed);
    let d = r
        .core
        .probe_device(pci("fsl_enetc 0000:00:00.1", 1, 0x42a), r.inst)
        .unwrap();
    assert_eq!(r.core.group_of(d), Some(0));
    assert_eq!(
        r.log.lines()[2],
        "fsl_enetc 0000:00:00.1: Adding to iommu group 0"
    );
}

#[test]
fn v6_12_a_failed_attach_prints_the_add_only() {
    let r = rig(v6_12());
    r.fake.fail_attach.store(true, Ordering::Relaxed);
    assert!(r
        .core
        .probe_device(pci("fsl_enetc 0000:00:00.0", 0, 0x429), r.inst)
        .is_err());
    assert_eq!(
        r.log.lines(),
        ["fsl_enetc 0000:00:00.0: Adding to iommu group 0"]
    );
    assert!(r.core.groups().is_empty());
}

#[test]
fn without_the_join_attach_the_add_line_comes_before_the_attach() {
    // The line is out before the driver attaches: a second member whose attach fails has
    // printed it too, and the first member keeps its group. (v6.1 attaches a second member
    // at its join instead: `join_attach.rs`.)
    let v6_1_without_join_attach = CoreConfig {
        join_attaches_to_group_domain: false,
        ..CoreConfig::default()
    };
    for cfg in [v6_1_without_join_attach, v6_12()] {
        let silent = !cfg.release_steps.prints_removal();
        let r = rig(cfg);
        let a = r
            .core
            .probe_device(platform("etnaviv-gpu f0c0000.gpu", 8, 0x3e), r.inst)
            .unwrap();
        r.fake.fail_attach.store(true, Ordering::Relaxed);
        assert!(r
            .core
            .probe_device(platform("etnaviv etnaviv", 9, 0x3e), r.inst)
            .is_err());
        let mut want = vec![
            "etnaviv-gpu f0c0000.gpu: Adding to iommu group 0",
            "etnaviv etnaviv: Adding to iommu group 0",
        ];
        if !silent {
            want.push("etnaviv etnaviv: Removing from iommu group 0");
        }
        assert_eq!(r.log.lines(), want, "silent release: {silent}");
        assert_eq!(r.core.group_members(0), [a]);
    }
}

#[test]
fn v6_1_unregister_prints_every_removal_and_v6_12_none() {
    for (cfg, removals) in [(CoreConfig::default(), true), (v6_12(), false)] {
        let r = rig(cfg);
        for (i, n) in ["ahci-qoriq 3200000.sata", "dwc3 3100000.usb"]
            .into_iter()
            .enumerate()
        {
            r.core
                .probe_device(platform(n, i as u64, 0x3c + i as u32), r.inst)
                .unwrap();
        }
        r.core.unregister(r.inst).unwrap();
        let mut want = vec![
            "ahci-qoriq 3200000.sata: Adding to iommu group 0",
            "dwc3 3100000.usb: Adding to iommu group 1",
        ];
        if removals {
            want.extend([
                "ahci-qoriq 3200000.sata: Removing from iommu group 0",
                "dwc3 3100000.usb: Removing from iommu group 1",
            ]);
        }
        assert_eq!(r.log.lines(), want, "removal lines: {removals}");
        // Released either way: the groups are gone.
        assert!(r.core.groups().is_empty());
    }
}
