//! Constraints and penalties, saddle problems (docs/language.md): the front end accepts
//! them, v0 files that use the new words as names keep their meaning bit for bit, and every
//! command that lowers a composite refuses them with E0815 until the run side runs them.

use catopt::lower::lower_text;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `text` with every identifier in `renames` replaced, comments left as they are.
fn rename(text: &str, renames: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let (code, comment) = line.split_at(line.find('#').unwrap_or(line.len()));
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            let renamed = renames.iter().find(|(from, _)| *from == word.as_str());
            out.push_str(renamed.map_or(word.as_str(), |(_, to)| to));
            word.clear();
        };
        for c in code.chars() {
            if c.is_ascii_alphanumeric() || c == '_' {
                word.push(c);
            } else {
                flush(&mut word, &mut out);
                out.push(c);
            }
        }
        flush(&mut word, &mut out);
        out.push_str(comment);
        out.push('\n');
    }
    out
}

/// `catopt run FILE --format json`: the parsed output (exit 0 asserted).
fn run_json(file: &Path) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_catopt"))
        .args(["run", "--format", "json", "--quiet", "--threads", "1"])
        .arg(file)
        .output()
        .expect("catopt runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

const WORDS: [(&str, &str); 4] = [
    ("penalty", "weight"),
    ("subject", "gap"),
    ("to", "target"),
    ("dual", "obs"),
];

#[test]
fn v0_names_that_v1_uses_as_words_run_as_before() {
    let path = root().join("tests/check/lang_contextual_words.opt");
    let text = std::fs::read_to_string(&path).expect("the golden file");
    let renamed = rename(&text, &WORDS);
    assert_ne!(text, renamed, "the file uses the words as names");
    let names = |text: &str| -> Vec<String> {
        let mut words = Vec::new();
        for line in text.lines() {
            let code = &line[..line.find('#').unwrap_or(line.len())];
            words.extend(
                code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map(str::to_string),
            );
        }
        words
    };
    for (word, _) in WORDS {
        assert!(names(&text).iter().any(|w| w == word), "`{word}` is used");
        assert!(
            !names(&renamed).iter().any(|w| w == word),
            "`{word}` is left"
        );
    }
    let dir = std::env::temp_dir().join(format!("catopt-words-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let renamed_path = dir.join("renamed.opt");
    std::fs::write(&renamed_path, &renamed).unwrap();
    let with_words = run_json(&path);
    let without = run_json(&renamed_path);
    let _ = std::fs::remove_dir_all(&dir);
    let bits = |v: &Value| v.as_f64().expect("a number").to_bits();
    assert_eq!(bits(&with_words["objective"]), bits(&without["objective"]));
    assert_eq!(
        bits(&with_words["gradient_norm"]),
        bits(&without["gradient_norm"])
    );
    let values = with_words["values"].as_object().expect("values");
    assert!(!values.is_empty());
    for (name, value) in values {
        let renamed_name = WORDS
            .iter()
            .find(|(from, _)| from == name)
            .map_or(name.as_str(), |(_, to)| to);
        assert_eq!(
            value.to_string(),
            without["values"][renamed_name].to_string(),
            "variable `{name}`"
        );
    }
}

/// A small composite around one objective body and header.
fn with_objective(ports: &str, body: &str, junctions: &str) -> String {
    format!(
        "data A = [1, 1];\nobjective f({ports}) {{ {body} }}\ncomposite c() {{ f({junctions}); }}\n"
    )
}

#[test]
fn each_constraint_feature_alone_is_refused_by_lowering_and_plain_gd_is_not() {
    let cases = [
        (
            "a domain on a port",
            with_objective("x: real[2] in nonneg", "minimize sumsq(x);", "x"),
            "the domain `nonneg` of `x` in `f`",
        ),
        (
            "a domain on a var",
            with_objective("x: real", "var p: real[2] in box(-1, 1); minimize x^2 + sum(p);", "x"),
            "the domain `box(-1, 1)` of `p` in `f`",
        ),
        (
            "a penalty",
            with_objective("x: real[2]", "penalty l1(x, 0.1); minimize sumsq(x);", "x"),
            "a `penalty l1` in `f`",
        ),
        (
            "a constraint",
            with_objective("x: real[2]", "subject to A @ x == 1; minimize sumsq(x);", "x"),
            "a `subject to` constraint in `f`",
        ),
        (
            "a dual port",
            with_objective("u: dual real", "minimize u;", "u"),
            "the dual variable `u` of `f`",
        ),
        (
            "a declared junction domain",
            "objective f(x: real) { minimize x^2; }\ncomposite c() where (y: real in box(0, 1)) { f(y); }\n".to_string(),
            "the domain `box(0, 1)` of junction `y`",
        ),
        (
            "a feature two composites down",
            "objective f(x: real in nonneg) { minimize x^2; }\ncomposite inner(x) { f(x); }\n\
             objective g(z: real) { minimize z^2; }\ncomposite outer() { g(z); inner(z); }\n"
                .to_string(),
            "the domain `nonneg` of `x` in `f`",
        ),
    ];
    for (what, text, named) in cases {
        let error = match lower_text(&text, None) {
            Ok(_) => panic!("{what}: lowered, but should be refused"),
            Err(error) => error,
        };
        assert!(error.contains("error[E0815]"), "{what}: {error}");
        assert!(error.contains(named), "{what}: `{named}` not in {error}");
        assert!(error.contains("not run yet"), "{what}: {error}");
    }
    // A composite that does not reach the constrained objective lowers.
    let text = "objective f(x: real in nonneg) { minimize x^2; }\ncomposite uses_f() { f(x); }\n\
                objective g(z: real) { minimize z^2; }\ncomposite plain() { g(z); }\n";
    assert!(lower_text(text, Some("plain")).is_ok());
    assert!(lower_text(text, Some("uses_f")).is_err());
}

/// `catopt COMMAND tests/check/lang_constraints.opt`: exit 2 and the E0815 diagnostic, the
/// same for every command that lowers; `check` accepts the file.
#[test]
fn run_laws_explain_graph_and_eval_refuse_constraints_with_e0815() {
    let file = "tests/check/lang_constraints.opt";
    let expected_path = root().join("tests/check/lang_constraints.refused");
    let check = Command::new(env!("CARGO_BIN_EXE_catopt"))
        .args(["check", file])
        .current_dir(root())
        .output()
        .expect("catopt runs");
    assert!(check.status.success(), "catopt check accepts the file");
    for command in [
        vec!["run", file],
        vec!["laws", file],
        vec!["explain", file],
        vec!["graph", file],
        vec!["eval", file, "--values", "values.json"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_catopt"))
            .args(&command)
            .env("NO_COLOR", "1")
            .current_dir(root())
            .output()
            .expect("catopt runs");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{command:?}: {stderr}");
        if std::env::var_os("CATOPT_BLESS").is_some() && command[0] == "run" {
            std::fs::write(&expected_path, &stderr).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        assert_eq!(stderr, expected, "{command:?}");
    }
}

fn parse(text: &str) -> catopt::syntax::ast::File {
    let file = catopt::diagnostic::SourceFile::new("t.opt", text);
    catopt::syntax::parse(&file).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

fn objective(file: &catopt::syntax::ast::File) -> &catopt::syntax::ast::ObjectiveItem {
    match &file.items[0] {
        catopt::syntax::ast::Item::Objective(o) => o,
        other => panic!("not an objective: {other:?}"),
    }
}

#[test]
fn the_parser_reads_domains_dual_marks_penalties_and_constraints() {
    use catopt::syntax::ast::Stmt;
    let text = "objective f(x: real[3] in box(-1, hi), u: dual real; X: real[3, 3]) {\n\
                var p: dual real[3] in simplex = 0.5;\n\
                penalty l1(x, 0.01);\n\
                subject to X @ x == p;\n\
                minimize sumsq(x);\n}\n";
    let file = parse(text);
    let o = objective(&file);
    let at = |span: catopt::diagnostic::Span| &text[span.start..span.end];
    let domain = o.ports[0].domain.as_ref().expect("a domain");
    assert_eq!(at(domain.span), "box(-1, hi)");
    assert_eq!(
        (
            domain.name.name.as_str(),
            domain.args.len(),
            domain.brackets
        ),
        ("box", 2, true)
    );
    assert!(o.ports[0].dual.is_none());
    assert_eq!(o.ports[1].dual.map(at), Some("dual"));
    assert!(o.ports[1].domain.is_none() && o.data_params[0].domain.is_none());
    let Stmt::Var {
        dual, domain, init, ..
    } = &o.body[0]
    else {
        panic!("{:?}", o.body[0])
    };
    assert_eq!(dual.map(at), Some("dual"));
    let domain = domain.as_ref().expect("a domain");
    assert_eq!((at(domain.span), domain.brackets), ("simplex", false));
    assert!(init.is_some());
    let Stmt::Penalty { kind, args, span } = &o.body[1] else {
        panic!("{:?}", o.body[1])
    };
    assert_eq!((kind.name.as_str(), args.len()), ("l1", 2));
    assert_eq!(at(*span), "penalty l1(x, 0.01);");
    let Stmt::Constraint { lhs, rhs, span } = &o.body[2] else {
        panic!("{:?}", o.body[2])
    };
    assert_eq!((at(lhs.span), at(rhs.span)), ("X @ x", "p"));
    assert_eq!(at(*span), "subject to X @ x == p;");
    // `subject to` is two words; `subject` alone starts no statement.
    let bad = catopt::diagnostic::SourceFile::new(
        "t.opt",
        "objective f(x: real) { subject x == 1; minimize x; }",
    );
    let errors = catopt::syntax::parse(&bad).unwrap_err();
    assert_eq!(errors[0].code, "E0004");
    // A junction declaration and a data item take a domain too (the checker refuses data's).
    let file =
        parse("composite c() where (y: real[2] in ball(2) = 0.1) { }\ndata D: real in nonneg = 1;");
    let catopt::syntax::ast::Item::Composite(c) = &file.items[0] else {
        panic!()
    };
    assert_eq!(
        c.where_decls[0].domain.as_ref().map(|d| d.args.len()),
        Some(1)
    );
    assert!(c.where_decls[0].init.is_some());
    let catopt::syntax::ast::Item::Data(d) = &file.items[1] else {
        panic!()
    };
    assert!(d.domain.is_some());
}

#[test]
fn the_new_words_are_names_wherever_a_name_stands() {
    use catopt::syntax::ast::Stmt;
    let file = parse(
        "objective penalty(dual: real, subject: real; to: real) {\n\
         var penalty: real; let to2 = dual + subject + to;\n\
         minimize penalty + to2; }",
    );
    let o = objective(&file);
    assert_eq!(o.name.name, "penalty");
    let names: Vec<&str> = o.ports.iter().map(|p| p.name.name.as_str()).collect();
    assert_eq!(names, ["dual", "subject"]);
    assert!(o.ports.iter().all(|p| p.dual.is_none()));
    assert!(matches!(&o.body[0], Stmt::Var { name, .. } if name.name == "penalty"));
}
