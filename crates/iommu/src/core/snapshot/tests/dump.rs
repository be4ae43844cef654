//! Every field of the core's state as text, so that two cores compare with one `assert_eq!`.

use super::*;
use std::fmt::Write;

/// Names one object per id, and says so when one id has two objects.
#[derive(Default)]
struct Ids(BTreeMap<(char, u32), usize>, Vec<String>);

impl Ids {
    fn see<T>(&mut self, kind: char, id: u32, a: &Arc<T>) {
        let p = Arc::as_ptr(a) as usize;
        if *self.0.entry((kind, id)).or_insert(p) != p {
            self.1.push(format!("two objects are {kind}{id}"));
        }
    }
}

/// Every field of the core's state, with groups and domains named by number.
pub(super) fn dump(core: &IommuCore) -> String {
    let st = core.state.lock();
    let mut ids = Ids::default();
    let mut doms: BTreeMap<u32, Arc<Domain>> = BTreeMap::new();
    let mut s = String::new();
    let mut dom = |ids: &mut Ids, d: &Option<Arc<Domain>>| {
        d.as_ref().map(|d| {
            ids.see('d', d.id().0, d);
            doms.insert(d.id().0, d.clone());
            d.id().0
        })
    };
    let _ = writeln!(
        s,
        "instances {:?} next {} {} {} {} dev_iommu {:?} freed {:?}",
        st.instances.keys().collect::<Vec<_>>(),
        st.next_instance,
        st.next_device,
        st.next_domain,
        st.next_dev_iommu,
        st.dev_iommu,
        st.dev_iommu_freed
    );
    let mut groups: Vec<Arc<Group>> = st.groups.values().cloned().collect();
    for d in st.devices.values() {
        let g = d.group.read().clone();
        let gid = g.as_ref().map(|g| {
            ids.see('g', g.id, g);
            groups.push(g.clone());
            g.id
        });
        let _ = writeln!(
            s,
            "device {} {} group {gid:?} released {} direct {:?} attached {:?}",
            d.id.0,
            d.desc.log_name,
            d.released.load(Ordering::Acquire),
            d.direct_maps.lock(),
            d.attached.lock()
        );
    }
    for g in &groups {
        ids.see('g', g.id, g);
        let def = dom(&mut ids, &g.default_domain());
        let cur = dom(&mut ids, &g.domain.lock().clone());
        let _ = writeln!(
            s,
            "group {} listed {} inst {:?} key {:?} members {:?} locked {} default {def:?} domain {cur:?} refs {} device_refs {} freed {} owner {:?}",
            g.id,
            st.groups.get(&g.id).is_some_and(|l| Arc::ptr_eq(l, g)),
            g.instance,
            g.key,
            g.members.lock(),
            g.mutex.is_locked(),
            g.refs.lock(),
            g.device_refs.lock(),
            g.freed.load(Ordering::Acquire),
            g.owner.lock()
        );
    }
    let orphans: Vec<_> = st
        .orphans
        .iter()
        .map(|d| dom(&mut ids, &Some(d.clone())))
        .collect();
    let registry: Vec<_> = st
        .domains
        .iter()
        .filter_map(Weak::upgrade)
        .map(|d| dom(&mut ids, &Some(d)))
        .collect();
    let _ = writeln!(s, "orphans {orphans:?} registry {registry:?}");
    for d in doms.values() {
        let _ = writeln!(s, "{}", d.dump());
    }
    let _ = writeln!(s, "{:?} {:?}", core.stats(), ids.1);
    s
}
