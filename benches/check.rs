//! Criterion benchmarks of the checker on data read by rows (issue 15): checking a file
//! whose 1e6 boxes each read one row of ONE csv file (1e6 rows, 2 columns) must be linear
//! and under 2x the time of checking the same file loaded as one matrix.
//!
//! - `check_rows/whole`: `data X = csv(...)` loaded as one matrix, 1e6 boxes sharing a
//!   data argument (the baseline);
//! - `check_rows/row_index`: the same file and loop, each box reading its row `X[i]`;
//! - `check_rows/family`: a data family of 1e6 members, `csv(..., rows = t..t + 1)`, member
//!   `X[i]` per box.
//!
//! Each case also runs at N = 1e5 (linearity: the 1e6 case should take about 10x).
//! Run: `cargo bench --bench check` (or `-- check_rows/row_index`).

use catopt::check::{check_source, CheckOptions};
use catopt::diagnostic::SourceFile;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SIZES: [usize; 2] = [100_000, 1_000_000];

/// A directory holding `rows{n}.csv`: n rows of two small integers.
fn data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("catopt-bench-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for n in SIZES {
        let path = dir.join(format!("rows{n}.csv"));
        if !path.exists() {
            let text: String = (0..n).map(|r| format!("{},{}\n", r % 97, r % 89)).collect();
            std::fs::write(&path, text).expect("write csv");
        }
    }
    dir
}

/// The three files of the module docs, with `n` boxes.
fn source(case: &str, n: usize) -> String {
    let objective = "objective f(w: real[2]; r: real[2]) { minimize sumsq(w - r); }\n";
    match case {
        "whole" => format!(
            "data X = csv(\"rows{n}.csv\");\ndata R = [1, 2];\n\
             objective f(w: real[2]; r: real[2]) {{ minimize sumsq(w - r) + 0 * sum(X); }}\n\
             composite c() {{ for i in 0..{n} {{ f(w[i]; R); }} }}\n"
        ),
        "row_index" => format!(
            "data X = csv(\"rows{n}.csv\");\n{objective}\
             composite c() {{ for i in 0..{n} {{ f(w[i]; X[i]); }} }}\n"
        ),
        "family" => format!(
            "data X[t] = csv(\"rows{n}.csv\", rows = t..t + 1) for t in 0..{n};\n{objective}\
             composite c() {{ for i in 0..{n} {{ f(w[i]; X[i]); }} }}\n"
        ),
        _ => unreachable!("no such case"),
    }
}

fn check(dir: &Path, text: &str) -> usize {
    let options = CheckOptions {
        base_dir: dir.to_path_buf(),
        ..CheckOptions::default()
    };
    let outcome = check_source(SourceFile::new("bench.opt", text), &options);
    let program = outcome.program.expect("the benchmark file checks");
    program.data.len()
}

fn check_rows(c: &mut Criterion) {
    let dir = data_dir();
    let mut group = c.benchmark_group("check_rows");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for n in SIZES {
        for case in ["whole", "row_index", "family"] {
            let text = source(case, n);
            let items = check(&dir, &text);
            assert!(
                items >= if case == "whole" { 2 } else { n },
                "{case}: {items} items"
            );
            group.bench_with_input(BenchmarkId::new(case, n), &text, |b, text| {
                b.iter(|| black_box(check(&dir, text)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, check_rows);
criterion_main!(benches);
