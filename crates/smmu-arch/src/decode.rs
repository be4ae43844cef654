//! Explain a register value field by field (`smmu-lab decode gfsr 0x80000002`).
//!
//! Each register is described once, as a table of fields; decoding walks the table. Flags that are
//! set form the one-line summary (`MULTI + USF`), multi-bit fields are shown with their value and,
//! where the architecture names the encodings, the name of that value.

use std::fmt;

/// A register that can be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Register {
    /// Lower-case name as typed on the command line.
    pub name: &'static str,
    /// Architectural name and where it lives.
    pub title: &'static str,
    fields: &'static [Field],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    name: &'static str,
    shift: u32,
    width: u32,
    meaning: &'static str,
    /// Names of encodings, indexed by value, for enumerated fields.
    values: &'static [&'static str],
}

const fn flag(name: &'static str, bit: u32, meaning: &'static str) -> Field {
    Field {
        name,
        shift: bit,
        width: 1,
        meaning,
        values: &[],
    }
}

const fn num(name: &'static str, shift: u32, width: u32, meaning: &'static str) -> Field {
    Field {
        name,
        shift,
        width,
        meaning,
        values: &[],
    }
}

const fn named(
    name: &'static str,
    shift: u32,
    width: u32,
    meaning: &'static str,
    values: &'static [&'static str],
) -> Field {
    Field {
        name,
        shift,
        width,
        meaning,
        values,
    }
}

const SIZE_CODES: &[&str] = &["32-bit", "36-bit", "40-bit", "42-bit", "44-bit", "48-bit"];

/// Cacheability encodings of table walks (IRGN0/ORGN0).
const CACHEABILITY: &[&str] = &["non-cacheable", "WBWA", "WT", "WB no-WA"];

// The walk attributes sit at the same bits in the stage-1 TCR and in VTCR.
const WALK_IRGN0: Field = named("IRGN0", 8, 2, "inner cacheability of walks", CACHEABILITY);
const WALK_ORGN0: Field = named("ORGN0", 10, 2, "outer cacheability of walks", CACHEABILITY);
const WALK_SH0: Field = named(
    "SH0",
    12,
    2,
    "shareability of walks",
    &["non-shareable", "reserved", "outer", "inner"],
);

