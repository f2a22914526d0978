//! The checker's memory estimate against the peak memory of real runs: every example and
//! W2 at N = 1e6 stay within 1.5x of the estimate (issue 12). Linux only (VmHWM).

use std::path::Path;
use std::process::Command;

/// `(estimate, peak)` in bytes from `catopt run FILE --format json --steps 3`.
fn estimate_and_peak(file: &Path) -> (f64, f64) {
    let output = Command::new(env!("CARGO_BIN_EXE_catopt"))
        .args(["run", "--format", "json", "--steps", "3"])
        .arg(file)
        .output()
        .expect("catopt runs");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\n{}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let number = |key: &str| {
        json[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} in {json}"))
    };
    (number("memory_estimate_bytes"), number("peak_memory_bytes"))
}

#[test]
#[cfg(target_os = "linux")]
fn peak_memory_stays_within_one_and_a_half_times_the_estimate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("examples"))
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "opt"))
        .collect();
    files.sort();
    files.push(root.join("bench/w1.opt"));
    files.push(root.join("bench/w2_1000000.opt"));
    let mut report = String::new();
    for file in &files {
        let (estimate, peak) = estimate_and_peak(file);
        report.push_str(&format!(
            "{}: estimate {:.1} MB, peak {:.1} MB, peak / estimate {:.2}\n",
            file.display(),
            estimate / 1e6,
            peak / 1e6,
            peak / estimate
        ));
        assert!(peak <= 1.5 * estimate, "{report}");
    }
    println!("{report}");
}

/// A method's own state counts: `lbfgs(memory = 1000)` keeps 2000 vectors, so on a million
/// variables it is refused before anything is allocated, in the solve block (E0601) and
/// from `--method`.
#[test]
fn a_methods_state_is_part_of_the_estimate() {
    let dir = std::env::temp_dir().join(format!("catopt-method-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.opt");
    let text = "objective q(a: real[1000000]) { minimize sumsq(a); }\n\
                composite c() { q(x); }\n\
                solve c { method = METHOD; steps = 1; }\n";
    std::fs::write(&file, text.replace("METHOD", "lbfgs(memory = 1000)")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_catopt"))
        .arg("check")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("E0601") && stderr.contains("method state"),
        "{stderr}"
    );
    std::fs::write(&file, text.replace("METHOD", "gd(lr = 0.1)")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_catopt"))
        .args(["run", "--method", "lbfgs(memory = 1000)"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("would need about 15.0 GiB"), "{stderr}");
    // Momentum's velocity shows in the reported estimate: 3 copies of 8 bytes per variable.
    let estimate = |method: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_catopt"))
            .args([
                "run", "--format", "json", "--steps", "0", "--method", method,
            ])
            .arg(&file)
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        json["memory_estimate_bytes"].as_f64().unwrap()
    };
    assert_eq!(
        estimate("momentum(lr = 0.1)") - estimate("gd(lr = 0.1)"),
        24.0 * 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Boxes whose data differ only in values are one box type with per-box data: the
/// estimate counts one type and each box's data vector (not a type per box), and stays an
/// upper bound within 1.5x, here no more than 1 / 0.6 of the peak: a data family of rows,
/// rows `X[i]` of one matrix, and one row `X[0]` for every box (no per-box data at all).
#[test]
#[cfg(target_os = "linux")]
fn per_box_data_is_estimated_as_one_box_type_and_its_data_vectors() {
    let dir = std::env::temp_dir().join(format!("catopt-per-box-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (n, d) = (100_000, 16);
    let rows: String = (0..n)
        .map(|r| {
            let cells: Vec<String> = (0..d).map(|c| ((r * 7 + c) % 13).to_string()).collect();
            cells.join(",") + "\n"
        })
        .collect();
    std::fs::write(dir.join("m.csv"), rows).unwrap();
    let objective = format!("objective f(w: real; r: real[{d}]) {{ minimize (w - sum(r))^2; }}\n");
    let cases = [
        (
            "family",
            format!("data F[t] = csv(\"m.csv\", rows = t..t + 1) for t in 0..{n};\n"),
            "F[i]",
        ),
        ("rows", "data X = csv(\"m.csv\");\n".to_string(), "X[i]"),
        ("one_row", "data X = csv(\"m.csv\");\n".to_string(), "X[0]"),
    ];
    let mut report = String::new();
    for (name, data, arg) in cases {
        let file = dir.join(format!("{name}.opt"));
        let text = format!(
            "{data}{objective}composite c() {{ for i in 0..{n} {{ f(w[i]; {arg}); }} }}\n\
             solve c {{ method = gd(lr = 0.01); }}\n"
        );
        std::fs::write(&file, text).unwrap();
        let (estimate, peak) = estimate_and_peak(&file);
        report.push_str(&format!(
            "{name}: estimate {:.1} MB, peak {:.1} MB, peak / estimate {:.2}\n",
            estimate / 1e6,
            peak / 1e6,
            peak / estimate
        ));
        assert!(peak <= 1.5 * estimate && peak >= 0.6 * estimate, "{report}");
    }
    println!("{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
