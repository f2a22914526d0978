//! End-to-end tests of `catopt graph`, `catopt explain` and `catopt run --plot` on every
//! example, on a million-box composite, and on bad input.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod cli_common;
use cli_common::{catopt, root, temp_dir};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "opt"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    files
}

/// The run report of an example (`--steps 0`: only the sizes matter).
fn sizes(file: &Path) -> (u64, u64) {
    let output = catopt()
        .args([
            "run",
            file.to_str().unwrap(),
            "--steps",
            "0",
            "--format",
            "json",
            "--quiet",
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        json["boxes"].as_u64().unwrap(),
        json["variables"].as_u64().unwrap(),
    )
}

fn graphviz_present() -> bool {
    Command::new("dot").arg("-V").output().is_ok()
}

#[test]
fn every_example_is_drawn_as_dot_with_one_node_per_box_and_one_wire_per_port() {
    for file in examples() {
        let output = catopt()
            .args(["graph", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let dot = text(&output.stdout);
        assert!(dot.starts_with("graph \""), "{dot}");
        assert!(
            dot.contains("subgraph \"cluster_root\""),
            "{}",
            file.display()
        );
        let (boxes, _) = sizes(&file);
        let box_nodes = dot.matches("[shape=plain, label=<").count() as u64;
        assert_eq!(box_nodes, boxes, "{}", file.display());
        // Every wire ends at a junction dot.
        let wires = dot.lines().filter(|l| l.contains(" -- j")).count();
        assert!(wires as u64 >= boxes, "{}", file.display());
        assert_eq!(dot.matches('{').count(), dot.matches('}').count());
    }
}

#[test]
fn outer_ports_sit_on_the_frame_and_nested_composites_are_clusters() {
    let output = catopt()
        .args(["graph", "examples/three_quadratics.opt"])
        .output()
        .unwrap();
    let dot = text(&output.stdout);
    for (o, name) in ["x", "y", "z"].iter().enumerate() {
        assert!(
            dot.contains(&format!("xlabel=\"outer port {o}: {name}\"")),
            "{dot}"
        );
        assert_eq!(dot.matches(&format!("-- o{o} ")).count(), 1, "{dot}");
    }
    assert!(dot.contains("label=\"composite three(x, y, z)\""), "{dot}");
    // The three boxes share u: three wires end at u's dot.
    let u = dot
        .lines()
        .find(|l| l.contains("xlabel=\"u\""))
        .and_then(|l| l.trim().split(' ').next())
        .unwrap()
        .to_string();
    assert_eq!(dot.matches(&format!(" -- {u};")).count(), 3, "{dot}");

    let output = catopt()
        .args(["graph", "examples/hierarchical.opt"])
        .output()
        .unwrap();
    let dot = text(&output.stdout);
    let rope = dot.find("subgraph \"cluster_rope\"").expect("rope cluster");
    let first = dot
        .find("subgraph \"cluster_rope.first\"")
        .expect("nested cluster");
    assert!(rope < first);
    assert!(dot.contains("label=\"first : segment\""), "{dot}");
}

#[test]
fn every_example_is_drawn_as_svg_when_graphviz_is_installed() {
    if !graphviz_present() {
        println!("notice: Graphviz `dot` is not on PATH; skipping the SVG test (apt-get install graphviz)");
        return;
    }
    let dir = temp_dir("svg");
    for file in examples() {
        let name = file.file_stem().unwrap().to_str().unwrap().to_string();
        let svg = dir.join(format!("{name}.svg"));
        let started = Instant::now();
        let output = catopt()
            .args(["graph", file.to_str().unwrap(), "-o", svg.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}: {}",
            text(&output.stderr)
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name} took too long"
        );
        let contents = std::fs::read_to_string(&svg).unwrap();
        assert!(contents.contains("<svg"), "{name}");
        assert!(contents.contains("</svg>"), "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn svg_without_graphviz_names_the_package_to_install() {
    let empty = temp_dir("nopath");
    let output = catopt()
        .args(["graph", "examples/first.opt", "--format", "svg"])
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("graphviz"), "{stderr}");
    assert!(stderr.contains("apt-get install graphviz"), "{stderr}");
    assert!(stderr.contains("--format dot"), "{stderr}");
    assert!(output.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&empty);
}

const MILLION: &str = "# a million boxes
objective rosen(a: real, b: real) { minimize 100 * (b - a^2)^2 + (1 - a)^2; }
composite chain() { for i in 0..1000000 { rosen(x[i], x[i + 1]); } }
";

#[test]
fn a_million_box_diagram_is_refused_by_graph_and_summarised_by_explain() {
    let dir = temp_dir("million");
    let file = dir.join("million.opt");
    std::fs::write(&file, MILLION).unwrap();
    let started = Instant::now();
    let output = catopt()
        .args(["graph", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("1000000 boxes"), "{stderr}");
    assert!(stderr.contains("--max-boxes"), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(started.elapsed() < Duration::from_secs(30));

    let started = Instant::now();
    let output = catopt()
        .args(["explain", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(started.elapsed() < Duration::from_secs(30));
    let explanation = text(&output.stdout);
    assert!(explanation.lines().count() < 150, "{explanation}");
    assert!(
        explanation.contains("| rosen (type 0) | 1000000 |"),
        "{explanation}"
    );
    assert!(
        explanation.contains("| 2 | 999999 | 999999 |"),
        "{explanation}"
    );
    assert!(
        explanation.contains("999961 more variables"),
        "{explanation}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_example_is_explained() {
    for file in examples() {
        let output = catopt()
            .args(["explain", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let explanation = text(&output.stdout);
        let (_, variables) = sizes(&file);
        assert!(
            explanation.contains(&format!("one vector z of {variables} numbers")),
            "{}: {explanation}",
            file.display()
        );
        for section in [
            "## State space (the pushout)",
            "## Boxes: gather and scatter",
            "## Kernels per step",
            "## Communication per step",
            "## The discrete system",
        ] {
            assert!(
                explanation.contains(section),
                "{}: {section}",
                file.display()
            );
        }
        assert!(explanation.lines().count() < 200, "{}", file.display());
    }
}

#[test]
fn explain_names_the_ports_the_pushout_identified() {
    let output = catopt()
        .args(["explain", "examples/three_quadratics.opt"])
        .output()
        .unwrap();
    let explanation = text(&output.stdout);
    assert!(
        explanation.contains("| u | real | 0 | f.u, g.u, h.u |"),
        "{explanation}"
    );
    assert!(
        explanation.contains("| x | real | 2 | f.x, outer port 0 |"),
        "{explanation}"
    );
    assert!(
        explanation.contains("<- u - 0.1 * (d f/d u + d g/d u + d h/d u)"),
        "{explanation}"
    );
    let output = catopt()
        .args(["explain", "examples/multitask_digits.opt"])
        .output()
        .unwrap();
    let explanation = text(&output.stdout);
    assert!(
        explanation.contains("vel(k+1) = 0.9 * vel(k) + sum_b phi_b^T grad f_b(phi_b z(k))"),
        "{explanation}"
    );
    assert!(
        explanation.contains("| W | real[64, 16] | 0..1024 | task[0].W, task[1].W"),
        "{explanation}"
    );
    assert!(
        explanation.contains(
            "(d task[0]/d W + d task[1]/d W + d task[2]/d W + ... + d task[9]/d W; 10 terms)"
        ),
        "{explanation}"
    );
}

#[test]
fn bad_input_gets_a_message_and_exit_code_2() {
    for command in ["graph", "explain"] {
        let output = catopt()
            .args([command, "examples/first.opt", "--composite", "nope"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains("no composite named `nope`"), "{stderr}");
        assert!(stderr.contains("total"), "{stderr}");
        let output = catopt()
            .args([command, "examples/no_such_file.opt"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert!(!text(&output.stderr).contains("panicked"));
    }
}

#[test]
fn plot_writes_svg_and_png_titled_with_the_file_and_method() {
    let dir = temp_dir("plot");
    let svg = dir.join("first.svg");
    let png = dir.join("first.png");
    for path in [&svg, &png] {
        let output = catopt()
            .args([
                "run",
                "examples/first.opt",
                "--quiet",
                "--plot",
                path.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    }
    let contents = std::fs::read_to_string(&svg).unwrap();
    assert!(
        contents.contains("examples/first.opt: gd(lr = 0.1)"),
        "title"
    );
    assert!(contents.contains("gradient norm (log scale)"));
    assert!(contents.contains("objective (log scale)"));
    assert!(contents.matches("<polyline").count() >= 2, "two curves");
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(bytes.len() > 10_000, "{} bytes", bytes.len());

    // A negative objective is drawn as its gap to the lowest value.
    let output = catopt()
        .args([
            "run",
            "examples/three_quadratics.opt",
            "--quiet",
            "--plot",
            svg.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let contents = std::fs::read_to_string(&svg).unwrap();
    assert!(
        contents.contains("objective - (-1.171598e0) (log scale)"),
        "gap axis"
    );

    // A bad extension is refused before the run.
    let output = catopt()
        .args(["run", "examples/first.opt", "--quiet", "--plot", "out.pdf"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains(".svg or .png"));
    assert!(output.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `catopt graph examples/first.opt ARGS`.
fn graph(args: &[&str], path: &std::ffi::OsStr) -> std::process::Output {
    catopt()
        .args(["graph", "examples/first.opt"])
        .args(args)
        .env("PATH", path)
        .output()
        .unwrap()
}

#[test]
fn the_output_extension_chooses_the_format() {
    let dir = temp_dir("graph-formats");
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["p.dot", "p.gv", "P.DOT"] {
        let file = dir.join(name);
        let output = graph(&["-o", file.to_str().unwrap()], &path);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let contents = std::fs::read_to_string(&file).unwrap();
        assert!(
            contents.starts_with("graph \"total\" {"),
            "{name}: {contents}"
        );
    }
    if graphviz_present() {
        let magic: [(&str, &[u8]); 3] = [
            ("p1.png", b"\x89PNG\r\n\x1a\n"),
            ("p1.pdf", b"%PDF-"),
            ("p1.svg", b""),
        ];
        for (name, start) in magic {
            let file = dir.join(name);
            let output = graph(&["-o", file.to_str().unwrap()], &path);
            assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                bytes.starts_with(start),
                "{name} starts with {:?}",
                &bytes[..8]
            );
            assert!(!bytes.starts_with(b"graph "), "{name} holds DOT text");
        }
        assert!(text(&std::fs::read(dir.join("p1.svg")).unwrap()).contains("<svg"));
    } else {
        println!("notice: Graphviz `dot` is not on PATH; skipping the PNG/PDF/SVG checks (apt-get install graphviz)");
    }
    // An unknown extension is refused with the list of formats; nothing is written.
    let output = graph(&["-o", dir.join("p.jpg").to_str().unwrap()], &path);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("unknown extension `.jpg`"), "{stderr}");
    assert!(
        stderr.contains(".dot or .gv (DOT text), .svg, .png and .pdf"),
        "{stderr}"
    );
    assert!(!dir.join("p.jpg").exists());
    // DOT text is never written into a file named .png.
    let png = dir.join("q.png");
    let output = graph(&["-o", png.to_str().unwrap(), "--format", "dot"], &path);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("names a .png file, but --format is dot"));
    assert!(!png.exists());
    // --format names the format of a file without a known extension.
    let txt = dir.join("p.txt");
    let output = graph(&["-o", txt.to_str().unwrap(), "--format", "dot"], &path);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    // Without Graphviz: exit 4, the package to install, and the DOT alternative.
    let empty = temp_dir("graph-formats-nopath");
    let output = graph(&["-o", png.to_str().unwrap()], empty.as_os_str());
    assert_eq!(output.status.code(), Some(4));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("PNG output needs it"), "{stderr}");
    assert!(stderr.contains("apt-get install graphviz"), "{stderr}");
    assert!(stderr.contains("-o FILE.dot"), "{stderr}");
    assert!(!png.exists());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}
