//! v6.1's join (`iommu_group_add_device`, up to 0046a4337eae in v6.5): a device that joins a
//! group which already has a domain is attached to that domain at the join, under
//! `group->mutex`, before `Adding to iommu group N`; a failed attach takes it off the list
//! and prints `dev_err(dev, "Failed to add to iommu group %d: %d\n", group->id, ret)` with
//! the errno as `%d` prints it, and the probe fails: the driver releases the master, the
//! group loses only the failed device's reference, and no `Removing` line is printed.

mod common;
use common::*;
use iommu::*;
use std::sync::atomic::Ordering;

const GPU: &str = "etnaviv-gpu f0c0000.gpu";
const DRM: &str = "etnaviv etnaviv";

#[test]
fn a_failed_attach_at_the_join_prints_the_failure_instead_of_the_add() {
    let r = rig(CoreConfig::default());
    let a = r.core.probe_device(platform(GPU, 8, 0x3e), r.inst).unwrap();
    r.fake.fail_attach.store(true, Ordering::Relaxed);
    let e = r.core.probe_device(platform(DRM, 9, 0x3e), r.inst);
    assert_eq!(e, Err(CoreError::Driver(DriverError::NoDevice)));
    assert_eq!(
        r.log.lines(),
        [
            format!("{GPU}: Adding to iommu group 0"),
            format!("{DRM}: Failed to add to iommu group 0: -19"),
        ]
    );
    // Off the list again, the master released by the driver, the group and its domain kept
    // for the first member.
    assert_eq!(r.core.group_members(0), [a]);
    assert_eq!(r.fake.released().len(), 1);
    assert_eq!(r.fake.live_domains(), 1);
    // The failed join put its reference: the first member's release frees the group.
    r.core.release_device(a);
    assert!(r.core.groups().is_empty());
    assert_eq!(r.fake.live_domains(), 0);
}

#[test]
fn without_the_join_attach_the_same_failure_is_the_probes_attach() {
    // v6.5's core (0046a4337eae, release as dba9ca9d41f5 left it): the device joins, prints
    // its Adding line, and the probe's own attach fails; the release prints nothing.
    let cfg = CoreConfig {
        join_attaches_to_group_domain: false,
        release_steps: ReleaseSteps::UnlinkThenDriver,
        ..CoreConfig::default()
    };
    let r = rig(cfg);
    let a = r.core.probe_device(platform(GPU, 8, 0x3e), r.inst).unwrap();
    r.fake.fail_attach.store(true, Ordering::Relaxed);
    let e = r.core.probe_device(platform(DRM, 9, 0x3e), r.inst);
    assert_eq!(e, Err(CoreError::Driver(DriverError::NoDevice)));
    assert_eq!(
        r.log.lines(),
        [
            format!("{GPU}: Adding to iommu group 0"),
            format!("{DRM}: Adding to iommu group 0"),
        ]
    );
    assert_eq!(r.core.group_members(0), [a]);
}

#[test]
fn a_joining_member_shares_the_groups_domain() {
    let r = rig(CoreConfig::default());
    let a = r.core.probe_device(platform(GPU, 8, 0x3e), r.inst).unwrap();
    let b = r.core.probe_device(platform(DRM, 9, 0x3e), r.inst).unwrap();
    assert_eq!(r.core.group_members(0), [a, b]);
    assert!(r.core.device_domain(a).is_some());
    assert_eq!(r.core.device_domain(b), r.core.device_domain(a));
    assert_eq!(r.fake.live_domains(), 1);
    assert_eq!(
        r.log.lines(),
        [
            format!("{GPU}: Adding to iommu group 0"),
            format!("{DRM}: Adding to iommu group 0"),
        ]
    );
}

#[test]
fn a_first_member_has_no_domain_to_join() {
    // A new group has no domain at the join: the failure comes from the probe's attach, after
    // the Adding line, and v6.1's release prints the Removing line.
    let r = rig(CoreConfig::default());
    r.fake.fail_attach.store(true, Ordering::Relaxed);
    assert!(r.core.probe_device(platform(GPU, 8, 0x3e), r.inst).is_err());
    assert_eq!(
        r.log.lines(),
        [
            format!("{GPU}: Adding to iommu group 0"),
            format!("{GPU}: Removing from iommu group 0"),
        ]
    );
}

#[test]
fn driver_errors_carry_linux_errnos() {
    use iommu::ops::Resource;
    let iova = Iova::new(0x1000);
    for (e, errno) in [
        (DriverError::NoDevice, Some(-19)),
        (DriverError::StreamsInTwoGroups, Some(-22)),
        (DriverError::NotFinalised, Some(-22)),
        (
            DriverError::StreamBeyondTable {
                sid: 0x429,
                entries: 0x400,
            },
            Some(-34),
        ),
        (DriverError::AlreadyProbed, Some(-17)),
        (DriverError::Exhausted(Resource::ContextBanks), Some(-28)),
        (
            DriverError::Exhausted(Resource::StreamMapEntries),
            Some(-28),
        ),
        (DriverError::Exhausted(Resource::Asids), Some(-16)),
        (DriverError::Exhausted(Resource::CdTable), Some(-12)),
        (DriverError::NotSupported, Some(-95)),
        (DriverError::Busy, Some(-16)),
        (DriverError::ProbeDefer, Some(-517)),
        (
            DriverError::PgTable(PgTableError::Exists { iova }),
            Some(-17),
        ),
        (DriverError::PgTable(PgTableError::NoAccess), Some(-22)),
        (DriverError::MappedNothing { iova }, None),
        (
            DriverError::NullDereference {
                function: "arm_smmu_attach_dev",
            },
            None,
        ),
    ] {
        assert_eq!(e.errno(), errno, "{e}");
    }
}
