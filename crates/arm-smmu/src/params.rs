//! Module parameters (`arm-smmu.disable_bypass=`, `arm-smmu.force_stage=`) taken from a kernel
//! command line, parsed the way Linux's `parse_args` and its `bool`/`int` setters do.
//!
//! Rules reproduced (Linux v6.1 `kernel/params.c`, `lib/kstrtox.c`):
//! * Arguments are separated by whitespace; a value may be double-quoted (`p="a b"`); `--` ends the
//!   kernel's arguments (the rest belongs to init).
//! * Parameter names compare with `-` and `_` treated as equal (`arm_smmu.disable-bypass` works).
//! * Other modules' parameters and plain words are ignored. A later occurrence overrides an
//!   earlier one.
//! * `bool` (`kstrtobool`): only the first character(s) count: `y`/`Y`/`1` → true, `n`/`N`/`0` →
//!   false, `on`/`oN`/`On`/`ON` → true, `of…`/`Of…` (so `off`) → false. A bare name without `=`
//!   means true. Anything else is rejected (`-EINVAL`).
//! * `int` (`kstrtoint`, base 0): optional sign, `0x`/`0X` hex, leading-`0` octal, else decimal,
//!   one trailing newline allowed; must fit an `i32` (`-ERANGE` otherwise). A bare name is
//!   rejected. Values other than 1 and 2 are accepted and mean "no stage forced".
//!
//! Linux logs a bad parameter and carries on with the default; here the caller gets a typed error
//! naming the parameter and decides.

use thiserror::Error;

/// The driver's module parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleParams {
    /// Initial/free S2CR type is FAULT (else BYPASS) and sCR0.USFCFG is set at reset.
    pub disable_bypass: bool,
    /// 1 or 2 restricts translation to that stage (and disables nesting); other values ignored.
    pub force_stage: i32,
}

impl Default for ModuleParams {
    /// Linux defaults: `CONFIG_ARM_SMMU_DISABLE_BYPASS_BY_DEFAULT=y`, `force_stage=0`.
    fn default() -> Self {
        ModuleParams {
            disable_bypass: DISABLE_BYPASS_BY_DEFAULT,
            force_stage: 0,
        }
    }
}

/// The build-time default of `disable_bypass` (`CONFIG_ARM_SMMU_DISABLE_BYPASS_BY_DEFAULT`). The
/// global fault handler's message choice depends on this, not on the runtime value.
pub const DISABLE_BYPASS_BY_DEFAULT: bool = true;

/// A command-line value for one of this driver's parameters was malformed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamError {
    #[error("arm-smmu.{param}: invalid value {value:?} (-EINVAL)")]
    /// The value does not parse as the parameter's type.
    Invalid {
        /// Parameter name without the `arm-smmu.` prefix.
        param: &'static str,
        /// The value as given.
        value: String,
    },
    #[error("arm-smmu.{param}: value {value:?} out of range (-ERANGE)")]
    /// The number does not fit an `int`.
    Range {
        /// Parameter name without the `arm-smmu.` prefix.
        param: &'static str,
        /// The value as given.
        value: String,
    },
    #[error("arm-smmu.{param}: missing value (-EINVAL)")]
    /// An `int` parameter given without `=value`.
    Missing {
        /// Parameter name without the `arm-smmu.` prefix.
        param: &'static str,
    },
    #[error("unterminated quote in command line")]
    /// A double quote was never closed.
    Quote,
}

impl ModuleParams {
    /// Parse a whole kernel command line, starting from the defaults.
    pub fn from_cmdline(cmdline: &str) -> Result<Self, ParamError> {
        let mut p = ModuleParams::default();
        for (name, value) in split_args(cmdline)? {
            if name == "--" && value.is_none() {
                break;
            }
            let Some(local) = strip_module(&name, "arm-smmu") else {
                continue;
            };
            if param_eq(local, "disable_bypass") {
                p.disable_bypass = parse_bool("disable_bypass", value.as_deref())?;
            } else if param_eq(local, "force_stage") {
                p.force_stage = parse_int("force_stage", value.as_deref())?;
            }
        }
        Ok(p)
    }
}

/// Split into (name, optional value) pairs, honouring double quotes as `next_arg` does.
fn split_args(s: &str) -> Result<Vec<(String, Option<String>)>, ParamError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut word = String::new();
        let mut in_quote = false;
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() && !in_quote {
                break;
            }
            chars.next();
            if c == '"' {
                in_quote = !in_quote;
                continue;
            }
            word.push(c);
        }
        if in_quote {
            return Err(ParamError::Quote);
        }
        match word.split_once('=') {
            Some((n, v)) => out.push((n.to_string(), Some(v.to_string()))),
            None => out.push((word, None)),
        }
    }
}

fn norm(c: char) -> char {
    if c == '-' {
        '_'
    } else {
        c
    }
}

fn param_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.chars().zip(b.chars()).all(|(x, y)| norm(x) == norm(y))
}

