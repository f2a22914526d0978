//! Robustness of the front end: random and mutated programs never panic and every span
//! lies inside the input; garbage is rejected fast; large problems are refused early.

use catopt::check::{check_source, CheckOptions};
use catopt::diagnostic::SourceFile;
use proptest::prelude::*;
use std::time::Instant;

const SEED_PROGRAMS: [&str; 4] = [
    include_str!("check/lang_first.opt"),
    include_str!("check/lang_rosenbrock_chain.opt"),
    include_str!("check/ok_expressions.opt"),
    include_str!("check/ok_composites.opt"),
];

/// Checks `text` and asserts the invariants: errors iff no program, spans inside the text.
fn check_invariants(text: &str) {
    let outcome = check_source(SourceFile::new("p.opt", text), &CheckOptions::default());
    assert_eq!(outcome.program.is_none(), outcome.report.has_errors());
    for d in &outcome.report.diagnostics {
        assert!(!d.code.is_empty() && !d.message.is_empty());
        for (span, _) in std::iter::once(&d.primary).chain(&d.secondary) {
            assert!(
                span.start <= span.end && span.end <= text.len(),
                "{span:?} outside {} bytes: {d:?}",
                text.len()
            );
        }
    }
    let _ = outcome.report.to_plain_string();
}

fn mutate(seed: &str, edits: &[(usize, u8, String)]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for (at, kind, piece) in edits {
        if bytes.is_empty() {
            break;
        }
        let at = at % bytes.len();
        match kind % 3 {
            0 => {
                let end = (at + piece.len().max(1)).min(bytes.len());
                bytes.drain(at..end);
            }
            1 => {
                bytes.splice(at..at, piece.bytes());
            }
            _ => {
                let end = (at + piece.len()).min(bytes.len());
                bytes.splice(at..end, piece.bytes());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(";".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("\"".to_string()),
        Just("#".to_string()),
        Just("for i in 0..3".to_string()),
        Just("x[i + 1]".to_string()),
        Just("1e999".to_string()),
        Just("-".to_string()),
        Just("^".to_string()),
        Just("'".to_string()),
        Just("@".to_string()),
        Just("real[2, 3]".to_string()),
        Just("minimize".to_string()),
        Just("objective".to_string()),
        Just("composite".to_string()),
        "[a-z]{1,3}",
        "[0-9]{1,4}",
        "[ -~]{0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_programs_never_panic(
        which in 0..SEED_PROGRAMS.len(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), token()), 1..6),
    ) {
        check_invariants(&mutate(SEED_PROGRAMS[which], &edits));
    }

    #[test]
    fn random_token_soup_never_panics(tokens in proptest::collection::vec(token(), 0..60)) {
        check_invariants(&tokens.join(" "));
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        check_invariants(&text);
    }
}

#[test]
fn ten_megabytes_of_garbage_are_rejected_fast() {
    // Deterministic pseudo-random printable garbage, with some program-like pieces.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let pieces = [
        "objective f(",
        "{",
        "(",
        ")",
        "}",
        ";",
        " x ",
        "\n",
        "composite c() {",
        "+",
        "[1,",
    ];
    let mut text = String::with_capacity(10 << 20);
    while text.len() < 10 << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if state % 4 == 0 {
            text.push_str(pieces[(state >> 8) as usize % pieces.len()]);
        } else {
            text.push((b' ' + (state >> 16) as u8 % 95) as char);
        }
    }
    let start = Instant::now();
    let outcome = check_source(
        SourceFile::new("garbage.opt", text.clone()),
        &CheckOptions::default(),
    );
    let elapsed = start.elapsed();
    assert!(outcome.report.has_errors());
    assert!(outcome.report.diagnostics.len() <= 101);
    assert!(elapsed.as_secs_f64() < 10.0, "took {elapsed:?}");

    // Syntactically plausible garbage: many items, each broken.
    let item = "objective f(a: real) { minimize a^2 }\n";
    let text = item.repeat((10 << 20) / item.len());
    let start = Instant::now();
    let outcome = check_source(
        SourceFile::new("garbage.opt", text),
        &CheckOptions::default(),
    );
    assert!(outcome.report.has_errors());
    assert!(outcome.report.diagnostics.len() <= 101);
    assert!(
        start.elapsed().as_secs_f64() < 10.0,
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn memory_limit_is_configurable_and_checked_before_unrolling() {
    let text = "const N = 100000;\nobjective f(a: real, b: real) { minimize (a - b)^2; }\ncomposite c() { for i in 0..N { f(x[i], x[i + 1]); } }\n";
    let options = CheckOptions {
        memory_limit_bytes: 1 << 20,
        ..CheckOptions::default()
    };
    let outcome = check_source(SourceFile::new("big.opt", text), &options);
    let codes: Vec<_> = outcome.report.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["E0601"]);
    let outcome = check_source(SourceFile::new("big.opt", text), &CheckOptions::default());
    assert!(outcome.program.is_some());
}

#[test]
fn a_thousand_box_chain_has_shared_junctions_and_loop_labels() {
    let outcome = check_source(
        SourceFile::new("c.opt", include_str!("check/lang_rosenbrock_chain.opt")),
        &CheckOptions::default(),
    );
    let program = outcome.program.expect("good file");
    let chain = &program.composites[0];
    assert_eq!(chain.boxes.len(), 1000);
    assert_eq!(chain.junctions.len(), 1001);
    // Box i is wired to x[i] and x[i + 1]: neighbours share a junction.
    for b in [0usize, 1, 500, 999] {
        let js = chain.junctions_of(b);
        assert_eq!(
            chain.junctions.name(js[0].0 as usize).to_string(),
            format!("x[{b}]")
        );
        assert_eq!(
            chain.junctions[js[1].0 as usize].name.to_string(),
            format!("x[{}]", b + 1)
        );
        assert_eq!(chain.boxes.get(b).label.to_string(), format!("rosen[{b}]"));
    }
    // Labels share one base string.
    assert!(std::sync::Arc::ptr_eq(
        &chain.boxes.get(0).label.base,
        &chain.boxes.get(999).label.base
    ));
    // The loop's boxes are one run, its junctions two (x[0] is first used by `x[i]`, the
    // others by `x[i + 1]`): memory does not grow with the number of boxes.
    assert_eq!(chain.boxes.run_count(), 1);
    assert_eq!(chain.junctions.run_count(), 2);
    let records: Vec<_> = chain.boxes.iter().collect();
    assert_eq!(records.len(), 1000);
    assert_eq!(records[999].junctions, 1998..2000);
}

#[test]
fn cli_exit_codes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check");
    let good = vec![dir.join("lang_first.opt")];
    let bad = vec![dir.join("lang_first.opt"), dir.join("bad_empty.opt")];
    assert_eq!(catopt::cli::check::run_with(&good, true), 0);
    assert_eq!(catopt::cli::check::run_with(&bad, true), 2);
    assert_eq!(
        catopt::cli::check::run_with(&[dir.join("no_such_file.opt")], true),
        2
    );
}
