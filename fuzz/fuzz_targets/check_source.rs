//! Fuzz the whole front end: any bytes in, never a panic, and every span inside the input.
//! Run with `RUSTC_BOOTSTRAP=1 cargo fuzz run check_source` (cargo-fuzz needs nightly
//! features; RUSTC_BOOTSTRAP enables them on stable).
#![no_main]

use catopt::check::{check_source, CheckOptions};
use catopt::diagnostic::SourceFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let outcome = check_source(SourceFile::new("fuzz.opt", text), &CheckOptions::default());
    assert_eq!(outcome.program.is_none(), outcome.report.has_errors());
    for d in &outcome.report.diagnostics {
        let (span, _) = &d.primary;
        assert!(span.start <= span.end && span.end <= text.len());
        for (span, _) in &d.secondary {
            assert!(span.start <= span.end && span.end <= text.len());
        }
    }
});