/// `module.param` → `param` when the module part matches (dash/underscore-insensitive).
fn strip_module<'a>(name: &'a str, module: &str) -> Option<&'a str> {
    let (m, local) = name.split_once('.')?;
    param_eq(m, module).then_some(local)
}

/// Linux `param_set_bool` → `kstrtobool`.
pub fn parse_bool(param: &'static str, value: Option<&str>) -> Result<bool, ParamError> {
    let v = value.unwrap_or("1");
    let b = v.as_bytes();
    let invalid = || ParamError::Invalid {
        param,
        value: v.to_string(),
    };
    match b.first() {
        Some(b'y' | b'Y' | b'1') => Ok(true),
        Some(b'n' | b'N' | b'0') => Ok(false),
        Some(b'o' | b'O') => match b.get(1) {
            Some(b'n' | b'N') => Ok(true),
            Some(b'f' | b'F') => Ok(false),
            _ => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}

/// Linux `param_set_int` → `kstrtoint(s, 0)`.
pub fn parse_int(param: &'static str, value: Option<&str>) -> Result<i32, ParamError> {
    let Some(v) = value else {
        return Err(ParamError::Missing { param });
    };
    let invalid = || ParamError::Invalid {
        param,
        value: v.to_string(),
    };
    let s = v.strip_suffix('\n').unwrap_or(v);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, body) = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, h)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return Err(invalid());
    }
    let mag = u64::from_str_radix(body, radix).map_err(|_| ParamError::Range {
        param,
        value: v.to_string(),
    })?;
    let val = if neg { -(mag as i128) } else { mag as i128 };
    i32::try_from(val).map_err(|_| ParamError::Range {
        param,
        value: v.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_other_modules_ignored() {
        let p = ModuleParams::from_cmdline(
            "console=ttyS0,115200 root=/dev/mmcblk0p2 iommu.strict=1 arm-smmu-v3.disable_bypass=0 quiet",
        )
        .unwrap();
        assert_eq!(p, ModuleParams::default());
        assert!(p.disable_bypass);
        assert_eq!(p.force_stage, 0);
    }

    #[test]
    fn bool_spellings() {
        for (v, want) in [
            ("0", false),
            ("1", true),
            ("y", true),
            ("Y", true),
            ("n", false),
            ("N", false),
            ("on", true),
            ("ON", true),
            ("off", false),
            ("OfF", false),
            ("yes", true),
            ("no", false),
            ("1junk", true),
        ] {
            let p = ModuleParams::from_cmdline(&format!("arm-smmu.disable_bypass={v}")).unwrap();
            assert_eq!(p.disable_bypass, want, "{v}");
        }
        // A bare boolean means "set".
        let p = ModuleParams::from_cmdline("arm-smmu.disable_bypass=0 arm-smmu.disable_bypass")
            .unwrap();
        assert!(p.disable_bypass);
        for bad in ["", "o", "true", "2", "x"] {
            let e = ModuleParams::from_cmdline(&format!("arm-smmu.disable_bypass={bad}"));
            assert_eq!(
                e,
                Err(ParamError::Invalid {
                    param: "disable_bypass",
                    value: bad.to_string()
                })
            );
        }
    }

    #[test]
    fn int_spellings_and_errors() {
        for (v, want) in [
            ("1", 1),
            ("2", 2),
            ("0x2", 2),
            ("010", 8),
            ("-1", -1),
            ("+2", 2),
            ("7", 7),
            ("0", 0),
        ] {
            let p = ModuleParams::from_cmdline(&format!("arm-smmu.force_stage={v}")).unwrap();
            assert_eq!(p.force_stage, want, "{v}");
        }
        assert_eq!(
            ModuleParams::from_cmdline("arm-smmu.force_stage=two"),
            Err(ParamError::Invalid {
                param: "force_stage",
                value: "two".into()
            })
        );
        assert_eq!(
            ModuleParams::from_cmdline("arm-smmu.force_stage"),
            Err(ParamError::Missing {
                param: "force_stage"
            })
        );
        assert_eq!(
            ModuleParams::from_cmdline("arm-smmu.force_stage=4294967296"),
            Err(ParamError::Range {
                param: "force_stage",
                value: "4294967296".into()
            })
        );
        assert!(ModuleParams::from_cmdline("arm-smmu.force_stage=09").is_err());
    }

    #[test]
    fn dashes_quotes_last_wins_and_double_dash() {
        let p = ModuleParams::from_cmdline(
            "arm_smmu.disable-bypass=0 arm-smmu.force_stage=1 arm-smmu.force-stage=\"2\"",
        )
        .unwrap();
        assert_eq!(
            p,
            ModuleParams {
                disable_bypass: false,
                force_stage: 2
            }
        );
        let p = ModuleParams::from_cmdline("a=\"x y\" -- arm-smmu.disable_bypass=0").unwrap();
        assert!(p.disable_bypass);
        assert_eq!(ModuleParams::from_cmdline("a=\"x"), Err(ParamError::Quote));
    }
}
