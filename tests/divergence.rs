//! How a run that goes wrong is reported: non-finite at the start (not a step-size
//! problem), non-finite after a step, finite but blowing up, and the sum of finite boxes
//! overflowing. Each exits 3 with the step, the box to blame and a hint that fits.

mod cli_common;

use cli_common::{catopt, temp_dir};
use serde_json::Value;

fn run(text: &str, name: &str, args: &[&str]) -> (i32, Value, String) {
    let dir = temp_dir(name);
    let file = dir.join("p.opt");
    std::fs::write(&file, text).unwrap();
    let output = catopt()
        .arg("run")
        .arg(&file)
        .args(["--format", "json", "--backend", "serial"])
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (
        output.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const QUADRATIC: &str = "
objective q(x: real) { minimize 5 * x^2; }
objective r(x: real, y: real) { minimize (x - y)^2; }
composite c() { q(x); r(x, y); q(y); }
solve c { method = gd(lr = 0.01); steps = 100000; init x = 1; init y = -1; }
";

#[test]
fn a_finite_run_blowing_up_stops_with_the_box_that_grew_most() {
    // lr 0.2 on curvature 14: |1 - 0.2 * 14| = 1.8 per step, finite for hundreds of steps.
    let (code, json, stderr) = run(QUADRATIC, "blowup", &["--lr", "0.2"]);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(json["stop_reason"], "diverged");
    let diverged = &json["diverged"];
    assert_eq!(diverged["cause"], "blowing_up", "{json}");
    let step = diverged["step"].as_u64().unwrap();
    assert_eq!(json["steps"].as_u64().unwrap(), step);
    // Far earlier than the 4.7e230 the step budget used to reach.
    assert!(step < 100, "{step}");
    let objective = json["objective"].as_f64().unwrap();
    assert!(objective > 1e12 * 10.0 && objective < 1e30, "{objective}");
    assert!(diverged["box"].as_str().is_some(), "{json}");
    assert!(stderr.contains("blowing up"), "{stderr}");
    assert!(
        stderr.contains("smaller step size, e.g. --lr 0.1"),
        "{stderr}"
    );
}

#[test]
fn a_slowly_converging_run_is_not_called_a_blow_up() {
    let (code, json, stderr) = run(QUADRATIC, "fine", &["--steps", "3000"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(json.get("diverged").is_none());
}

#[test]
fn a_non_finite_start_is_not_called_a_step_size_problem() {
    let text = "
objective l(x: real) { minimize -log(x) + x; }
composite c() { l(x); }
solve c { method = gd(lr = 0.1); init x = 0; }
";
    let (code, json, stderr) = run(text, "start", &[]);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(json["diverged"]["cause"], "non_finite_at_start", "{json}");
    assert_eq!(json["diverged"]["step"], 0);
    assert_eq!(json["steps"], 0);
    assert!(stderr.contains("not a step-size problem"), "{stderr}");
    assert!(!stderr.contains("smaller step"), "{stderr}");
}

#[test]
fn a_step_into_the_non_finite_reports_the_last_finite_iterate() {
    let text = "
objective l(x: real) { minimize -log(x) + x; }
composite c() { l(x); }
solve c { method = gd(lr = 10); init x = 2; }
";
    // x = 2 - 10 * (1 - 1/2) = -3: log of a negative number at step 1.
    let (code, json, stderr) = run(text, "step", &[]);
    assert_eq!(code, 3, "{stderr}");
    let diverged = &json["diverged"];
    assert_eq!(diverged["cause"], "non_finite", "{json}");
    assert_eq!(diverged["step"], 1);
    assert_eq!(json["steps"], 0);
    assert_eq!(diverged["box"], "l");
    assert_eq!(json["values"]["x"], 2.0);
    let (_, text_out, _) = {
        let dir = temp_dir("step-text");
        let file = dir.join("p.opt");
        std::fs::write(&file, text).unwrap();
        let output = catopt().arg("run").arg(&file).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            (),
        )
    };
    assert!(
        text_out.contains("diverged at step 1: reporting the last finite iterate, step 0"),
        "{text_out}"
    );
    assert!(!text_out.contains("stopped after 0 steps"), "{text_out}");
}

#[test]
fn an_overflowing_sum_of_finite_boxes_is_named_as_such() {
    // Each box's value is about 1.6e308, finite; their sum is not.
    let text = "
objective big(x: real) { minimize 1e308 * (1 + x^2); }
composite c() { big(x); big(y); }
solve c { method = gd(lr = 1e-320); init x = 0.8; init y = 0.8; }
";
    let (code, json, stderr) = run(text, "overflow", &[]);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(json["diverged"]["cause"], "non_finite_at_start", "{json}");
    assert_eq!(json["diverged"]["box"], Value::Null);
    assert!(
        json["diverged"]["message"]
            .as_str()
            .unwrap()
            .contains("the sum of the boxes' objectives overflowed"),
        "{json}"
    );
}
