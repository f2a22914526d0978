//! A lexical pre-pass over the whole text, run before the grammar: it reports every unknown
//! character, unterminated string and over-deep bracket nesting (all of them, not just the
//! first), in one linear scan with no allocation per byte. The grammar then only ever sees
//! text made of known tokens with bounded bracket depth, so pest's recursion is bounded.

use crate::diagnostic::{Diagnostic, Span};

/// Deepest bracket nesting (`(`, `[`, `{` together) the language accepts.
pub const MAX_BRACKET_DEPTH: usize = 64;

/// The most diagnostics the pre-pass reports before giving up on a file.
pub const MAX_LEXICAL_ERRORS: usize = 20;

fn is_known_punct(c: u8) -> bool {
    matches!(
        c,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'^'
            | b'@'
            | b'\''
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b','
            | b';'
            | b':'
            | b'='
            | b'.'
            | b'<'
            | b'>'
            | b'!'
    )
}

/// Scans `text` and returns lexical errors (empty when the text is lexically fine).
pub fn check_tokens(text: &str) -> Vec<Diagnostic> {
    let bytes = text.as_bytes();
    let mut errors = Vec::new();
    let mut depth = 0usize;
    let mut reported_depth = false;
    let mut i = 0;
    while i < bytes.len() && errors.len() < MAX_LEXICAL_ERRORS {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                let start = i;
                i += 1;
                let mut closed = false;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' if i + 1 < bytes.len() && bytes[i + 1] != b'\n' => i += 2,
                        b'"' => {
                            closed = true;
                            i += 1;
                            break;
                        }
                        b'\n' => break,
                        _ => i += 1,
                    }
                }
                if !closed {
                    errors.push(
                        Diagnostic::error("E0002", "unterminated string", Span::new(start, i))
                            .with_label("this string has no closing `\"` on its line")
                            .with_help("close the string with `\"` before the end of the line"),
                    );
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_BRACKET_DEPTH && !reported_depth {
                    reported_depth = true;
                    errors.push(
                        Diagnostic::error(
                            "E0005",
                            format!("brackets nested more than {MAX_BRACKET_DEPTH} deep"),
                            Span::new(i, i + 1),
                        )
                        .with_label("too deep here")
                        .with_help("split the expression into `let` bindings"),
                    );
                }
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || is_known_punct(c) => i += 1,
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                let len = ch.len_utf8();
                errors.push(
                    Diagnostic::error(
                        "E0001",
                        format!(
                            "unknown character `{}` (U+{:04X})",
                            ch.escape_debug(),
                            ch as u32
                        ),
                        Span::new(i, i + len),
                    )
                    .with_label("not part of the .opt language")
                    .with_help(
                        "remove it; comments start with `#` and strings are written in `\"...\"`",
                    ),
                );
                i += len;
            }
        }
    }
    if errors.len() >= MAX_LEXICAL_ERRORS && i < bytes.len() {
        errors.push(
            Diagnostic::error(
                "E0009",
                format!("too many errors; stopped after {MAX_LEXICAL_ERRORS}"),
                Span::new(i, i),
            )
            .with_help("fix the errors above first; is this really a .opt file?"),
        );
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_unknown_character() {
        let errors = check_tokens("const a = 1 $ 2; const b = 3 ` ;");
        let codes: Vec<_> = errors.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["E0001", "E0001"]);
        assert_eq!(errors[0].primary.0, Span::new(12, 13));
    }

    #[test]
    fn strings_and_comments_may_hold_anything() {
        assert!(check_tokens("data X = csv(\"é$`\\\"\"); # ü $").is_empty());
        let errors = check_tokens("data X = csv(\"x.csv);\nconst a = 1;");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, "E0002");
    }

    #[test]
    fn deep_nesting_is_reported_once() {
        let text = "(".repeat(10_000);
        let errors = check_tokens(&text);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, "E0005");
    }
}
