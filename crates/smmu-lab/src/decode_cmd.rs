//! `smmu-lab decode REGISTER VALUE`.

use crate::CommandOutcome;
use smmu_arch::decode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Register name: gfsr, gfsynr0, gfsynr1, fsr, fsynr0, scr0, s2cr, smr, cbar, cba2r, sctlr,
    /// tcr, vtcr, tcr2, id0, id1, id2.
    register: String,
    /// Value, hexadecimal with 0x or decimal.
    value: String,
}

fn parse_value(text: &str) -> Result<u32, String> {
    let t = text.trim().replace('_', "");
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => t.parse::<u32>(),
    };
    parsed.map_err(|_| format!("'{text}' is not a 32-bit value (use 0x… for hexadecimal)"))
}

pub fn run(args: &Args, json: bool) -> Result<CommandOutcome, String> {
    let value = parse_value(&args.value)?;
    let d = decode::decode(&args.register, value).map_err(|e| e.to_string())?;
    if json {
        let fields: Vec<serde_json::Value> = d
            .fields
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name,
                    "bits": f.bits,
                    "value": f.value,
                    "value_name": f.value_name,
                    "meaning": f.meaning,
                })
            })
            .collect();
        let out = serde_json::json!({
            "schema": "smmu-lab/decode/v1",
            "register": d.register,
            "title": d.title,
            "value": format!("{:#010x}", d.value),
            "summary": d.summary(),
            "fields": fields,
            "unknown_bits": format!("{:#010x}", d.unknown_bits),
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
        );
    } else {
        out!("{d}");
    }
    Ok(CommandOutcome::Clean)
}
