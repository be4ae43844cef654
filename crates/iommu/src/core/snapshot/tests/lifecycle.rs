//! What a restore puts back, frees and tracks: changed records rewound, domains freed in the
//! run and revived, objects a run created gone, the snapshot shareable across threads.

use super::dump::dump;
use super::*;

/// The NIC's case: many records, a few changed, the domain kept: only the changes are put
/// back, and the table tracks the snapshot again for the next run.
#[test]
fn a_few_changes_are_rewound_and_tracked_again() {
    let mut r = Rig::new(CoreConfig::default());
    let maps: Vec<(u64, u64)> = (0..256).map(|i| (i * 4 * 0x1000, 0x600)).collect();
    boot(&mut r, &maps);
    let saved = r.save();
    let want = dump(&r.core);
    let dom = r.core.default_domain(r.h.devs[0]).unwrap();
    for round in 0..3u64 {
        let (d, Live::Page(a, size, dir)) = r.h.live[round as usize].clone() else {
            unreachable!("boot maps pages")
        };
        r.core.dma_unmap_page(d, a, size, dir).unwrap();
        r.core
            .dma_map_page(d, PhysAddr::new(RAM + 0x80_0000), 0x600, dir)
            .unwrap();
        assert!(dom.state().maps.tracks(saved.core.domains[0].token()));
        r.restore(&saved);
        assert_eq!(dump(&r.core), want, "round {round}");
    }
}

/// A run that frees a domain frees it in the driver during the run, as without a snapshot:
/// the snapshot holds groups and domains weakly.
#[test]
fn a_snapshot_does_not_delay_a_domain_free() {
    let mut r = Rig::new(CoreConfig::default());
    boot(&mut r, &[]);
    let saved = r.save();
    let freed = || r.fake.counters.domains_freed.load(Ordering::Relaxed);
    let before = freed();
    r.core.unregister(r.inst).unwrap();
    // Three groups (two devices share one): each default domain is freed as its group goes.
    assert_eq!(freed(), before + 3);
    r.restore(&saved);
    assert_eq!(
        r.fake.counters.domains_freed.load(Ordering::Relaxed),
        before
    );
    // The revived domains are freed again by the next run, once each.
    r.core.unregister(r.inst).unwrap();
    assert_eq!(
        r.fake.counters.domains_freed.load(Ordering::Relaxed),
        before + 3
    );
}

/// What a run probes is gone after a restore: its device, group and domain (freed in the
/// driver by the restore), and the numbers it took are handed out again.
#[test]
fn objects_a_run_creates_vanish_on_restore() {
    let mut r = Rig::new(CoreConfig::default());
    boot(&mut r, &[]);
    let saved = r.save();
    let live = r.fake.live_domains();
    let d = r
        .core
        .probe_device(DeviceDesc::new("late", Bus::Pci, 9, &[0x20]), r.inst)
        .unwrap();
    assert_eq!(r.core.group_of(d), Some(3));
    assert_eq!(r.fake.live_domains(), live + 1);
    r.core.restore(&saved.core).unwrap();
    // The core's restore dropped the run's domain: freed in the (not yet restored) driver.
    assert_eq!(r.fake.live_domains(), live);
    assert_eq!(r.core.group_of(d), None);
    assert_eq!(r.core.groups(), vec![0, 1, 2]);
    r.restore(&saved);
    let again = r
        .core
        .probe_device(DeviceDesc::new("late", Bus::Pci, 9, &[0x20]), r.inst)
        .unwrap();
    assert_eq!((again, r.core.group_of(again)), (d, Some(3)));
}

/// A worker may build its machine's snapshot on one thread and restore on another.
#[test]
fn a_snapshot_is_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CoreSnapshot>();
}
