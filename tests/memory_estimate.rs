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
