//! Fuzzes the checkpoint reader: `parse_checkpoint` must never panic on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = catopt::cli::checkpoint::parse_checkpoint(data);
});
