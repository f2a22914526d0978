//! The hand-written W1 and W2 implementations as a command, for `bench/compare.sh`: prints
//! the final objective and the median seconds per step in the format of the JAX references
//! (`bench/reference/w1_jax.py`, `w2_jax.py`).
//!
//! ```text
//! handwritten w1 DATA_DIR [STEPS REPS]   (default 200 steps, 5 repetitions)
//! handwritten w2 N [STEPS REPS]          (default 100 steps, 5 repetitions)
//! handwritten                            (both, with the reference checks; `cargo bench`)
//! ```

mod common;

use common::chain::ChainBaseline;
use common::multitask::MultitaskBaseline;
use common::*;
use std::path::Path;

fn numbers(args: &[String], defaults: (usize, usize)) -> (usize, usize) {
    let parse = |i: usize, default: usize| {
        args.get(i).map_or(default, |a| {
            a.parse()
                .unwrap_or_else(|_| panic!("`{a}` is not a count of steps or repetitions"))
        })
    };
    (parse(0, defaults.0), parse(1, defaults.1))
}

fn w1(data_dir: &Path, steps: usize, repetitions: usize) -> f64 {
    let mut solver = MultitaskBaseline::load(data_dir);
    let initial = solver.objective_and_gradient();
    let seconds = median_seconds_per_step(
        &mut solver,
        repetitions,
        steps,
        |s| s.restart(),
        |s| {
            s.step();
        },
    );
    let fin = solver.objective_and_gradient();
    println!("initial objective {initial:.12}");
    println!("final objective {fin:.12}");
    println!("seconds per step (median of {repetitions}) {seconds:.6e}");
    fin
}

fn w2(boxes: usize, steps: usize, repetitions: usize) -> f64 {
    let mut solver = ChainBaseline::new(boxes);
    let seconds = median_seconds_per_step(
        &mut solver,
        repetitions,
        steps,
        |s| s.restart(),
        |s| {
            s.step();
        },
    );
    let fin = solver.objective();
    println!("final objective {fin:.12}");
    println!("seconds per step (median of {repetitions}) {seconds:.6e}");
    fin
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args.first().map(String::as_str) {
        Some("w1") => {
            let dir = args
                .get(1)
                .expect("usage: handwritten w1 DATA_DIR [STEPS REPS]");
            let (steps, reps) = numbers(&args[2..], (W1_STEPS, 5));
            w1(Path::new(dir), steps, reps);
        }
        Some("w2") => {
            let boxes = args
                .get(1)
                .and_then(|n| n.parse().ok())
                .expect("usage: handwritten w2 N [STEPS REPS]");
            let (steps, reps) = numbers(&args[2..], (W2_STEPS, 5));
            w2(boxes, steps, reps);
        }
        None => {
            // `cargo bench`: every workload, checked against the JAX references.
            println!("W1 (hand-written, nalgebra)");
            let fin = w1(&repo_path("bench/data"), W1_STEPS, 5);
            check_close("hand-written W1", fin, W1_FINAL_OBJECTIVE);
            for boxes in [1_000, 100_000, 1_000_000] {
                println!("W2 N = {boxes} (hand-written stencil)");
                let fin = w2(boxes, W2_STEPS, 5);
                check_close("hand-written W2", fin, w2_final_objective(boxes));
            }
        }
        Some(other) => {
            eprintln!(
                "unknown workload `{other}`; usage: handwritten (w1 DATA_DIR | w2 N) [STEPS REPS]"
            );
            std::process::exit(2);
        }
    }
}
