//! The modelled kernel's shared state, its locks (with deadlock verdicts), and the run of one
//! scenario under the explorer.

use crate::model::{Finding, LifecycleConfig, Op, Outcome, Property};
use smmu_sync::{sched_point, thread, Arc, Mutex, Point};
use std::collections::{BTreeMap, BTreeSet};

/// `dev->iommu`: the per-device IOMMU data that holds the fwspec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DevIommu {
    /// Not allocated (or freed and cleared).
    None,
    /// Allocated: the allocation's id (freed ids are in `State::freed_dev_iommu`).
    Live(u32),
}

#[derive(Debug, Clone)]
pub(crate) struct Dev {
    pub iommu: DevIommu,
    pub group: Option<usize>,
    /// The domain the device is attached to.
    pub domain: Option<usize>,
    /// The default domain it had (the flush-queue timer keeps pointing at it).
    pub last_domain: Option<usize>,
    pub probed: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Group {
    pub members: Vec<usize>,
    pub refcount: i64,
    pub default_domain: Option<usize>,
    pub owner: Option<String>,
    pub owner_cnt: u32,
}

/// The flush-queue timer of a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FqTimer {
    Idle,
    Armed,
    Running,
}

#[derive(Debug, Clone)]
pub(crate) struct DomainRecord {
    /// IOVA page → physical page.
    pub mappings: BTreeMap<u64, u64>,
    /// Allocated IOVA ranges: start → bytes.
    pub iovas: BTreeMap<u64, u64>,
    /// Next IOVA handed out, top down.
    pub iova_top: u64,
    /// IOVAs waiting in the flush queue.
    pub fq: Vec<u64>,
    pub fq_timer: FqTimer,
    pub fq_freed: bool,
    pub freed: bool,
    /// `iommu_dma_init_domain()` has initialised the IOVA domain (its `start_pfn` is set).
    pub iova_ready: bool,
}

impl DomainRecord {
    pub fn new() -> DomainRecord {
        DomainRecord {
            mappings: BTreeMap::new(),
            iovas: BTreeMap::new(),
            iova_top: 1 << 32,
            fq: Vec::new(),
            fq_timer: FqTimer::Idle,
            fq_freed: false,
            freed: false,
            iova_ready: false,
        }
    }
}

/// A DMA handle a driver holds.
#[derive(Debug, Clone)]
pub(crate) struct Buffer {
    pub dev: usize,
    pub domain: usize,
    pub iova: u64,
    pub bytes: u64,
}

/// The SMMU instance and its global register space as the driver sees it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Smmu {
    /// `iommu_device_register()` has run.
    pub registered: bool,
    /// The SMMU's platform driver is bound (drvdata findable by fwnode).
    pub bound: bool,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub devs: Vec<Dev>,
    pub smmu: Smmu,
    pub s2cr_group: BTreeMap<u32, usize>,
    pub groups: Vec<Group>,
    pub domains: Vec<DomainRecord>,
    pub next_dev_iommu: u32,
    pub freed_dev_iommu: BTreeSet<u32>,
    pub buffers: BTreeMap<String, Buffer>,
    /// Lock name → holding actor.
    pub locks: BTreeMap<String, usize>,
    /// Actor → the lock it waits for.
    pub waiting: BTreeMap<usize, String>,
    /// Actors that have returned (or died in an oops).
    pub finished: BTreeSet<usize>,
    /// DMA engines waiting for a buffer to exist.
    pub engines_waiting: BTreeSet<usize>,
    pub log: Vec<String>,
    pub findings: Vec<Finding>,
}

/// An actor stops: it died (oops) or can never continue (deadlock).
#[derive(Debug)]
pub(crate) struct Halt;

/// One actor's view of the machine.
pub(crate) struct Ctx {
    pub st: Arc<Mutex<State>>,
    pub cfg: Arc<LifecycleConfig>,
    /// Actor index; `usize::MAX` is boot.
    pub me: usize,
}

impl Ctx {
    pub fn name(&self) -> String {
        self.actor_name(self.me)
    }

    pub fn actor_name(&self, i: usize) -> String {
        self.cfg
            .actors
            .get(i)
            .map(|a| a.name.clone())
            .unwrap_or_else(|| "boot".to_string())
    }

