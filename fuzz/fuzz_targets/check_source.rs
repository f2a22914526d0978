//! Fuzz the whole front end: any bytes in, never a panic, an abort or a hang, and every
//! span inside the input. Run with cargo-afl (stable Rust): see `fuzz/README.md`.

use catopt::check::{check_source, CheckOptions};
use catopt::diagnostic::SourceFile;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let options = CheckOptions {
            memory_limit_bytes: 256 << 20,
            ..CheckOptions::default()
        };
        let outcome = check_source(SourceFile::new("fuzz.opt", text), &options);
        assert_eq!(outcome.program.is_none(), outcome.report.has_errors());
        for d in &outcome.report.diagnostics {
            let (span, _) = &d.primary;
            assert!(span.start <= span.end && span.end <= text.len());
            for (span, _) in &d.secondary {
                assert!(span.start <= span.end && span.end <= text.len());
            }
        }
        // Rendering must not panic either (plain and fancy).
        let _ = outcome.report.to_plain_string();
    });
}
