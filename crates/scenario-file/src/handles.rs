//! Buffer and domain handles across all actors' scripts.

use crate::error::{ErrorKind, ScenarioError};
use crate::model::Actor;
use crate::raw::RawActor;
use crate::validate::Src;
use crate::vocab::{BufferKind, Op};
use std::collections::BTreeMap;
use toml::Spanned;

/// Buffer and domain handles: each made by exactly one operation (actors run concurrently,
/// so file order is not execution order and a handle may be used by any actor), and every
/// use names one that is made, of the right kind, for the same device.
pub(crate) fn check(
    src: &Src<'_>,
    raw: &[Spanned<RawActor>],
    actors: &[Actor],
) -> Result<(), ScenarioError> {
    let steps = || {
        raw.iter().zip(actors).flat_map(|(ra, a)| {
            let rs = ra
                .get_ref()
                .script
                .as_ref()
                .map_or(&[][..], |s| &s.get_ref()[..]);
            rs.iter()
                .zip(&a.script)
                .map(move |(r, s)| (a, r.get_ref(), s))
        })
    };
    let mut buffers: BTreeMap<&str, (BufferKind, &str, usize)> = BTreeMap::new();
    let mut domains: BTreeMap<&str, usize> = BTreeMap::new();
    // The device each domain was allocated for: an `iommu-map` buffer is that device's.
    let domain_device: BTreeMap<&str, &str> = steps()
        .filter(|(_, _, s)| s.op == Op::IommuDomainAlloc)
        .filter_map(|(_, _, s)| Some((s.domain.as_deref()?, s.device.as_deref()?)))
        .collect();
    for (_, r, s) in steps() {
        let made = match (s.op.makes_buffer(), s.op) {
            (Some(kind), _) => r.buffer.as_ref().map(|b| (b, Some(kind))),
            (None, Op::IommuDomainAlloc) => r.domain.as_ref().map(|d| (d, None)),
            _ => None,
        };
        let Some((handle, kind)) = made else { continue };
        let first = match kind {
            Some(k) => buffers
                .get(handle.get_ref().as_str())
                .map(|b| b.2)
                .or_else(|| {
                    let owner = s
                        .device
                        .as_deref()
                        .or_else(|| domain_device.get(s.domain.as_deref()?).copied())
                        .unwrap_or("");
                    buffers.insert(handle.get_ref(), (k, owner, s.at.line));
                    None
                }),
            None => domains.get(handle.get_ref().as_str()).copied().or_else(|| {
                domains.insert(handle.get_ref(), s.at.line);
                None
            }),
        };
        if let Some(first_line) = first {
            return Err(src.err(
                handle.span(),
                ErrorKind::DuplicateHandle {
                    handle: handle.get_ref().clone(),
                    first_line,
                },
            ));
        }
    }
    for (actor, r, s) in steps() {
        if let (Some(b), None) = (&r.buffer, s.op.makes_buffer()) {
            let handle = b.get_ref();
            let Some(&(kind, owner, _)) = buffers.get(handle.as_str()) else {
                return Err(src.err(
                    b.span(),
                    ErrorKind::UnknownHandle {
                        handle: handle.clone(),
                    },
                ));
            };
            if let Some(expected) = s.op.takes_buffer().filter(|k| *k != kind) {
                return Err(src.err(
                    b.span(),
                    ErrorKind::BufferKindMismatch {
                        op: s.op,
                        handle: handle.clone(),
                        expected,
                        actual: kind,
                    },
                ));
            }
            let user = s
                .device
                .as_deref()
                .or(actor.device.as_deref())
                .unwrap_or("");
            if user != owner {
                return Err(src.err(
                    b.span(),
                    ErrorKind::BufferDevice {
                        handle: handle.clone(),
                        owner: owner.to_string(),
                        device: user.to_string(),
                    },
                ));
            }
        }
        if let (Some(d), false) = (&r.domain, s.op == Op::IommuDomainAlloc) {
            if !domains.contains_key(d.get_ref().as_str()) {
                return Err(src.err(
                    d.span(),
                    ErrorKind::UnknownHandle {
                        handle: d.get_ref().clone(),
                    },
                ));
            }
        }
    }
    Ok(())
}
