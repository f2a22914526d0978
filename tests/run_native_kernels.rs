//! `catopt run` with native box kernels (`CATOPT_KERNELS=native`) ends where the
//! interpreter ends, bit for bit, on every example and on W2; `catopt explain` says which
//! kernels run.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `catopt ARGS` with `CATOPT_KERNELS=kernels`: (exit code, stdout, stderr).
fn catopt(kernels: &str, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_catopt"))
        .args(args)
        .env("CATOPT_KERNELS", kernels)
        .current_dir(root())
        .output()
        .expect("catopt runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The run's results that the kernels decide: the objective, the gradient norm and every
/// value (numbers compared by their bits, as JSON prints them round-trip exact).
fn results(kernels: &str, file: &str, steps: &str) -> Value {
    let (code, stdout, stderr) = catopt(
        kernels,
        &[
            "run", file, "--steps", steps, "--all", "--format", "json", "--quiet",
        ],
    );
    assert_eq!(code, 0, "{file} with {kernels} kernels: {stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    serde_json::json!({
        "objective": json["objective"],
        "gradient_norm": json["gradient_norm"],
        "values": json["values"],
    })
}

#[test]
fn every_example_and_w2_end_where_the_interpreter_ends() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "opt"))
        .map(|path| format!("examples/{}", path.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files.push("bench/w2_1000.opt".into());
    let mut native_somewhere = 0;
    for file in &files {
        let interpreted = results("interpreted", file, "20");
        let native = results("native", file, "20");
        assert_eq!(interpreted, native, "{file}");
        let (code, explain, stderr) = catopt("native", &["explain", file]);
        assert_eq!(code, 0, "{stderr}");
        native_somewhere += explain.matches("; native (generated in").count();
    }
    // The chain's box type, and the hierarchical example's two.
    assert!(native_somewhere >= 3, "{native_somewhere} native box types");
}

#[test]
fn explain_names_native_kernels_only_when_asked_for() {
    let file = "examples/rosenbrock_chain.opt";
    let (_, interpreted, _) = catopt("interpreted", &["explain", file]);
    assert!(
        interpreted.contains("| batched, up to 512 boxes per call |"),
        "{interpreted}"
    );
    let (_, native, _) = catopt("native", &["explain", file]);
    assert!(
        native.contains("| batched, up to 512 boxes per call; native (generated in "),
        "{native}"
    );
}
