//! `smmu-lab board [FILE.dtb]`: the SMMUs, masters, stream IDs and groups of a board.

use crate::common;
use crate::CommandOutcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Device tree blob; the built-in Kontron KBox A-230-LS when absent.
    dtb: Option<std::path::PathBuf>,
    /// Put an enumerated PCI function on the board (repeatable): [DOMAIN:]BUS:DEV.FN[=DRIVER];
    /// its stream ID comes from the host's iommu-map.
    #[arg(long = "pci", value_name = "BDF[=DRIVER]")]
    pci: Vec<String>,
}

pub fn run(args: &Args, json: bool) -> Result<CommandOutcome, String> {
    let mut board = common::load_board(args.dtb.as_deref())?;
    common::add_pci(&mut board, &args.pci)?;
    if json {
        let groups = board.expected_groups();
        common::print_json(&serde_json::json!({
            "schema": "smmu-lab/board/v1",
            "board": board,
            "expected_groups": groups,
        }))?;
    } else {
        out!("{}", crate::sim::board_report(&board));
    }
    Ok(CommandOutcome::Clean)
}
