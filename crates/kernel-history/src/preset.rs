//! Version presets: a Linux release as the set of the model's fixes it contains (every Linux
//! fix whose release is at or before it).

use crate::fix::{Fix, Origin};
use std::fmt;

/// A Linux release the model can start a kernel spec from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Preset {
    /// Linux 5.14: before the v5.15 probe and group fixes.
    V5_14,
    /// Linux 5.16: `b1a1347912a7`, `211ff31b3d33`, `53f613134984`; not yet the v5.17 fixes.
    V5_16,
    /// Linux 5.18: the v5.17 fixes; not yet `a3884774d731`.
    V5_18,
    /// Linux 6.0: before `57365a04c921`; unregister leaves devices in their groups.
    V6_0,
    /// Linux 6.1 as released: `57365a04c921`, not yet the seed's fix (6.1.y stable later took
    /// a backport of `ce31e6ca68bd`; the preset is the mainline release).
    V6_1,
    /// Linux 6.2: the seed's fix `ce31e6ca68bd` merged.
    V6_2,
    /// Linux 6.12.
    V6_12,
    /// Linux 6.13, also spelled `current`: `229e6ee43d2a` merged.
    V6_13,
}

/// `v5.15` → (5, 15).
pub(crate) fn version(name: &str) -> (u32, u32) {
    let v = name.trim_start_matches('v');
    let (a, b) = v.split_once('.').unwrap_or((v, "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

impl Preset {
    /// Every preset, oldest first.
    pub const ALL: [Preset; 8] = [
        Preset::V5_14,
        Preset::V5_16,
        Preset::V5_18,
        Preset::V6_0,
        Preset::V6_1,
        Preset::V6_2,
        Preset::V6_12,
        Preset::V6_13,
    ];

    /// The canonical name (`v6.1`).
    pub fn name(self) -> &'static str {
        match self {
            Preset::V5_14 => "v5.14",
            Preset::V5_16 => "v5.16",
            Preset::V5_18 => "v5.18",
            Preset::V6_0 => "v6.0",
            Preset::V6_1 => "v6.1",
            Preset::V6_2 => "v6.2",
            Preset::V6_12 => "v6.12",
            Preset::V6_13 => "v6.13",
        }
    }

    /// Parse a preset name; `current` names the newest preset.
    pub fn from_name(name: &str) -> Option<Preset> {
        if name == "current" {
            return Some(Preset::V6_13);
        }
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The fixes this release contains, in history order: every Linux commit of the model
    /// that landed in it or earlier. Our own changes are in no release.
    pub fn fixes(self) -> Vec<Fix> {
        let me = version(self.name());
        Fix::ALL
            .into_iter()
            .filter(|f| match f.origin() {
                Origin::Linux { landed_in, .. } => version(landed_in) <= me,
                Origin::Ours => false,
            })
            .collect()
    }

    /// Every accepted name, for error messages.
    pub fn names() -> Vec<&'static str> {
        let mut v: Vec<&'static str> = Preset::ALL.iter().map(|p| p.name()).collect();
        v.push("current");
        v
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
