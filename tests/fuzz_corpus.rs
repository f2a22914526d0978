//! Replays the fuzzing corpus (`fuzz/corpus/`, inputs that each reached new code under
//! AFL++) and every input the fuzzer found a problem with (`fuzz/regressions/`) through the
//! same checks as the fuzz targets: no panic, errors exactly when there is no program, every
//! span inside the input, and a checked program lowers or fails with diagnostics.

use catopt::check::program::CompositeId;
use catopt::check::{check_source, CheckOptions};
use catopt::diagnostic::SourceFile;
use catopt::lower::lower;
use std::path::Path;

fn inputs(folder: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

/// The fuzz targets' invariants on one input.
fn replay(path: &Path) {
    let bytes = std::fs::read(path).expect("readable");
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return;
    };
    let options = CheckOptions {
        memory_limit_bytes: 64 << 20,
        ..CheckOptions::default()
    };
    let outcome = check_source(SourceFile::new("fuzz.opt", text), &options);
    assert_eq!(
        outcome.program.is_none(),
        outcome.report.has_errors(),
        "{}",
        path.display()
    );
    for d in &outcome.report.diagnostics {
        for (span, _) in std::iter::once(&d.primary).chain(&d.secondary) {
            assert!(
                span.start <= span.end && span.end <= text.len(),
                "{}",
                path.display()
            );
        }
    }
    let _ = outcome.report.to_plain_string();
    if let Some(program) = outcome.program {
        for id in 0..program.composites.len() {
            let _ = lower(&program, CompositeId(id as u32), None);
        }
    }
}

#[test]
fn the_fuzzing_corpus_replays_cleanly() {
    let files = inputs("fuzz/corpus/source");
    assert!(files.len() > 100, "the corpus is committed");
    files.iter().for_each(|f| replay(f));
}

#[test]
fn every_input_the_fuzzer_found_a_problem_with_is_handled() {
    let files = inputs("fuzz/regressions");
    assert!(!files.is_empty());
    files.iter().for_each(|f| replay(f));
}
