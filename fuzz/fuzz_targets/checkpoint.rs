//! Fuzzes the checkpoint reader: `parse_checkpoint` must never panic on arbitrary bytes
//! (a damaged checkpoint is refused, never read as another state). Run with cargo-afl: see
//! `fuzz/README.md`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = catopt::cli::checkpoint::parse_checkpoint(data);
    });
}