/// Every register `decode` knows.
pub const REGISTERS: &[Register] = &[
    Register {
        name: "gfsr",
        title: "sGFSR, global fault status (GR0 0x048)",
        fields: &[
            flag("ICF", 0, "invalid context fault"),
            flag(
                "USF",
                1,
                "unidentified stream fault: no SMR matched the stream ID",
            ),
            flag(
                "SMCF",
                2,
                "stream match conflict: more than one SMR matched",
            ),
            flag("UCBF", 3, "unimplemented context bank fault"),
            flag("UCIF", 4, "unimplemented context interrupt fault"),
            flag("CAF", 5, "configuration access fault"),
            flag("EF", 6, "external fault"),
            flag("PF", 7, "permission fault"),
            flag("UUT", 8, "unsupported upstream transaction"),
            flag(
                "MULTI",
                31,
                "another fault arrived while one was already recorded",
            ),
        ],
    },
    Register {
        name: "gfsynr0",
        title: "sGFSYNR0, global fault syndrome 0 (GR0 0x050)",
        fields: &[
            flag(
                "NESTED",
                0,
                "fault during a nested (stage-2 of stage-1) walk",
            ),
            named("WNR", 1, 1, "direction", &["read", "write"]),
            flag("PNU", 2, "privileged access"),
            flag("IND", 3, "instruction fetch"),
            flag("NSSTATE", 4, "non-secure state"),
            flag("NSATTR", 5, "non-secure attribute"),
        ],
    },
    Register {
        name: "gfsynr1",
        title: "sGFSYNR1, global fault syndrome 1 (GR0 0x054)",
        fields: &[
            num(
                "StreamID",
                0,
                16,
                "stream ID of the faulting transaction (TBU bits included)",
            ),
            num("SSD_Index", 16, 16, "security state determination index"),
        ],
    },
    Register {
        name: "fsr",
        title: "CB_FSR, context-bank fault status (CB 0x058)",
        fields: &[
            flag("TF", 1, "translation fault"),
            flag("AFF", 2, "access flag fault"),
            flag("PF", 3, "permission fault"),
            flag("EF", 4, "external fault"),
            flag("TLBMCF", 5, "TLB match conflict"),
            flag("TLBLKF", 6, "TLB lock fault"),
            flag("ASF", 7, "address size fault"),
            flag("UUT", 8, "unsupported upstream transaction"),
            num("FORMAT", 9, 2, "syndrome format"),
            flag("SS", 30, "transaction stalled"),
            flag(
                "MULTI",
                31,
                "another fault arrived while one was already recorded",
            ),
        ],
    },
    Register {
        name: "fsynr0",
        title: "CB_FSYNR0, context-bank fault syndrome 0 (CB 0x068)",
        fields: &[
            num("PLVL", 0, 2, "table level at which the fault occurred"),
            named("WNR", 4, 1, "direction", &["read", "write"]),
            flag("PNU", 5, "privileged access"),
            flag("IND", 6, "instruction fetch"),
            flag("NSATTR", 8, "non-secure attribute"),
            flag("PTWF", 10, "fault during a page-table walk"),
            flag("AFR", 11, "asynchronous fault report"),
            num("S1CBNDX", 16, 8, "stage-1 context bank index"),
        ],
    },
    Register {
        name: "scr0",
        title: "sCR0, global configuration (GR0 0x000)",
        fields: &[
            flag(
                "CLIENTPD",
                0,
                "SMMU disabled: every transaction bypasses translation",
            ),
            flag("GFRE", 1, "global fault report enable"),
            flag("GFIE", 2, "global fault interrupt enable"),
            flag("EXIDENABLE", 3, "extended stream IDs enabled"),
            flag("GCFGFRE", 4, "global configuration fault report enable"),
            flag("GCFGFIE", 5, "global configuration fault interrupt enable"),
            flag(
                "USFCFG",
                10,
                "unmatched streams fault (instead of bypassing)",
            ),
            flag("VMIDPNE", 11, "VMID private namespace enable"),
            flag("PTM", 12, "private TLB maintenance"),
            flag("FB", 13, "force broadcast of TLB maintenance"),
            num("BSU", 14, 2, "barrier shareability upgrade"),
            flag("SMCFCFG", 21, "stream match conflicts fault (MMU-500)"),
            flag("VMID16EN", 31, "16-bit VMIDs enabled"),
        ],
    },
    Register {
        name: "s2cr",
        title: "S2CR(n), stream-to-context register (GR0 0xc00 + 4n)",
        fields: &[
            num("CBNDX", 0, 8, "context bank index"),
            flag("EXIDVALID", 10, "entry valid (extended stream IDs)"),
            named(
                "TYPE",
                16,
                2,
                "what matching transactions get",
                &["translate", "bypass", "fault", "reserved"],
            ),
            named(
                "PRIVCFG",
                24,
                2,
                "privilege override",
                &["default", "DIPAN", "unprivileged", "privileged"],
            ),
        ],
    },
    Register {
        name: "smr",
        title: "SMR(n), stream match register (GR0 0x800 + 4n)",
        fields: &[
            num("ID", 0, 15, "stream ID to match"),
            num("MASK", 16, 15, "stream ID bits ignored when matching"),
            flag("VALID", 31, "entry valid"),
        ],
    },
    Register {
        name: "cbar",
        title: "CBAR(n), context bank attributes (GR1 0x000 + 4n)",
        fields: &[
            num("VMID", 0, 8, "virtual machine ID"),
            named(
                "BPSHCFG",
                8,
                2,
                "bypass shareability",
                &["reserved", "outer", "inner", "non-shareable"],
            ),
            num("MEMATTR", 12, 4, "bypass memory attributes"),
            named(
                "TYPE",
                16,
                2,
                "translation regime",
                &[
                    "stage 2 only",
                    "stage 1, stage 2 bypass",
                    "stage 1, stage 2 fault",
                    "stage 1 then stage 2",
                ],
            ),
            num("IRPTNDX", 24, 8, "context interrupt index"),
        ],
    },
    Register {
        name: "cba2r",
        title: "CBA2R(n), context bank attributes 2 (GR1 0x800 + 4n)",
        fields: &[
            named("VA64", 0, 1, "descriptor format", &["AArch32", "AArch64"]),
            num("VMID16", 16, 16, "16-bit VMID"),
        ],
    },
    Register {
        name: "sctlr",
        title: "CB_SCTLR, context-bank system control (CB 0x000)",
        fields: &[
            flag("M", 0, "translation enabled"),
            flag("TRE", 1, "TEX remap enable"),
            flag("AFE", 2, "access flag enable"),
            flag("AFFD", 3, "access flag fault disable"),
            flag("E", 4, "big-endian descriptors"),
            flag("CFRE", 5, "context fault report enable"),
            flag("CFIE", 6, "context fault interrupt enable"),
            named("CFCFG", 7, 1, "on a fault", &["terminate", "stall"]),
            flag("HUPCF", 8, "hit under previous context fault"),
            flag("ASIDPNE", 12, "ASID private namespace enable"),
        ],
    },
    Register {
        name: "tcr",
        title: "CB_TCR, stage-1 translation control, AArch64 (CB 0x030)",
        fields: &[
            num("T0SZ", 0, 6, "TTBR0 region is 2^(64-T0SZ) bytes"),
            flag("EPD0", 7, "TTBR0 walks disabled"),
            WALK_IRGN0,
            WALK_ORGN0,
            WALK_SH0,
            named(
                "TG0",
                14,
                2,
                "TTBR0 granule",
                &["4K", "64K", "16K", "reserved"],
            ),
            num("T1SZ", 16, 6, "TTBR1 region is 2^(64-T1SZ) bytes"),
            flag("A1", 22, "ASID comes from TTBR1"),
            flag("EPD1", 23, "TTBR1 walks disabled"),
            named(
                "TG1",
                30,
                2,
                "TTBR1 granule",
                &["reserved", "16K", "4K", "64K"],
            ),
        ],
    },
    Register {
        name: "vtcr",
        title: "CB_TCR as VTCR, stage-2 translation control (CB 0x030)",
        fields: &[
            num("T0SZ", 0, 6, "IPA space is 2^(64-T0SZ) bytes"),
            num("SL0", 6, 2, "starting level (encoding depends on TG0)"),
            WALK_IRGN0,
            WALK_ORGN0,
            WALK_SH0,
            named("TG0", 14, 2, "granule", &["4K", "64K", "16K", "reserved"]),
            named("PS", 16, 3, "physical address size", SIZE_CODES),
        ],
    },
    Register {
        name: "tcr2",
        title: "CB_TCR2, stage-1 translation control 2 (CB 0x010)",
        fields: &[
            named("PASIZE", 0, 4, "physical address size", SIZE_CODES),
            named("AS", 4, 1, "ASID size", &["8-bit", "16-bit"]),
            num("SEP", 15, 3, "sign-extension bit position (7 = upstream)"),
        ],
    },
    Register {
        name: "id0",
        title: "sIDR0, identification 0 (GR0 0x020)",
        fields: &[
            num("NUMSMRG", 0, 8, "number of stream mapping register groups"),
            flag("EXIDS", 8, "extended stream IDs supported"),
            num("NUMSIDB", 9, 4, "stream ID bits"),
            flag("BTM", 13, "broadcast TLB maintenance"),
            flag("CTTW", 14, "coherent translation table walk"),
            num("NUMIRPT", 16, 8, "context interrupts (v1)"),
            flag("PTFS_NO_AARCH32S", 24, "no AArch32 short-descriptor format"),
            flag("PTFS_NO_AARCH32", 25, "no AArch32 formats"),
            flag("ATOSNS", 26, "no address translation operations"),
            flag("SMS", 27, "stream matching (not indexing)"),
            flag("NTS", 28, "nested translation"),
            flag("S2TS", 29, "stage-2 translation"),
            flag("S1TS", 30, "stage-1 translation"),
            flag("SES", 31, "security extensions"),
        ],
    },
    Register {
        name: "id1",
        title: "sIDR1, identification 1 (GR0 0x024)",
        fields: &[
            num("NUMCB", 0, 8, "context banks"),
            num("NUMS2CB", 16, 8, "stage-2-only context banks"),
            num("NUMPAGENDXB", 28, 3, "global pages = 2^(NUMPAGENDXB+1)"),
            named(
                "PAGESIZE",
                31,
                1,
                "register page size",
                &["4 KiB", "64 KiB"],
            ),
        ],
    },
    Register {
        name: "id2",
        title: "sIDR2, identification 2 (GR0 0x028)",
        fields: &[
            named(
                "IAS",
                0,
                4,
                "intermediate (stage-1 output) address size",
                SIZE_CODES,
            ),
            named("OAS", 4, 4, "output address size", SIZE_CODES),
            named("UBS", 8, 4, "upstream bus (input) address size", SIZE_CODES),
            flag("PTFS_4K", 12, "AArch64 4K granule"),
            flag("PTFS_16K", 13, "AArch64 16K granule"),
            flag("PTFS_64K", 14, "AArch64 64K granule"),
            flag("VMID16", 15, "16-bit VMIDs"),
        ],
    },
];

