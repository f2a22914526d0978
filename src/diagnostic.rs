//! Located, coded diagnostics shared by every stage that reads a user's file.
//!
//! A [`Diagnostic`] carries a stable code (`E0001`...), a message naming the culprit, a
//! primary span in the source, optional secondary labels and a help line saying what would
//! fix it. [`Report`] pairs diagnostics with their [`SourceFile`] so that the command line can
//! render them with miette (source line and caret). This module knows nothing of any stage.

use std::fmt;
use std::sync::Arc;

/// A byte range `start..end` in a source file.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` (byte offsets).
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// The number of bytes covered.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// True when the span covers no byte (a position).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        miette::SourceSpan::new(span.start.into(), span.len())
    }
}

/// A named source text: the file a diagnostic points into.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user gave it (used in messages).
    pub name: String,
    /// The whole text.
    pub text: String,
}

impl SourceFile {
    /// A source file with the given display name and text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            name: name.into(),
            text: text.into(),
        })
    }

    /// 1-based line and column (in characters) of a byte offset, clamped into the text.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }
}

/// Whether a diagnostic stops the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The file cannot be used.
    Error,
    /// Worth knowing (an unused variable); the file can still be used.
    Warning,
}

/// One located message about a user's file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable code such as `E0003`; documented in docs/errors.md.
    pub code: &'static str,
    /// What is wrong, naming the culprit ("unknown junction `y`").
    pub message: String,
    /// Where, with a short label ("not declared in this composite").
    pub primary: (Span, String),
    /// Other places that explain the problem (the first declaration of a duplicate).
    pub secondary: Vec<(Span, String)>,
    /// What would fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with a code, a message and a primary span (label empty).
    pub fn error(code: &'static str, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            primary: (span, String::new()),
            secondary: Vec::new(),
            help: None,
        }
    }

    /// A warning with a code, a message and a primary span.
    pub fn warning(code: &'static str, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message, span)
        }
    }

    /// Sets the label of the primary span.
    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.primary.1 = label.into();
        self
    }

    /// Adds a secondary labelled span.
    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.secondary.push((span, label.into()));
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Diagnostics for one source file, ready to render.
#[derive(Debug, Clone)]
pub struct Report {
    /// The file the spans point into.
    pub source: Arc<SourceFile>,
    /// Errors and warnings in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// True if any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Plain one-line-per-diagnostic rendering: `file:line:col: error[E0003]: message`,
    /// followed by the help line. Stable, used by golden tests and non-terminal output.
    pub fn to_plain_string(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            let (line, column) = self.source.line_column(d.primary.0.start);
            let kind = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            out.push_str(&format!(
                "{}:{}:{}: {}[{}]: {}\n",
                self.source.name, line, column, kind, d.code, d.message
            ));
            if !d.primary.1.is_empty() {
                out.push_str(&format!("  --> {}\n", d.primary.1));
            }
            for (span, label) in &d.secondary {
                let (line, column) = self.source.line_column(span.start);
                out.push_str(&format!(
                    "  note: {}:{}:{}: {}\n",
                    self.source.name, line, column, label
                ));
            }
            if let Some(help) = &d.help {
                out.push_str(&format!("  help: {help}\n"));
            }
        }
        out
    }

    /// One miette report per diagnostic, with the source attached, for fancy rendering.
    pub fn to_miette(&self) -> Vec<miette::Report> {
        self.diagnostics
            .iter()
            .map(|d| {
                let mut labels = vec![miette::LabeledSpan::new_primary_with_span(
                    (!d.primary.1.is_empty()).then(|| d.primary.1.clone()),
                    d.primary.0,
                )];
                for (span, label) in &d.secondary {
                    labels.push(miette::LabeledSpan::new_with_span(
                        Some(label.clone()),
                        *span,
                    ));
                }
                let severity = match d.severity {
                    Severity::Error => miette::Severity::Error,
                    Severity::Warning => miette::Severity::Warning,
                };
                let mut diagnostic = miette::MietteDiagnostic::new(d.message.clone())
                    .with_code(d.code)
                    .with_severity(severity)
                    .with_labels(labels);
                if let Some(help) = &d.help {
                    diagnostic = diagnostic.with_help(help.clone());
                }
                miette::Report::new(diagnostic).with_source_code(miette::NamedSource::new(
                    self.source.name.clone(),
                    self.source.text.clone(),
                ))
            })
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_plain_string())
    }
}

impl std::error::Error for Report {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let file = SourceFile::new("a.opt", "ab\ncé d\n");
        assert_eq!(file.line_column(0), (1, 1));
        assert_eq!(file.line_column(3), (2, 1));
        // 'é' is two bytes; the space after it is the third character.
        assert_eq!(file.line_column(6), (2, 3));
        assert_eq!(file.line_column(1000), (3, 1));
    }

    #[test]
    fn plain_rendering_names_file_line_column_and_code() {
        let source = SourceFile::new("x.opt", "objective f() {\n  minimize y;\n}\n");
        let report = Report {
            source,
            diagnostics: vec![
                Diagnostic::error("E0101", "unknown name `y`", Span::new(27, 28))
                    .with_help("declare it with `var y: real;`"),
            ],
        };
        let text = report.to_plain_string();
        assert!(
            text.starts_with("x.opt:2:12: error[E0101]: unknown name `y`"),
            "{text}"
        );
        assert!(text.contains("help: declare it"));
    }
}
