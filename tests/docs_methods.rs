//! The methods and schedules in the docs are the registry's (`catopt::method_spec`): every
//! method has a row in docs/language.md's table naming each of its parameters and its class,
//! every schedule its row, and `catopt run --help` lists them all with their defaults.

mod cli_common;
use catopt::method_spec::{Default, METHODS, SCHEDULES};
use cli_common::{catopt, root};

/// The lines of the section `## title` of docs/language.md.
fn section(title: &str) -> String {
    let text = std::fs::read_to_string(root().join("docs/language.md")).unwrap();
    let start = text
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("docs/language.md has no section `{title}`"));
    let rest = &text[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    rest[..end].to_string()
}

#[test]
fn every_method_and_parameter_is_in_the_language_reference() {
    let methods = section("Methods");
    for spec in METHODS {
        let row = methods
            .lines()
            .find(|l| l.starts_with(&format!("| `{}(", spec.name)))
            .unwrap_or_else(|| panic!("no row for `{}` in the Methods table", spec.name));
        for param in spec.params {
            assert!(
                row.contains(param.name),
                "the row of `{}` does not name its parameter `{}`",
                spec.name,
                param.name
            );
            if let Default::Number(v) = param.default {
                let written = row
                    .split(&format!("{} = ", param.name))
                    .nth(1)
                    .and_then(|rest| rest.split([',', ')']).next())
                    .and_then(|number| number.trim().parse::<f64>().ok());
                assert_eq!(
                    written,
                    Some(v),
                    "the row of `{}` does not give the default of `{}`: {row}",
                    spec.name,
                    param.name
                );
            }
        }
        assert!(
            row.trim_end()
                .ends_with(&format!("| {} |", spec.class.as_str()))
                || row.contains(&format!("| {} (", spec.class.as_str())),
            "the row of `{}` does not give its class {}: {row}",
            spec.name,
            spec.class.as_str()
        );
    }
    let rows = methods.lines().filter(|l| l.starts_with("| `")).count();
    assert_eq!(rows, METHODS.len(), "a method row without a registry entry");
}

#[test]
fn every_schedule_is_in_the_language_reference() {
    let schedules = section("Step-size schedules");
    for spec in SCHEDULES {
        let row = schedules
            .lines()
            .find(|l| l.starts_with(&format!("| `{}", spec.name)))
            .unwrap_or_else(|| panic!("no row for `{}` in the schedules table", spec.name));
        assert!(row.contains(spec.formula), "{}: {row}", spec.formula);
    }
}

#[test]
fn run_help_lists_every_method_and_schedule() {
    let output = catopt().args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for spec in METHODS {
        assert!(
            help.contains(&format!("  {}(", spec.name)),
            "{}: {help}",
            spec.name
        );
        assert!(help.contains(spec.summary), "{}", spec.summary);
    }
    for spec in SCHEDULES {
        assert!(help.contains(spec.formula), "{}", spec.formula);
    }
}
