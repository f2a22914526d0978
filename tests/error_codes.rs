//! Every diagnostic code the sources emit (`"E0xxx"`/`"W0xxx"` literals under `src/`) is in
//! the table of `docs/errors.md`, and every code in that table is emitted somewhere (or
//! listed below as reserved, with the reason).

use std::collections::BTreeSet;
use std::path::Path;

/// Codes documented but not emitted by any `"E0xxx"` literal, with why.
const RESERVED: &[(&str, &str)] = &[];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The codes `"E1234"`/`"W1234"` (in double quotes) in a text.
fn quoted_codes(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut codes = BTreeSet::new();
    for i in 0..bytes.len().saturating_sub(6) {
        let window = &bytes[i..i + 7];
        if window[0] == b'"'
            && (window[1] == b'E' || window[1] == b'W')
            && window[2..6].iter().all(u8::is_ascii_digit)
            && window[6] == b'"'
        {
            codes.insert(String::from_utf8_lossy(&window[1..6]).into_owned());
        }
    }
    codes
}

/// The codes in the first column of the table of `docs/errors.md`.
fn documented_codes(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|rest| rest.split(' ').next())
        .filter(|code| {
            code.len() == 5
                && (code.starts_with('E') || code.starts_with('W'))
                && code[1..].bytes().all(|b| b.is_ascii_digit())
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn every_emitted_code_is_documented_and_every_documented_code_is_emitted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut emitted = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        emitted.extend(quoted_codes(&text));
    }
    let docs = std::fs::read_to_string(root.join("docs/errors.md")).expect("docs/errors.md");
    let documented = documented_codes(&docs);
    assert!(
        emitted.len() > 50 && documented.len() > 50,
        "the scan found too little"
    );
    let undocumented: Vec<&String> = emitted.difference(&documented).collect();
    let reserved: BTreeSet<String> = RESERVED.iter().map(|(c, _)| c.to_string()).collect();
    let unused: Vec<&String> = documented
        .difference(&emitted)
        .filter(|c| !reserved.contains(*c))
        .collect();
    assert!(
        undocumented.is_empty() && unused.is_empty(),
        "emitted but not in docs/errors.md: {undocumented:?}; documented but never emitted \
         (emit them or list them in RESERVED with a reason): {unused:?}"
    );
}

#[test]
fn one_code_one_meaning_in_the_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/errors.md")).expect("docs/errors.md");
    let mut seen = BTreeSet::new();
    for line in docs.lines() {
        if let Some(code) = documented_codes(line).into_iter().next() {
            assert!(
                seen.insert(code.clone()),
                "{code} has two rows in docs/errors.md"
            );
        }
    }
}

#[test]
fn language_md_cites_only_documented_codes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let documented = documented_codes(
        &std::fs::read_to_string(root.join("docs/errors.md")).expect("docs/errors.md"),
    );
    let language = std::fs::read_to_string(root.join("docs/language.md")).expect("language.md");
    // A junction on two outer ports is caught by the checker as E0410.
    assert!(
        !language.contains("(E0702)"),
        "docs/language.md cites E0702 for a checker error"
    );
    for word in language.split(|c: char| !c.is_ascii_alphanumeric()) {
        if word.len() == 5
            && (word.starts_with('E') || word.starts_with('W'))
            && word[1..].bytes().all(|b| b.is_ascii_digit())
        {
            assert!(
                documented.contains(word),
                "docs/language.md cites {word}, not in docs/errors.md"
            );
        }
    }
}