/// One decoded field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedField {
    pub name: &'static str,
    /// `"31"` or `"17:16"`.
    pub bits: String,
    pub value: u32,
    pub meaning: &'static str,
    /// The name of the encoding, for enumerated fields.
    pub value_name: Option<&'static str>,
    /// A one-bit field (shown in the summary when set).
    pub is_flag: bool,
}

/// A register value, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub register: &'static str,
    pub title: &'static str,
    pub value: u32,
    pub fields: Vec<DecodedField>,
    /// Bits set that no field names.
    pub unknown_bits: u32,
}

/// A name `decode` does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRegister(pub String);

impl fmt::Display for UnknownRegister {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = REGISTERS.iter().map(|r| r.name).collect();
        write!(
            f,
            "unknown register '{}'; known: {}",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownRegister {}

/// Find a register by name (case-insensitive; `sgfsr`, `sctlr`, `cb_fsr` style prefixes accepted).
pub fn register(name: &str) -> Result<&'static Register, UnknownRegister> {
    let lower = name.to_ascii_lowercase();
    let key = lower
        .strip_prefix("cb_")
        .or_else(|| {
            lower
                .strip_prefix("s")
                .filter(|k| k.starts_with("gfs") || k.starts_with("cr0"))
        })
        .unwrap_or(&lower);
    REGISTERS
        .iter()
        .find(|r| r.name == key || r.name == lower)
        .ok_or(UnknownRegister(name.to_string()))
}

/// Decode `value` as register `name`.
pub fn decode(name: &str, value: u32) -> Result<Decoded, UnknownRegister> {
    let reg = register(name)?;
    let mut known = 0u32;
    let fields = reg
        .fields
        .iter()
        .map(|f| {
            let mask = if f.width == 32 {
                u32::MAX
            } else {
                ((1u32 << f.width) - 1) << f.shift
            };
            known |= mask;
            let v = (value & mask) >> f.shift;
            DecodedField {
                name: f.name,
                bits: if f.width == 1 {
                    f.shift.to_string()
                } else {
                    format!("{}:{}", f.shift + f.width - 1, f.shift)
                },
                value: v,
                meaning: f.meaning,
                value_name: f.values.get(v as usize).copied(),
                is_flag: f.width == 1 && f.values.is_empty(),
            }
        })
        .collect();
    Ok(Decoded {
        register: reg.name,
        title: reg.title,
        value,
        fields,
        unknown_bits: value & !known,
    })
}

impl Decoded {
    /// The set flags, most significant first: `MULTI + USF`. `(none)` when no flag is set.
    pub fn summary(&self) -> String {
        // Every set single-bit field, named ones (sGFSYNR0.WNR: 1 = write) included.
        let mut set: Vec<&DecodedField> = self
            .fields
            .iter()
            .filter(|f| f.value != 0 && (f.is_flag || !f.bits.contains(':')))
            .collect();
        set.sort_by_key(|f| std::cmp::Reverse(f.bits.parse::<u32>().unwrap_or(0)));
        if set.is_empty() {
            "(none)".to_string()
        } else {
            set.iter().map(|f| f.name).collect::<Vec<_>>().join(" + ")
        }
    }
}

impl fmt::Display for Decoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} = {:#010x}: {}",
            self.register,
            self.value,
            self.summary()
        )?;
        writeln!(f, "  {}", self.title)?;
        for field in &self.fields {
            if field.is_flag && field.value == 0 {
                continue;
            }
            let shown = match field.value_name {
                Some(n) => format!("{} ({n})", field.value),
                None if field.is_flag => "1".to_string(),
                None => format!("{:#x}", field.value),
            };
            writeln!(
                f,
                "  [{:>5}] {:<16} = {:<18} {}",
                field.bits, field.name, shown, field.meaning
            )?;
        }
        if self.unknown_bits != 0 {
            writeln!(f, "  unnamed bits set: {:#010x}", self.unknown_bits)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_gfsr_is_multi_plus_usf() {
        let d = decode("gfsr", 0x8000_0002).unwrap();
        assert_eq!(d.summary(), "MULTI + USF");
        assert_eq!(d.unknown_bits, 0);
        assert_eq!(decode("sGFSR", 2).unwrap().summary(), "USF");
    }

    #[test]
    fn seed_syndromes() {
        let d = decode("gfsynr0", 2).unwrap();
        let wnr = d.fields.iter().find(|f| f.name == "WNR").unwrap();
        assert_eq!(wnr.value_name, Some("write"));
        // The summary names the set bit (it printed "(none)" when only WNR was set).
        assert_eq!(d.summary(), "WNR");
        assert!(
            d.to_string().starts_with("gfsynr0 = 0x00000002: WNR\n"),
            "{d}"
        );
        assert_eq!(decode("gfsynr0", 0).unwrap().summary(), "(none)");
        let d = decode("gfsynr1", 0x429).unwrap();
        assert_eq!(d.fields[0].value, 0x429);
    }

    #[test]
    fn worked_values_decode() {
        let d = decode("scr0", 0x0020_1c36).unwrap();
        assert_eq!(
            d.summary(),
            "SMCFCFG + PTM + VMIDPNE + USFCFG + GCFGFIE + GCFGFRE + GFIE + GFRE"
        );
        let d = decode("sctlr", 0x1067).unwrap();
        assert_eq!(d.summary(), "ASIDPNE + CFIE + CFRE + AFE + TRE + M");
        let d = decode("cbar", 0x0001_f300).unwrap();
        let ty = d.fields.iter().find(|f| f.name == "TYPE").unwrap();
        assert_eq!(ty.value_name, Some("stage 1, stage 2 bypass"));
        let d = decode("tcr", 0x0080_3510).unwrap();
        let t0sz = d.fields.iter().find(|f| f.name == "T0SZ").unwrap();
        assert_eq!(t0sz.value, 16);
        let d = decode("s2cr", 0x2_0000).unwrap();
        assert_eq!(d.fields[2].value_name, Some("fault"));
        let text = decode("fsr", 0x8000_0002).unwrap().to_string();
        assert!(text.starts_with("fsr = 0x80000002: MULTI + TF\n"), "{text}");
    }

    #[test]
    fn unknown_register_names_the_choices() {
        let e = decode("bogus", 0).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("unknown register 'bogus'; known: gfsr, gfsynr0"));
    }
}
