//! Issue 12 regressions in the front end: nesting, long sums, memory estimates, labels and
//! warnings. Each test reproduces an attack or a careless input that used to crash, hang,
//! exhaust memory or silently misbehave.

use catopt::check::{check_source, CheckOptions, MAX_COMPOSITE_DEPTH};
use catopt::diagnostic::SourceFile;
use catopt::lower::lower_text;

fn check(text: &str) -> catopt::check::CheckOutcome {
    check_source(SourceFile::new("t.opt", text), &CheckOptions::default())
}

fn codes(text: &str) -> Vec<&'static str> {
    check(text)
        .report
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect()
}

/// `n` composites, each calling the previous one once.
fn composite_chain(n: usize) -> String {
    let mut text =
        String::from("objective f(x: real) { minimize (x - 1)^2; }\ncomposite c0(x) { f(x); }\n");
    for i in 1..n {
        text.push_str(&format!("composite c{i}(x) {{ c{}(x); }}\n", i - 1));
    }
    text
}

#[test]
fn composites_nested_25000_deep_are_refused_instead_of_overflowing_the_stack() {
    // Used to abort with a stack overflow after 13 s (quadratic time before it).
    let outcome = check(&composite_chain(25_000));
    let codes: Vec<_> = outcome.report.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["E0602"], "{}", outcome.report.to_plain_string());
    let message = &outcome.report.diagnostics[0].message;
    assert!(
        message.contains("`c256`") && message.contains("256 levels"),
        "{message}"
    );
}

#[test]
fn check_and_run_agree_on_the_nesting_limit() {
    // `check` accepted 257 levels that `run` then refused.
    assert_eq!(codes(&composite_chain(MAX_COMPOSITE_DEPTH + 1)), ["E0602"]);
    let deepest = composite_chain(MAX_COMPOSITE_DEPTH);
    assert!(codes(&deepest).is_empty());
    let (_, problem) = lower_text(&deepest, None).expect("256 levels lower");
    assert_eq!(problem.variable_count(), 1);
}

/// The objective `first op1 term1 op2 term2 ...` of a one-variable box, evaluated at x.
fn box_value(text: &str, x: f64) -> f64 {
    let (_, problem) = lower_text(text, None).expect("lowers");
    let compiled = &problem.box_types[0].compiled;
    let mut workspace = compiled.workspace();
    compiled.value(&mut workspace, &[x])
}

#[test]
fn sums_of_any_length_are_accepted_and_add_every_term_once() {
    // A sum of more than 256 terms was rejected as "nested too deep".
    for terms in [300usize, 1000, 4097] {
        let mut expression = String::from("(x - 1)^2");
        let mut expected = 0.0f64;
        let x = 0.5f64;
        expected += (x - 1.0).powi(2);
        for i in 2..=terms {
            let sign = if i % 3 == 0 { "-" } else { "+" };
            expression.push_str(&format!(" {sign} {i} * (x - {i})^2"));
            let term = i as f64 * (x - i as f64).powi(2);
            expected += if i % 3 == 0 { -term } else { term };
        }
        let text = format!(
            "objective f(x: real) {{ minimize {expression}; }}\ncomposite c() {{ f(x); }}\n"
        );
        assert!(codes(&text).is_empty(), "{terms} terms: {:?}", codes(&text));
        let value = box_value(&text, x);
        assert!(
            ((value - expected) / expected).abs() < 1e-12,
            "{terms} terms: {value} against {expected}"
        );
    }
}

#[test]
fn short_sums_keep_their_left_to_right_order_bit_for_bit() {
    // 1e16 + 1 - 1e16 + ... is order-sensitive: a short sum still folds from the left.
    let text =
        "objective f(x: real) { minimize x + 1e16 + 1 - 1e16 + 1; }\ncomposite c() { f(x); }\n";
    assert_eq!(box_value(text, 0.0), ((0.0 + 1e16 + 1.0) - 1e16) + 1.0);
}

#[test]
fn products_too_deep_are_still_refused_with_a_code() {
    let factors = vec!["x"; 300].join(" * ");
    let text = format!("objective f(x: real) {{ minimize {factors}; }}\n");
    assert_eq!(codes(&text), ["E0005"]);
}
