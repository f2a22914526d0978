//! Data read by rows is loaded once, at check: `catopt run` reads each csv file once (its
//! check) and never reopens it, so a file that changes or disappears after the check does
//! not change the run. (Read counts: `check::data_files_read`, per thread; `main_with_args`
//! checks on the calling thread.)

use catopt::check::{check_file_with, data_files_read, CheckOptions};
use catopt::cli::main_with_args;
use catopt::lower::lower;
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("catopt-rows-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const FILE: &str = "data X = csv(\"x.csv\");
data F[t] = csv(\"x.csv\", rows = t..t + 1) for t in 0..3;
objective near(w: real[2]; r: real[2]) { minimize sumsq(w - r); }
composite c() {
    for i in 0..3 { near(w[i]; X[i]); near2[i]: near(v[i]; F[i]); }
    first: near(u; X[0]);
}
solve c { method = gd(lr = 0.25); steps = 200; }
";

#[test]
fn run_reads_each_data_file_once() {
    let dir = dir("run");
    std::fs::write(dir.join("x.csv"), "1,2\n3,4\n5,6\n").unwrap();
    let file = dir.join("p.opt");
    std::fs::write(&file, FILE).unwrap();
    let out = dir.join("out.json");
    let before = data_files_read();
    let code = main_with_args([
        "catopt".into(),
        "run".into(),
        file.clone().into_os_string(),
        "--output".into(),
        out.clone().into_os_string(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        data_files_read() - before,
        1,
        "x.csv is read once, by the check"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    // w[i] and v[i] converge to row i of x.csv, u to row 0.
    let rows = serde_json::json!([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
    assert_eq!(json["values"]["w"], rows);
    assert_eq!(json["values"]["v"], rows);
    assert_eq!(json["values"]["u"], serde_json::json!([1.0, 2.0]));
}

#[test]
fn a_file_changed_after_the_check_is_not_read_again() {
    let dir = dir("changed");
    std::fs::write(dir.join("x.csv"), "1,2\n3,4\n5,6\n").unwrap();
    let file = dir.join("p.opt");
    std::fs::write(&file, FILE).unwrap();
    let options = CheckOptions {
        base_dir: dir.clone(),
        ..CheckOptions::default()
    };
    let program = check_file_with(&file, &options).program.expect("checks");
    // Changed, then gone: lowering (and so the run) uses what the check loaded.
    std::fs::write(dir.join("x.csv"), "9,9\n9,9\n9,9\n").unwrap();
    std::fs::remove_file(dir.join("x.csv")).unwrap();
    let before = data_files_read();
    let problem = lower(&program, catopt::check::program::CompositeId(0), None).expect("lowers");
    assert_eq!(data_files_read(), before);
    assert_eq!(problem.diagram.box_count(), 7);
    let rows: Vec<&[f64]> = program.data.iter().map(|d| &*d.value.values).collect();
    assert_eq!(rows[0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert!(rows[1..].iter().all(|r| r.iter().all(|&v| v < 9.0)));
}
