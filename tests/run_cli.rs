//! End-to-end tests of `catopt run`: golden runs of the examples, backend equality,
//! checkpoint/resume, divergence and the output files.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn catopt() -> Command {
    Command::new(env!("CARGO_BIN_EXE_catopt"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("catopt-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs catopt with JSON output; returns (exit code, parsed stdout, stderr).
fn run_json(args: &[&str]) -> (i32, Value, String) {
    let output = catopt()
        .arg("run")
        .args(args)
        .args(["--format", "json", "--quiet"])
        .current_dir(root())
        .output()
        .expect("catopt runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    (output.status.code().unwrap_or(-1), json, stderr)
}

fn number(value: &Value, path: &[&str]) -> f64 {
    let mut v = value;
    for key in path {
        v = &v[*key];
    }
    v.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {value}"))
}

#[test]
fn first_example_reaches_the_known_minimiser() {
    let (code, json, stderr) = run_json(&["examples/first.opt", "--all"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["composite"], "total");
    assert_eq!(json["steps"], 200);
    assert_eq!(json["stop_reason"], "max_steps");
    assert!((number(&json, &["objective"]) - 2.0).abs() < 1e-9, "{json}");
    assert!((number(&json, &["values", "b"]) - 3.0).abs() < 1e-9);
    assert!((number(&json, &["values", "f1.a"]) - 1.0).abs() < 1e-9);
    assert!((number(&json, &["values", "f2.c"]) + 1.0).abs() < 1e-9);
}

#[test]
fn one_step_of_the_first_example_matches_the_hand_computation() {
    // From 0 with lr 0.1: a = 0.2, b = 1.2 (both boxes' increments 0.4 + 0.8), c = -0.2.
    let (code, json, stderr) = run_json(&["examples/first.opt", "--all", "--steps", "1"]);
    assert_eq!(code, 0, "{stderr}");
    let values = &json["values"];
    assert!((values["f1.a"].as_f64().unwrap() - 0.2).abs() < 1e-15);
    assert!((values["b"].as_f64().unwrap() - 1.2).abs() < 1e-15);
    assert!((values["f2.c"].as_f64().unwrap() + 0.2).abs() < 1e-15);
}

#[test]
fn three_quadratics_converge_to_the_reference_minimiser() {
    let (code, json, stderr) = run_json(&["examples/three_quadratics.opt"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["stop_reason"], "gradient_tolerance");
    assert_eq!(json["variables"], 9);
    let expected = [
        ("u", 0.637071),
        ("w", -0.246168),
        ("x", -1.194938),
        ("y", -0.252899),
        ("z", -0.150220),
    ];
    for (name, value) in expected {
        let got = number(&json, &["values", name]);
        assert!((got - value).abs() < 1e-6, "{name}: {got} vs {value}");
    }
    assert!((number(&json, &["objective"]) + 1.171598).abs() < 1e-6);
}

#[test]
fn three_quadratics_diverge_with_lr_0_2_and_exit_3() {
    let (code, json, stderr) = run_json(&["examples/three_quadratics.opt", "--lr", "0.2"]);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(json["stop_reason"], "diverged");
    assert!(json["objective"].as_f64().unwrap().is_finite());
    assert!(stderr.contains("diverged at step"), "{stderr}");
    assert!(stderr.contains("smaller step size"), "{stderr}");
    // The reported values are finite numbers, never NaN.
    for (_, v) in json["values"].as_object().unwrap() {
        assert!(v.as_f64().unwrap().is_finite());
    }
}

#[test]
fn serial_and_threads_give_the_same_bits() {
    for file in [
        "examples/rosenbrock_chain.opt",
        "examples/three_quadratics.opt",
        "bench/w1.opt",
    ] {
        let steps = if file.contains("w1") { "5" } else { "50" };
        let (_, serial, _) = run_json(&[file, "--backend", "serial", "--all", "--steps", steps]);
        for threads in ["1", "2", "3"] {
            let (_, threaded, _) = run_json(&[
                file,
                "--backend",
                "threads",
                "--threads",
                threads,
                "--all",
                "--steps",
                steps,
            ]);
            assert_eq!(
                serial["values"], threaded["values"],
                "{file} with {threads} threads"
            );
            assert_eq!(serial["objective"], threaded["objective"], "{file}");
        }
    }
}

#[test]
fn a_resumed_run_ends_with_the_same_bits() {
    let dir = temp_dir("resume");
    let checkpoint = dir.join("state.ckpt");
    let file = "examples/rosenbrock_chain.opt";
    let (_, full, _) = run_json(&[
        file, "--steps", "60", "--method", "momentum", "--beta", "0.5",
    ]);
    let checkpoint_arg = checkpoint.to_str().unwrap();
    let (code, _, stderr) = run_json(&[
        file,
        "--steps",
        "40",
        "--method",
        "momentum",
        "--beta",
        "0.5",
        "--checkpoint",
        checkpoint_arg,
        "--checkpoint-every",
        "20",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (code, resumed, stderr) = run_json(&[
        file,
        "--steps",
        "60",
        "--method",
        "momentum",
        "--beta",
        "0.5",
        "--resume",
        checkpoint_arg,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(resumed["steps"], 60);
    assert_eq!(full["values"], resumed["values"]);
    assert_eq!(full["objective"], resumed["objective"]);
}

#[test]
fn output_and_init_files_round_trip() {
    let dir = temp_dir("output");
    let out = dir.join("values.json");
    let out_arg = out.to_str().unwrap();
    let (code, first, _) = run_json(&[
        "examples/first.opt",
        "--steps",
        "3",
        "--all",
        "--output",
        out_arg,
    ]);
    assert_eq!(code, 0);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(saved["values"], first["values"]);
    // Starting from the saved values with 0 steps reports exactly them.
    let (code, again, stderr) = run_json(&[
        "examples/first.opt",
        "--steps",
        "0",
        "--all",
        "--init",
        out_arg,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(again["values"], first["values"]);
}

#[test]
fn trace_has_one_row_per_iterate() {
    let dir = temp_dir("trace");
    let trace = dir.join("trace.csv");
    let (code, _, _) = run_json(&[
        "examples/first.opt",
        "--steps",
        "10",
        "--trace",
        trace.to_str().unwrap(),
        "--trace-boxes",
    ]);
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "step,objective,gradient_norm,step_size,evaluations,f1,f2"
    );
    assert_eq!(lines.len(), 1 + 11, "{text}");
    let last: Vec<f64> = lines[11].split(',').map(|f| f.parse().unwrap()).collect();
    assert_eq!(last[0], 10.0);
    assert!(
        (last[1] - (last[5] + last[6])).abs() < 1e-12,
        "objective = sum of box objectives"
    );
}

#[test]
fn bad_arguments_are_reported_with_exit_code_2() {
    let output = catopt()
        .args(["run", "examples/first.opt", "--method", "adamw"])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown method `adamw`; did you mean `adam`?"),
        "{stderr}"
    );
    let output = catopt()
        .args(["run", "examples/no-such-file.opt"])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
}

#[test]
fn w1_initial_objective_matches_the_jax_reference() {
    let (code, json, stderr) = run_json(&["bench/w1.opt", "--steps", "0"]);
    assert_eq!(code, 0, "{stderr}");
    let objective = number(&json, &["objective"]);
    assert!(
        ((objective - 24.5684599004) / 24.5684599004).abs() < 1e-10,
        "{objective}"
    );
}

#[test]
fn examples_exist() {
    for name in ["first", "three_quadratics", "rosenbrock_chain"] {
        assert!(Path::new(&root().join(format!("examples/{name}.opt"))).exists());
    }
}

#[test]
fn w1_final_objective_matches_the_jax_reference() {
    let (code, json, stderr) = run_json(&["bench/w1.opt"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["steps"], 200);
    let objective = number(&json, &["objective"]);
    let reference = 0.87081278483;
    assert!(
        ((objective - reference) / reference).abs() < 1e-9,
        "{objective}"
    );
}

#[test]
fn w2_chain_of_1000_matches_the_jax_reference() {
    let (code, json, stderr) = run_json(&["examples/rosenbrock_chain.opt"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["steps"], 100);
    let objective = number(&json, &["objective"]);
    let reference = 1117.62417503;
    assert!(
        ((objective - reference) / reference).abs() < 1e-9,
        "{objective}"
    );
    assert_eq!(json["values"]["x"].as_array().unwrap().len(), 1001);
}

#[test]
fn ctrl_c_stops_cleanly_with_the_results_so_far() {
    let dir = temp_dir("interrupt");
    let checkpoint = dir.join("state.ckpt");
    let child = catopt()
        .args([
            "run",
            "bench/w2_100000.opt",
            "--steps",
            "100000000",
            "--format",
            "json",
            "--quiet",
        ])
        .args([
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--checkpoint-every",
            "1000000000",
            "--trace",
            dir.join("t.csv").to_str().unwrap(),
        ])
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["stop_reason"], "interrupted");
    assert!(json["steps"].as_u64().unwrap() > 0);
    assert!(json["objective"].as_f64().unwrap().is_finite());
    assert!(stderr.contains("interrupted at step"), "{stderr}");
    // The state at the interruption was checkpointed, the trace put in place, and no
    // temporary file is left.
    assert!(checkpoint.exists());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["state.ckpt", "t.csv"]);
}

#[test]
fn a_reader_that_closes_the_pipe_early_does_not_make_catopt_panic() {
    // `catopt run ... | head -1`: stdout's reader is gone before catopt writes.
    for args in [
        vec!["run", "examples/first.opt", "--format", "json", "--quiet"],
        vec!["explain", "examples/first.opt"],
        vec!["laws", "examples/first.opt", "--cases", "2", "--steps", "2"],
    ] {
        let mut child = catopt()
            .args(&args)
            .current_dir(root())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // close the read end at once
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(output.status.code(), Some(101), "{args:?}");
    }
}
