//! Snapshots and restores that are refused: another core's snapshot, a held group or cookie
//! mutex.

use super::dump::dump;
use super::*;

#[test]
fn a_snapshot_of_another_core_is_refused_and_changes_nothing() {
    let mut a = Rig::new(CoreConfig::default());
    let mut b = Rig::new(CoreConfig::default());
    boot(&mut a, &[(0x1000, 0x1000)]);
    boot(&mut b, &[]);
    let before = dump(&a.core);
    let err = a.core.restore(&b.core.snapshot().unwrap()).unwrap_err();
    assert_eq!(
        err,
        CoreSnapshotError::ForeignCore {
            snapshot: b.core.id,
            core: a.core.id
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "snapshot of IOMMU core #{} cannot be restored into IOMMU core #{}",
            b.core.id, a.core.id
        )
    );
    assert_eq!(dump(&a.core), before);
}

#[test]
fn a_held_group_mutex_refuses_a_snapshot_and_a_restore_unlocks_it() {
    let mut r = Rig::new(CoreConfig::default());
    boot(&mut r, &[]);
    let saved = r.save();
    let g = r.core.state.lock().groups.get(&1).cloned().unwrap();
    g.mutex.lock().unwrap().leak();
    assert_eq!(
        r.core.snapshot().unwrap_err(),
        CoreSnapshotError::Locked {
            lock: "group 1->mutex".into()
        }
    );
    r.restore(&saved);
    assert!(!g.mutex.is_locked());
    assert!(r.core.snapshot().is_ok());
}

#[test]
fn a_held_cookie_mutex_refuses_a_snapshot() {
    let mut r = Rig::new(CoreConfig::default());
    boot(&mut r, &[]);
    let dom = r.core.default_domain(r.h.devs[0]).unwrap();
    let held = dom.cookie_mutex().lock().unwrap();
    assert_eq!(
        r.core.snapshot().unwrap_err(),
        CoreSnapshotError::Locked {
            lock: format!("domain {}->iova_cookie->mutex", dom.id().0)
        }
    );
    drop(held);
    assert!(r.core.snapshot().is_ok());
}