    /// One atomic step of kernel code, then a point where the CPU may be preempted.
    pub fn step<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.st.lock());
        sched_point(Point::Kernel);
        r
    }

    pub fn log(&self, s: &mut State, line: String) {
        s.log.push(line);
    }

    pub fn find(&self, s: &mut State, property: Property, message: String) {
        s.log.push(format!("VERDICT {property}: {message}"));
        s.findings.push(Finding { property, message });
    }

    pub fn dev(&self, name: &str) -> usize {
        self.cfg
            .devices
            .iter()
            .position(|d| d.name == name)
            .unwrap_or(usize::MAX)
    }

    pub fn dev_name(&self, i: usize) -> &str {
        self.cfg
            .devices
            .get(i)
            .map(|d| d.name.as_str())
            .unwrap_or("?")
    }

    /// `mutex_lock(lock)`: waits (yielding) while another actor holds it; a wait that can
    /// never end is a deadlock verdict and stops this actor.
    pub fn acquire(&self, lock: &str) -> Result<(), Halt> {
        loop {
            let got = {
                let mut s = self.st.lock();
                match s.locks.get(lock).copied() {
                    None => {
                        s.locks.insert(lock.to_string(), self.me);
                        s.waiting.remove(&self.me);
                        Ok(true)
                    }
                    Some(holder) => {
                        s.waiting.insert(self.me, lock.to_string());
                        match self.deadlock(&s, lock, holder) {
                            Some(msg) => {
                                self.find(&mut s, Property::NoDeadlock, msg);
                                Err(Halt)
                            }
                            None => Ok(false),
                        }
                    }
                }
            };
            match got {
                Ok(true) => {
                    sched_point(Point::Kernel);
                    return Ok(());
                }
                Ok(false) => thread::yield_now(),
                Err(h) => return Err(h),
            }
        }
    }

    /// Why waiting for `lock` (held by `holder`) can never end, if it cannot.
    fn deadlock(&self, s: &State, lock: &str, holder: usize) -> Option<String> {
        let mut chain = vec![format!(
            "{} waits for {lock}, held by {}",
            self.name(),
            self.actor_name(holder)
        )];
        let mut cur = holder;
        let mut seen = BTreeSet::new();
        loop {
            if s.finished.contains(&cur) {
                chain.push(format!(
                    "{} has returned without releasing it",
                    self.actor_name(cur)
                ));
                return Some(format!("deadlock: {}", chain.join("; ")));
            }
            if !seen.insert(cur) {
                return None;
            }
            let l2 = s.waiting.get(&cur)?;
            let h2 = *s.locks.get(l2)?;
            chain.push(format!(
                "{} waits for {l2}, held by {}",
                self.actor_name(cur),
                self.actor_name(h2)
            ));
            if h2 == self.me {
                return Some(format!("deadlock: {}", chain.join("; ")));
            }
            cur = h2;
        }
    }

    /// `mutex_unlock(lock)`.
    pub fn release(&self, lock: &str) {
        self.st.lock().locks.remove(lock);
    }
}

/// The lock name of a group's mutex.
pub(crate) fn group_mutex(g: usize) -> String {
    format!("group{g}->mutex")
}

