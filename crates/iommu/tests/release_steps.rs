//! The steps of a device's release per era (`ReleaseSteps`), seen from the driver: the fake
//! driver's `release_device` prints what the core has done to the device's group by the time
//! the driver is called, into the same log as the core's lines, so each era's exact lines
//! and their order are one assertion.
//!
//! * up to v6.3 (`DriverThenGroup`): the driver first, the device still on its group's list,
//!   then `Removing from iommu group N` and the unlink;
//! * v6.4, dba9ca9d41f5 (`UnlinkThenDriver`): the unlink first, then the driver, no line;
//! * v6.6+, aa0958570f24 (`Deinit`): the same order inside `iommu_deinit_device`, the emptied
//!   group's domains freed after the driver's release.

mod common;
use common::*;
use iommu::fake::ReleaseHook;
use iommu::*;
use klog::{Level, Printk};
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn era(steps: ReleaseSteps) -> CoreConfig {
    CoreConfig {
        release_steps: steps,
        domains_freed_with_last_member: steps == ReleaseSteps::Deinit,
        ..CoreConfig::default()
    }
}

/// A rig whose fake driver logs, on each `release_device`, whether the device is still on
/// group 0's list, whether its group pointer is still set, and how many domains are live.
fn observed(steps: ReleaseSteps) -> Rig {
    let r = rig(era(steps));
    let core = Arc::downgrade(&r.core);
    let fake = Arc::downgrade(&r.fake);
    let log = r.log.clone();
    *r.fake.on_release.lock() = Some(ReleaseHook(Box::new(move |dev| {
        let (Some(core), Some(fake)) = (core.upgrade(), fake.upgrade()) else {
            return;
        };
        let name = core.log_name(dev).unwrap_or_default();
        let listed = core.group_members(0).contains(&dev);
        let pointer = core.group_of(dev).is_some();
        let domains = fake.live_domains();
        log.printk(
            Level::Info,
            &format!(
                "fake release_device {name}: listed {listed}, group pointer {pointer}, {domains} domains"
            ),
        );
    })));
    r
}

const A: &str = "ahci-qoriq 3200000.sata";
const B: &str = "dwc3 3100000.usb";

#[test]
fn each_era_releases_in_its_order() {
    use ReleaseSteps::*;
    for steps in [DriverThenGroup, UnlinkThenDriver, Deinit] {
        let r = observed(steps);
        // One stream ID: the fake puts both devices in group 0.
        let a = r.core.probe_device(platform(A, 0, 0x3e), r.inst).unwrap();
        let b = r.core.probe_device(platform(B, 1, 0x3e), r.inst).unwrap();
        r.core.release_device(b);
        r.core.release_device(a);
        let mut want = vec![
            format!("{A}: Adding to iommu group 0"),
            format!("{B}: Adding to iommu group 0"),
        ];
        // The group's one domain lives through both drivers' releases in every era: up to
        // v6.5 it is freed with the group, from v6.6 by the last member after its driver.
        if steps == DriverThenGroup {
            want.extend([
                format!("fake release_device {B}: listed true, group pointer true, 1 domains"),
                format!("{B}: Removing from iommu group 0"),
                format!("fake release_device {A}: listed true, group pointer true, 1 domains"),
                format!("{A}: Removing from iommu group 0"),
            ]);
        } else {
            want.extend([
                format!("fake release_device {B}: listed false, group pointer true, 1 domains"),
                format!("fake release_device {A}: listed false, group pointer true, 1 domains"),
            ]);
        }
        assert_eq!(r.log.lines(), want, "{steps:?}");
        // Whatever the order, the release ends the same: no group, no domain, both released.
        assert!(r.core.groups().is_empty(), "{steps:?}");
        assert_eq!(r.fake.live_domains(), 0, "{steps:?}");
        assert_eq!(r.fake.released(), [b, a], "{steps:?}");
        assert_eq!((r.core.group_of(a), r.core.group_of(b)), (None, None));
    }
}

#[test]
fn a_failed_probe_is_released_in_its_era_order() {
    use ReleaseSteps::*;
    for steps in [DriverThenGroup, UnlinkThenDriver, Deinit] {
        let r = observed(steps);
        r.fake.fail_attach.store(true, Ordering::Relaxed);
        assert!(r.core.probe_device(platform(A, 0, 0x3e), r.inst).is_err());
        // The failed device was never published: the core has no name for it.
        let mut want = vec![format!("{A}: Adding to iommu group 0")];
        if steps == DriverThenGroup {
            want.extend([
                "fake release_device : listed true, group pointer false, 1 domains".to_string(),
                format!("{A}: Removing from iommu group 0"),
            ]);
        } else {
            want.push(
                "fake release_device : listed false, group pointer false, 1 domains".to_string(),
            );
        }
        assert_eq!(r.log.lines(), want, "{steps:?}");
        assert!(r.core.groups().is_empty(), "{steps:?}");
        assert_eq!(r.fake.live_domains(), 0, "{steps:?}");
    }
}

#[test]
fn only_the_first_era_prints_the_removal() {
    use ReleaseSteps::*;
    assert!(DriverThenGroup.prints_removal());
    assert!(!UnlinkThenDriver.prints_removal());
    assert!(!Deinit.prints_removal());
}
