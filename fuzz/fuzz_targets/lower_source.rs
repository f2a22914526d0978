//! Fuzz checking *and* lowering: a file that checks must lower (pushout, box types, initial
//! point) without a panic, or fail with coded diagnostics. Run with cargo-afl: see
//! `fuzz/README.md`.

use catopt::check::{check_source, CheckOptions};
use catopt::diagnostic::SourceFile;
use catopt::lower::lower;
use catopt::check::program::CompositeId;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let options = CheckOptions {
            memory_limit_bytes: 64 << 20,
            ..CheckOptions::default()
        };
        let outcome = check_source(SourceFile::new("fuzz.opt", text), &options);
        let Some(program) = outcome.program else {
            return;
        };
        for id in 0..program.composites.len() {
            if let Ok(problem) = lower(&program, CompositeId(id as u32), None) {
                assert!(problem.variable_count() as u64 <= (64 << 20) / 8);
            }
        }
    });
}
