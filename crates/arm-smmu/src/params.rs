//! Module parameters (`arm-smmu.disable_bypass=`, `arm-smmu.force_stage=`) taken from a kernel
//! command line, parsed the way Linux's `parse_args` and its `bool`/`int` setters do.
//!
//! Rules reproduced (Linux v6.1 `kernel/params.c`, `lib/kstrtox.c`):
//! * Arguments are separated by whitespace, as `next_arg` splits them: double quotes group
//!   whitespace (`p="a b"`), and a quote opening the whole argument or its value is removed with
//!   its closing quote (`p="0"` gives `0`); `--` ends the kernel's arguments (the rest belongs to
//!   init). [`kernel_args`] is that splitter, the one the whole command line is parsed with.
//! * Parameter names compare with `-` and `_` treated as equal (`arm_smmu.disable-bypass` works).
//! * Other modules' parameters and plain words are ignored here. A later occurrence overrides an
//!   earlier one. An unknown `arm-smmu.*` parameter is an error naming the known ones (Linux
//!   would only log it; a typo must not silently do nothing).
//! * `bool` ([`kstrtobool`]): only the first character(s) count: `y`/`Y`/`1` → true,
//!   `n`/`N`/`0` → false, `on`/`oN`/`On`/`ON` → true, `of…`/`Of…` (so `off`) → false. For a
//!   module parameter a bare name without `=` means true (`param_set_bool`); an early parameter
//!   such as `iommu.strict` hands `kstrtobool` a NULL value instead, which is `-EINVAL`.
//!   Anything else is rejected (`-EINVAL`).
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
    #[error("arm-smmu.{param}: unknown parameter (known: {})", known_list())]
    /// An `arm-smmu.*` parameter the driver does not have.
    Unknown {
        /// Parameter name without the `arm-smmu.` prefix, as given.
        param: String,
    },
}

/// The driver's module parameters, by name.
pub const KNOWN: [&str; 2] = ["disable_bypass", "force_stage"];

fn known_list() -> String {
    KNOWN
        .iter()
        .map(|k| format!("arm-smmu.{k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ModuleParams {
    /// Parse a whole kernel command line, starting from the defaults.
    pub fn from_cmdline(cmdline: &str) -> Result<Self, ParamError> {
        let mut p = ModuleParams::default();
        for (name, value) in kernel_args(cmdline)? {
            let Some(local) = strip_module(&name, "arm-smmu") else {
                continue;
            };
            if param_eq(local, "disable_bypass") {
                p.disable_bypass = parse_bool("disable_bypass", value.as_deref())?;
            } else if param_eq(local, "force_stage") {
                p.force_stage = parse_int("force_stage", value.as_deref())?;
            } else {
                return Err(ParamError::Unknown {
                    param: local.to_string(),
                });
            }
        }
        Ok(p)
    }
}

/// The kernel's arguments as (name, optional value) pairs, split as Linux's `next_arg` does, up
/// to a bare `--` (the rest belongs to init).
pub fn kernel_args(s: &str) -> Result<Vec<(String, Option<String>)>, ParamError> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    loop {
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        if i >= chars.len() {
            return Ok(out);
        }
        // One argument: whitespace inside double quotes does not end it.
        let start = i;
        let mut in_quote = false;
        while let Some(&c) = chars.get(i) {
            if c.is_whitespace() && !in_quote {
                break;
            }
            if c == '"' {
                in_quote = !in_quote;
            }
            i += 1;
        }
        if in_quote {
            return Err(ParamError::Quote);
        }
        let mut word: &[char] = &chars[start..i];
        // A quote opening the whole argument goes, with the quote that closes it.
        let quoted = word.first() == Some(&'"');
        if quoted {
            word = &word[1..];
            if word.last() == Some(&'"') {
                word = &word[..word.len() - 1];
            }
        }
        let text: String = word.iter().collect();
        let (name, value) = match text.split_once('=') {
            Some((n, v)) => {
                // A quote opening the value goes too, with a closing one at the end.
                let v = match v.strip_prefix('"') {
                    Some(inner) => inner.strip_suffix('"').unwrap_or(inner),
                    None => v,
                };
                (n.to_string(), Some(v.to_string()))
            }
            None => (text, None),
        };
        if name == "--" && value.is_none() && !quoted {
            return Ok(out);
        }
        out.push((name, value));
    }
}

/// Linux `kstrtobool`: `None` (a NULL string) and unknown spellings are `-EINVAL`.
pub fn kstrtobool(value: Option<&str>) -> Option<bool> {
    let b = value?.as_bytes();
    match b.first() {
        Some(b'y' | b'Y' | b'1') => Some(true),
        Some(b'n' | b'N' | b'0') => Some(false),
        Some(b'o' | b'O') => match b.get(1) {
            Some(b'n' | b'N') => Some(true),
            Some(b'f' | b'F') => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Names compare with `-` and `_` treated as equal, as Linux's `parameq` does.
pub fn names_equal(a: &str, b: &str) -> bool {
    param_eq(a, b)
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

/// Linux `param_set_bool`: a bare name means "set", else [`kstrtobool`].
pub fn parse_bool(param: &'static str, value: Option<&str>) -> Result<bool, ParamError> {
    let v = value.unwrap_or("1");
    kstrtobool(Some(v)).ok_or_else(|| ParamError::Invalid {
        param,
        value: v.to_string(),
    })
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

    #[test]
    fn next_arg_quoting() {
        let args = kernel_args(r#"a="x y" "b=1" c=d"e" f -- g=1"#).unwrap();
        let want: Vec<(String, Option<String>)> = vec![
            ("a".into(), Some("x y".into())),
            ("b".into(), Some("1".into())),
            // Only an opening quote of the argument or its value is removed.
            ("c".into(), Some("d\"e\"".into())),
            ("f".into(), None),
        ];
        assert_eq!(args, want);
        assert_eq!(kstrtobool(None), None);
        assert_eq!(kstrtobool(Some("")), None);
        assert_eq!(kstrtobool(Some("oN")), Some(true));
    }

    #[test]
    fn unknown_arm_smmu_parameters_name_the_known_ones() {
        for (line, param) in [
            ("arm-smmu.disable_bypas=0", "disable_bypas"),
            ("arm-smmu.bogus_param=1x", "bogus_param"),
            ("arm_smmu.bogus", "bogus"),
        ] {
            let e = ModuleParams::from_cmdline(line).unwrap_err();
            assert_eq!(
                e,
                ParamError::Unknown {
                    param: param.into()
                }
            );
            assert_eq!(
                e.to_string(),
                format!(
                    "arm-smmu.{param}: unknown parameter (known: arm-smmu.disable_bypass, arm-smmu.force_stage)"
                )
            );
        }
        // Another module's parameters are not ours to judge.
        assert!(ModuleParams::from_cmdline("arm-smmu-v3.disable_bypass=0 arm.x=1").is_ok());
    }
}
