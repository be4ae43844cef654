fn main() {
    let p = std::env::args().nth(1).unwrap();
    let d = std::fs::read(p).unwrap();
    match sim::Board::from_dtb(&d) {
        Ok(b) => print!("{}", sim::board_report(&b)),
        Err(e) => println!("error: {e}"),
    }
}
