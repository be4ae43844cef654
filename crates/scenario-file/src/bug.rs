//! `[check]` names resolved against both models (the reboot machine and the real stack), and `[bug]`: the corpus record of a real
//! Linux bug (its fix, what introduced it, its mechanism, the property it violates and the
//! search budgets before and after the fix).

use crate::error::{ErrorKind, ScenarioError};
use crate::model::{property_names, Budget, Bug, CheckedProperty};
use crate::raw::{RawBudget, RawBug};
use crate::validate::Src;
use kernel_history::{Fix, KernelSpec, KernelSpecError};
use sim::scenario::Property;
use toml::Spanned;

/// A `[check]` name, resolved against both models.
pub(crate) fn checked_property(
    src: &Src<'_>,
    p: &Spanned<String>,
) -> Result<CheckedProperty, ScenarioError> {
    let name = p.get_ref();
    let known = property_names();
    let Some(stat) = known.iter().find(|k| **k == name.as_str()) else {
        return Err(src.err(
            p.span(),
            ErrorKind::UnknownProperty {
                name: name.clone(),
                known: known.join(", "),
            },
        ));
    };
    Ok(CheckedProperty {
        name: stat,
        machine: Property::from_name(name),
        stack: crate::stack::StackProperty::from_name(name),
        at: src.position(p.span().start),
    })
}

fn budget(src: &Src<'_>, b: &Spanned<RawBudget>) -> Result<Budget, ScenarioError> {
    let r = b.get_ref();
    let depth = r.depth.as_ref().map(|d| *d.get_ref());
    let strategy = match r.strategy.get_ref().as_str() {
        "pct" => explore::Strategy::Pct {
            depth: depth.unwrap_or(3).max(1),
        },
        "random" => explore::Strategy::Random,
        "dfs" => explore::Strategy::Dfs {
            preemption_bound: depth.unwrap_or(2),
        },
        other => {
            return Err(src.err(
                r.strategy.span(),
                ErrorKind::UnknownStrategy {
                    name: other.to_string(),
                },
            ))
        }
    };
    if *r.runs.get_ref() == 0 {
        return Err(src.err(r.runs.span(), ErrorKind::NoRuns));
    }
    Ok(Budget {
        strategy,
        runs: *r.runs.get_ref(),
        seed: r.seed,
    })
}

/// Validate `[bug]` against the file's kernel and its `[check]` properties.
pub(crate) fn bug(
    src: &Src<'_>,
    b: &Spanned<RawBug>,
    kernel: &KernelSpec,
    checked: &[CheckedProperty],
) -> Result<Bug, ScenarioError> {
    let r = b.get_ref();
    let fixed_by = Fix::lookup(r.fixed_by.get_ref()).ok_or_else(|| {
        src.err(
            r.fixed_by.span(),
            ErrorKind::Kernel(KernelSpecError::UnknownFix {
                name: r.fixed_by.get_ref().clone(),
            }),
        )
    })?;
    if kernel.contains(fixed_by) {
        return Err(src.err(
            r.fixed_by.span(),
            ErrorKind::FixAlreadyIn {
                kernel: kernel.to_string(),
                fix: fixed_by.id().to_string(),
            },
        ));
    }
    let property = checked_property(src, &r.property)?;
    if !checked.iter().any(|c| c.name == property.name) {
        return Err(src.err(
            r.property.span(),
            ErrorKind::BugPropertyNotChecked {
                name: property.name.to_string(),
            },
        ));
    }
    Ok(Bug {
        fixed_by,
        introduced_by: r.introduced_by.clone(),
        mechanism: r.mechanism.clone(),
        property,
        before: budget(src, &r.before)?,
        token: r
            .before
            .get_ref()
            .token
            .as_ref()
            .map(|t| t.get_ref().clone()),
        after: budget(src, &r.after)?,
    })
}