/// Run every actor's script concurrently after booting the devices no script probes.
pub(crate) fn run(cfg: &Arc<LifecycleConfig>) -> Outcome {
    let st = Arc::new(Mutex::new(State::default()));
    {
        let mut s = st.lock();
        s.devs = cfg
            .devices
            .iter()
            .map(|_| Dev {
                iommu: DevIommu::None,
                group: None,
                domain: None,
                last_domain: None,
                probed: false,
            })
            .collect();
    }
    let probed_by_script = |name: &str| {
        cfg.actors.iter().any(|a| {
            a.script
                .iter()
                .any(|s| s.device == name && matches!(s.op, Op::Probe | Op::DeferredProbe))
        })
    };
    // Boot: the devices the scenario names that no script probes were probed before the
    // actors start (the others play no part).
    smmu_sync::without_sched_points(|| {
        let boot = Ctx {
            st: st.clone(),
            cfg: cfg.clone(),
            me: usize::MAX,
        };
        if !probed_by_script(&cfg.smmu) {
            let _ = crate::probe::smmu_probe(&boot);
        }
        let named = |name: &str| {
            cfg.actors
                .iter()
                .any(|a| a.script.iter().any(|s| s.device == name))
                || cfg.boot_probed.iter().any(|b| b == name)
        };
        for d in &cfg.devices {
            if named(&d.name) && !probed_by_script(&d.name) {
                let _ = crate::probe::client_probe(&boot, &d.name);
            }
        }
    });
    let handles: Vec<_> = (0..cfg.actors.len())
        .map(|i| {
            let ctx = Ctx {
                st: st.clone(),
                cfg: cfg.clone(),
                me: i,
            };
            thread::spawn(move || {
                for step in &ctx.cfg.actors[i].script {
                    if crate::probe::run_step(&ctx, step).is_err() {
                        break;
                    }
                }
                let mut s = ctx.st.lock();
                s.finished.insert(i);
                s.waiting.remove(&i);
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let mut s = st.lock();
    let ctx = Ctx {
        st: st.clone(),
        cfg: cfg.clone(),
        me: usize::MAX,
    };
    end_checks(&ctx, &mut s);
    Outcome {
        log: std::mem::take(&mut s.log),
        findings: std::mem::take(&mut s.findings),
    }
}

/// Properties of the final state.
fn end_checks(ctx: &Ctx, s: &mut State) {
    // Masters sharing a stream ID are in one group.
    let mut by_sid: BTreeMap<u32, BTreeSet<usize>> = BTreeMap::new();
    for (i, d) in ctx.cfg.devices.iter().enumerate() {
        if let Some(g) = s.devs[i].group {
            for sid in &d.stream_ids {
                by_sid.entry(*sid).or_default().insert(g);
            }
        }
    }
    for (sid, groups) in by_sid {
        if groups.len() > 1 {
            let who: Vec<String> = groups
                .iter()
                .map(|g| {
                    let m: Vec<&str> = s.groups[*g]
                        .members
                        .iter()
                        .map(|d| ctx.dev_name(*d))
                        .collect();
                    format!("group {g} ({})", m.join(", "))
                })
                .collect();
            let msg = format!(
                "stream ID {sid:#x} is shared by masters in {}: only one group's domain is programmed for the stream",
                who.join(" and ")
            );
            ctx.find(s, Property::OneGroupPerStream, msg);
        }
    }
    // One domain per group.
    for g in 0..s.groups.len() {
        let doms: BTreeSet<usize> = s.groups[g]
            .members
            .iter()
            .filter_map(|d| s.devs[*d].domain)
            .collect();
        if doms.len() > 1 {
            let who: Vec<String> = s.groups[g]
                .members
                .iter()
                .map(|d| {
                    format!(
                        "{} in domain {}",
                        ctx.dev_name(*d),
                        s.devs[*d]
                            .domain
                            .map(|x| x.to_string())
                            .unwrap_or("-".into())
                    )
                })
                .collect();
            let msg = format!(
                "group {g} has members in {} domains: {}",
                doms.len(),
                who.join(", ")
            );
            ctx.find(s, Property::OneDomainPerGroup, msg);
        }
    }
    // Every group reference dropped.
    for g in 0..s.groups.len() {
        let (refs, members) = (s.groups[g].refcount, s.groups[g].members.len() as i64);
        if refs != members {
            let msg = format!(
                "group {g} holds {refs} references for {members} member(s): a reference taken was never put"
            );
            ctx.find(s, Property::NoRefcountLeak, msg);
        }
    }
}

impl explore::Scenario for LifecycleConfig {
    type Outcome = Outcome;

    fn run(&self) -> Outcome {
        run(&Arc::new(self.clone()))
    }

    fn violations(&self, outcome: &Outcome) -> Vec<String> {
        let mut v: Vec<Property> = outcome
            .findings
            .iter()
            .map(|f| f.property)
            .filter(|p| self.properties.contains(p))
            .collect();
        v.sort();
        v.dedup();
        v.into_iter().map(|p| p.name().to_string()).collect()
    }
}
