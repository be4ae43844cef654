//! Version presets: a Linux release as the set of the model's fixes it contains.

use crate::fix::Fix;
use std::fmt;

/// A Linux release the model can start a kernel spec from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Preset {
    /// Linux 6.0: before `57365a04c921`; unregister leaves devices in their groups.
    V6_0,
    /// Linux 6.1 as released: `57365a04c921`, not yet the seed's fix (6.1.y stable later took
    /// a backport of `ce31e6ca68bd`; the preset is the mainline release).
    V6_1,
    /// Linux 6.2: the seed's fix `ce31e6ca68bd` merged.
    V6_2,
    /// Linux 6.12, also spelled `current`: both commits still in effect.
    V6_12,
}

impl Preset {
    /// Every preset, oldest first.
    pub const ALL: [Preset; 4] = [Preset::V6_0, Preset::V6_1, Preset::V6_2, Preset::V6_12];

    /// The canonical name (`v6.1`).
    pub fn name(self) -> &'static str {
        match self {
            Preset::V6_0 => "v6.0",
            Preset::V6_1 => "v6.1",
            Preset::V6_2 => "v6.2",
            Preset::V6_12 => "v6.12",
        }
    }

    /// Parse a preset name; `current` names the newest preset.
    pub fn from_name(name: &str) -> Option<Preset> {
        if name == "current" {
            return Some(Preset::V6_12);
        }
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The fixes this release contains, in history order. Only Linux commits: our own
    /// changes are in no release.
    pub fn fixes(self) -> &'static [Fix] {
        match self {
            Preset::V6_0 => &[],
            Preset::V6_1 => &[Fix::MoveBusSetupToRegistration],
            Preset::V6_2 | Preset::V6_12 => &[
                Fix::MoveBusSetupToRegistration,
                Fix::DontUnregisterOnShutdown,
            ],
        }
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
