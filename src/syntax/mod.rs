//! Syntax: the pest grammar (`grammar/opt.pest`) and an owned AST with byte spans.
//!
//! [`parse`] runs a lexical pre-pass ([`lexer::check_tokens`]), then parses the file one
//! item at a time, so that a syntax error in one item does not hide errors in the others:
//! after an error it resumes at the next line that starts an item (`const`, `data`,
//! `objective`, `composite`, `solve`). No pest type leaves this module.
//!
//! ```
//! use catopt::diagnostic::SourceFile;
//! let file = SourceFile::new("a.opt", "const n = 3;\nobjective f(x: real) { minimize -x^2; }");
//! let ast = catopt::syntax::parse(&file).unwrap();
//! assert_eq!(ast.items.len(), 2);
//! ```

pub mod ast;
pub mod lexer;

use crate::diagnostic::{Diagnostic, SourceFile, Span};
use ast::*;
use pest::iterators::Pair;
use pest::Parser as _;

/// Deepest expression tree the parser builds (operators and brackets together).
pub const MAX_EXPR_DEPTH: u32 = 256;

/// The most syntax errors reported for one file.
pub const MAX_SYNTAX_ERRORS: usize = 20;

#[allow(missing_docs)]
mod grammar {
    #[derive(pest_derive::Parser)]
    #[grammar = "grammar/opt.pest"]
    pub struct OptParser;
}
use grammar::{OptParser, Rule};

/// Parses a whole file into its AST, or returns every syntax error found.
pub fn parse(source: &SourceFile) -> Result<File, Vec<Diagnostic>> {
    let text = source.text.as_str();
    let lexical = lexer::check_tokens(text);
    if !lexical.is_empty() {
        return Err(lexical);
    }
    let mut builder = Builder {
        text,
        base: 0,
        errors: Vec::new(),
    };
    let mut items = Vec::new();
    let mut pos = skip_trivia(text, 0);
    let mut syntax_errors = 0;
    while pos < text.len() {
        match OptParser::parse(Rule::item, &text[pos..]) {
            Ok(mut pairs) => {
                let Some(pair) = pairs.next() else { break };
                builder.base = pos;
                let end = pos + pair.as_span().end();
                if let Some(item) = builder.item(pair) {
                    items.push(item);
                }
                pos = skip_trivia(text, end);
            }
            Err(err) => {
                let diagnostic = syntax_error(text, pos, &err);
                let at = diagnostic.primary.0.start.max(pos + 1);
                builder.errors.push(diagnostic);
                syntax_errors += 1;
                if syntax_errors >= MAX_SYNTAX_ERRORS {
                    builder.errors.push(
                        Diagnostic::error(
                            "E0009",
                            format!("too many errors; stopped after {MAX_SYNTAX_ERRORS}"),
                            Span::new(at.min(text.len()), at.min(text.len())),
                        )
                        .with_help("fix the errors above first"),
                    );
                    break;
                }
                pos = next_item_start(text, at);
            }
        }
    }
    if builder.errors.is_empty() {
        Ok(File { items })
    } else {
        Err(builder.errors)
    }
}

/// Skips whitespace and comments from `pos`.
fn skip_trivia(text: &str, mut pos: usize) -> usize {
    let bytes = text.as_bytes();
    while pos < bytes.len() {
        match bytes[pos] {
            b' ' | b'\t' | b'\r' | b'\n' => pos += 1,
            b'#' => {
                while pos < bytes.len() && bytes[pos] != b'\n' {
                    pos += 1;
                }
            }
            _ => break,
        }
    }
    pos
}

const ITEM_KEYWORDS: [&str; 6] = ["const", "data", "objective", "composite", "solve", "report"];

/// The start of the first line after `from` whose first token is an item keyword, or the
/// end of the text.
fn next_item_start(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut pos = from.min(text.len());
    while let Some(offset) = text[pos..].find('\n') {
        pos += offset + 1;
        let mut start = pos;
        while start < bytes.len() && (bytes[start] == b' ' || bytes[start] == b'\t') {
            start += 1;
        }
        for keyword in ITEM_KEYWORDS {
            if text[start..].starts_with(keyword) {
                let after = start + keyword.len();
                if after >= bytes.len()
                    || !(bytes[after].is_ascii_alphanumeric() || bytes[after] == b'_')
                {
                    return start;
                }
            }
        }
    }
    text.len()
}

/// What "expected a statement" lists.
const STATEMENT: &str =
    "a statement (`var`, `let`, `penalty`, `subject to`, `minimize` or `maximize`)";

fn describe_rule(rule: Rule) -> &'static str {
    match rule {
        Rule::semi => "`;`",
        Rule::w_const => "`const`",
        Rule::w_data => "`data`",
        Rule::w_objective => "`objective`",
        Rule::w_composite => "`composite`",
        Rule::w_where => "`where`",
        Rule::w_var => "`var`",
        Rule::w_let => "`let`",
        Rule::w_solve => "`solve`",
        Rule::w_init => "`init`",
        Rule::w_for => "`for`",
        Rule::w_in => "`in`",
        Rule::w_real => "`real`",
        Rule::ident => "a name",
        Rule::number => "a number",
        Rule::string | Rule::string_raw => "a string",
        Rule::boolean => "`true` or `false`",
        Rule::expr
        | Rule::test
        | Rule::product
        | Rule::unary
        | Rule::power
        | Rule::postfix
        | Rule::call
        | Rule::paren
        | Rule::matrix
        | Rule::row
        | Rule::neg => "an expression",
        Rule::add_op | Rule::mul_op | Rule::pow_op | Rule::cmp_op => "an operator",
        Rule::field => "`.`",
        Rule::transpose => "`'`",
        Rule::index => "`[`",
        Rule::rows_to => "`..`",
        Rule::const_item
        | Rule::data_item
        | Rule::objective_item
        | Rule::composite_item
        | Rule::solve_item
        | Rule::report_item => {
            "an item (`const`, `data`, `objective`, `composite`, `solve` or `report`)"
        }
        Rule::report_stmt | Rule::report_let => "a report line `name = expression;`",
        Rule::ty => "a type (`real`, `real[n]` or `real[m, n]`)",
        Rule::type_annot => "`:`",
        Rule::family_index => "`[`",
        Rule::family_loop => "`for`",
        Rule::ports | Rule::data_params | Rule::param => "a parameter `name: type`",
        Rule::var_stmt
        | Rule::let_stmt
        | Rule::penalty_stmt
        | Rule::constraint_stmt
        | Rule::goal_stmt
        | Rule::minimize
        | Rule::maximize
        | Rule::w_penalty
        | Rule::w_subject => STATEMENT,
        Rule::w_to => "`to`",
        Rule::constraint_eq => "`==`",
        Rule::dual_mark => "`dual`",
        Rule::domain => "a domain `in NAME`",
        Rule::outer_ports | Rule::junction_ref | Rule::box_junctions => "a junction",
        Rule::where_clause => "`where`",
        Rule::junction_decl => "a junction declaration `name: type`",
        Rule::block => "`{`",
        Rule::for_stmt | Rule::box_stmt | Rule::box_label => "a box call or `for` loop",
        Rule::box_data => "a data argument",
        Rule::init_setting | Rule::assign | Rule::init_target => {
            "a setting (`name = value;` or `init ...`)"
        }
        Rule::value | Rule::call_value | Rule::arg => "a value",
        Rule::range => "a range `a..b`",
        _ => "something else",
    }
}

/// What the text holds at `pos`, for "found ..." in messages.
fn describe_found(text: &str, pos: usize) -> String {
    let rest = &text[pos.min(text.len())..];
    let Some(first) = rest.chars().next() else {
        return "end of file".to_string();
    };
    if first.is_ascii_alphanumeric() || first == '_' {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .take(40)
            .collect();
        format!("`{word}`")
    } else {
        format!("`{}`", first.escape_debug())
    }
}

/// The byte offset just after the last token before `pos` (skipping whitespace and
/// comments backwards).
fn end_of_previous_token(text: &str, pos: usize) -> usize {
    let mut end = pos.min(text.len());
    loop {
        let trimmed = text[..end].trim_end();
        end = trimmed.len();
        let line_start = trimmed.rfind('\n').map_or(0, |i| i + 1);
        match comment_start(&trimmed[line_start..]) {
            Some(hash) => end = line_start + hash,
            None => return end,
        }
    }
}

/// The offset of a `#` starting a comment in one line (not inside a string).
fn comment_start(line: &str) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '#' if !in_string => return Some(i),
            _ => {}
        }
    }
    None
}

fn syntax_error(text: &str, base: usize, err: &pest::error::Error<Rule>) -> Diagnostic {
    let pos = base
        + match err.location {
            pest::error::InputLocation::Pos(p) => p,
            pest::error::InputLocation::Span((p, _)) => p,
        };
    let pos = pos.min(text.len());
    let positives = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let found = describe_found(text, pos);
    if positives.contains(&Rule::semi) {
        let end = end_of_previous_token(text, pos);
        return Diagnostic::error(
            "E0003",
            format!("missing `;` before {found}"),
            Span::new(end, end),
        )
        .with_label("expected `;` here")
        .with_help("end every statement with `;`");
    }
    let mut expected: Vec<&str> = Vec::new();
    for rule in positives {
        let d = describe_rule(rule);
        if !expected.contains(&d) {
            expected.push(d);
        }
    }
    // "a statement (`var`, `let`, ...)" already lists the keywords: do not repeat them.
    if expected.contains(&STATEMENT) {
        expected.retain(|d| *d != "`var`" && *d != "`let`");
    }
    let end = (pos + text[pos..].chars().next().map_or(0, char::len_utf8)).min(text.len());
    if expected.contains(&STATEMENT) {
        if let Some(keyword) = goal_keyword_for(&found) {
            return Diagnostic::error(
                "E0004",
                format!("expected {}, found {found}", join_or(&expected)),
                Span::new(pos, end),
            )
            .with_label("not a keyword")
            .with_help(format!("did you mean `{keyword}`? write `{keyword} EXPR;`"));
        }
    }
    let message = if expected.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {}, found {found}", join_or(&expected))
    };
    Diagnostic::error("E0004", message, Span::new(pos, end))
        .with_label("unexpected here")
        .with_help("see docs/language.md for the syntax of items, statements and expressions")
}

/// The goal keyword a user probably meant by a found word (`min`, `minimise`, `max`, ...),
/// given as `describe_found` renders it (in backticks).
fn goal_keyword_for(found: &str) -> Option<&'static str> {
    let word = found
        .strip_prefix('`')?
        .strip_suffix('`')?
        .to_ascii_lowercase();
    match word.as_str() {
        "min" | "mini" | "minimise" | "minimum" | "minimze" | "minimse" | "minize" | "argmin" => {
            Some("minimize")
        }
        "max" | "maxi" | "maximise" | "maximum" | "maximze" | "maximse" | "maxize" | "argmax" => {
            Some("maximize")
        }
        "minimize" | "maximize" => None,
        w if w.starts_with("minim") => Some("minimize"),
        w if w.starts_with("maxim") => Some("maximize"),
        _ => None,
    }
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// Converts pest pairs of one item into the owned AST, collecting diagnostics.
struct Builder<'t> {
    text: &'t str,
    base: usize,
    errors: Vec<Diagnostic>,
}

type Inner<'i> = pest::iterators::Pairs<'i, Rule>;

impl Builder<'_> {
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.base + s.start(), self.base + s.end())
    }

    fn ident(&self, pair: Pair<Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn item(&mut self, pair: Pair<Rule>) -> Option<Item> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        Some(match rule {
            Rule::const_item => {
                let name = self.ident(inner.next()?);
                let value = self.expr(inner.next()?);
                Item::Const(ConstItem { name, value, span })
            }
            Rule::data_item => Item::Data(self.data_item(inner, span)?),
            Rule::objective_item => Item::Objective(self.objective(inner, span)?),
            Rule::composite_item => Item::Composite(self.composite(inner, span)?),
            Rule::solve_item => {
                let target = self.ident(inner.next()?);
                let mut settings = Vec::new();
                for setting in inner {
                    let span = self.span(&setting);
                    let rule = setting.as_rule();
                    let mut parts = setting.into_inner();
                    match rule {
                        Rule::assign => {
                            let name = self.ident(parts.next()?);
                            let value = self.value(parts.next()?);
                            settings.push(Setting::Assign { name, value, span });
                        }
                        Rule::init_setting => {
                            let target = parts
                                .next()?
                                .into_inner()
                                .map(|r| self.junction_ref(r))
                                .collect();
                            let value = self.value(parts.next()?);
                            settings.push(Setting::Init {
                                target,
                                value,
                                span,
                            });
                        }
                        _ => {}
                    }
                }
                Item::Solve(SolveItem {
                    target,
                    settings,
                    span,
                })
            }
            Rule::report_item => {
                let target = self.ident(inner.next()?);
                let mut lines = Vec::new();
                for line in inner {
                    lines.push(self.report_line(line)?);
                }
                Item::Report(ReportItem {
                    target,
                    lines,
                    span,
                })
            }
            _ => return None,
        })
    }

    fn report_line(&mut self, pair: Pair<Rule>) -> Option<ReportLine> {
        let span = self.span(&pair);
        let mut is_let = false;
        let mut name = None;
        let mut index = None;
        let mut value = None;
        let mut family_loop = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::report_let => is_let = true,
                Rule::ident => name = Some(self.ident(part)),
                Rule::family_index => index = Some(self.ident(part.into_inner().next()?)),
                Rule::test => value = Some(self.expr(part)),
                Rule::family_loop => {
                    let mut p = part.into_inner();
                    let var = self.ident(p.next()?);
                    let range = self.range(p.next()?);
                    family_loop = Some((var, range));
                }
                _ => {}
            }
        }
        let name = name?;
        let family = match (index, family_loop) {
            (None, None) => None,
            (Some(index), Some((loop_var, range))) => Some(DataFamily {
                index,
                loop_var,
                range,
            }),
            (Some(index), None) => {
                self.errors.push(
                    Diagnostic::error(
                        "E0004",
                        format!("report family `{}[{}]` has no `for`", name.name, index.name),
                        index.span,
                    )
                    .with_label("indexed, but no loop gives the index")
                    .with_help(format!(
                        "write `{}[{1}] = ... for {1} in 0..n;`",
                        name.name, index.name
                    )),
                );
                return None;
            }
            (None, Some((loop_var, _))) => {
                self.errors.push(
                    Diagnostic::error(
                        "E0004",
                        format!("`for` on the single report line `{}`", name.name),
                        loop_var.span,
                    )
                    .with_label("a loop, but no index on the name")
                    .with_help(format!(
                        "write `{}[{1}] = ... for {1} in ...;` for a family",
                        name.name, loop_var.name
                    )),
                );
                return None;
            }
        };
        Some(ReportLine {
            is_let,
            name,
            family,
            value: value?,
            span,
        })
    }

    fn data_item(&mut self, mut inner: Inner, span: Span) -> Option<DataItem> {
        let name = self.ident(inner.next()?);
        let mut index = None;
        let mut ty = None;
        let mut domain = None;
        let mut source = None;
        let mut family_loop = None;
        for part in inner {
            match part.as_rule() {
                Rule::family_index => index = Some(self.ident(part.into_inner().next()?)),
                Rule::type_annot => {
                    let mut annot = part.into_inner();
                    ty = Some(self.ty(annot.next()?));
                    domain = annot.next().map(|d| self.domain(d));
                }
                Rule::value => source = Some(self.value(part)),
                Rule::family_loop => {
                    let mut p = part.into_inner();
                    let var = self.ident(p.next()?);
                    let range = self.range(p.next()?);
                    family_loop = Some((var, range));
                }
                _ => {}
            }
        }
        let family = match (index, family_loop) {
            (Some(index), Some((loop_var, range))) => Some(DataFamily {
                index,
                loop_var,
                range,
            }),
            (None, None) => None,
            (Some(index), None) => {
                self.errors.push(
                    Diagnostic::error(
                        "E0004",
                        format!(
                            "data family `{}[{}]` has no `for` range",
                            name.name, index.name
                        ),
                        index.span,
                    )
                    .with_label("family index declared here")
                    .with_help(format!(
                        "add the range before `;`: `... for {} in 0..N;`",
                        index.name
                    )),
                );
                return None;
            }
            (None, Some((loop_var, _))) => {
                self.errors.push(
                    Diagnostic::error(
                        "E0004",
                        format!(
                            "`for {}` on data `{}`, which is not a family",
                            loop_var.name, name.name
                        ),
                        loop_var.span,
                    )
                    .with_label("loop without a family index")
                    .with_help(format!(
                        "declare a family: `data {}[{}] = ... for {} in ...;`",
                        name.name, loop_var.name, loop_var.name
                    )),
                );
                return None;
            }
        };
        Some(DataItem {
            name,
            family,
            ty,
            domain,
            source: source?,
            span,
        })
    }

    fn params(&mut self, pair: Pair<Rule>) -> Vec<Param> {
        pair.into_inner()
            .filter_map(|p| {
                let span = self.span(&p);
                let mut i = p.into_inner();
                let name = self.ident(i.next()?);
                let (mut ty, mut dual, mut domain, mut sample) = (None, None, None, None);
                for part in i {
                    match part.as_rule() {
                        Rule::dual_mark => dual = Some(self.span(&part)),
                        Rule::ty => ty = Some(self.ty(part)),
                        Rule::domain => domain = Some(self.domain(part)),
                        Rule::sample_mark => sample = Some(self.span(&part)),
                        _ => {}
                    }
                }
                Some(Param {
                    name,
                    ty: ty?,
                    dual,
                    domain,
                    sample,
                    span,
                })
            })
            .collect()
    }

    fn objective(&mut self, mut inner: Inner, span: Span) -> Option<ObjectiveItem> {
        let name = self.ident(inner.next()?);
        let mut ports = Vec::new();
        let mut data_params = Vec::new();
        let mut body = Vec::new();
        for part in inner {
            let pspan = self.span(&part);
            match part.as_rule() {
                Rule::ports => ports = self.params(part),
                Rule::data_params => data_params = self.params(part),
                Rule::var_stmt => {
                    let mut i = part.into_inner();
                    let name = self.ident(i.next()?);
                    let (mut ty, mut dual, mut domain, mut init) = (None, None, None, None);
                    for p in i {
                        match p.as_rule() {
                            Rule::dual_mark => dual = Some(self.span(&p)),
                            Rule::ty => ty = Some(self.ty(p)),
                            Rule::domain => domain = Some(self.domain(p)),
                            Rule::expr => init = Some(self.expr(p)),
                            _ => {}
                        }
                    }
                    body.push(Stmt::Var {
                        name,
                        ty: ty?,
                        dual,
                        domain,
                        init,
                        span: pspan,
                    });
                }
                Rule::penalty_stmt => {
                    let mut i = part.into_inner();
                    let kind = self.ident(i.next()?);
                    let args = i
                        .filter(|p| p.as_rule() == Rule::expr)
                        .map(|p| self.expr(p))
                        .collect();
                    body.push(Stmt::Penalty {
                        kind,
                        args,
                        span: pspan,
                    });
                }
                Rule::constraint_stmt => {
                    let mut sides = part
                        .into_inner()
                        .filter(|p| p.as_rule() == Rule::expr)
                        .map(|p| self.expr(p));
                    let lhs = sides.next()?;
                    let rhs = sides.next()?;
                    body.push(Stmt::Constraint {
                        lhs,
                        rhs,
                        span: pspan,
                    });
                }
                Rule::let_stmt => {
                    let mut i = part.into_inner();
                    let name = self.ident(i.next()?);
                    let value = self.expr(i.next()?);
                    body.push(Stmt::Let {
                        name,
                        value,
                        span: pspan,
                    });
                }
                Rule::goal_stmt => {
                    let mut i = part.into_inner();
                    let goal = match i.next()?.as_rule() {
                        Rule::maximize => Goal::Maximize,
                        _ => Goal::Minimize,
                    };
                    let expr = self.expr(i.next()?);
                    body.push(Stmt::Goal {
                        goal,
                        expr,
                        span: pspan,
                    });
                }
                _ => {}
            }
        }
        Some(ObjectiveItem {
            name,
            ports,
            data_params,
            body,
            span,
        })
    }

    fn composite(&mut self, mut inner: Inner, span: Span) -> Option<CompositeItem> {
        let name = self.ident(inner.next()?);
        let mut outer_ports = Vec::new();
        let mut where_decls = Vec::new();
        let mut body = Vec::new();
        for part in inner {
            match part.as_rule() {
                Rule::outer_ports => {
                    outer_ports = part.into_inner().map(|p| self.junction_ref(p)).collect()
                }
                Rule::where_clause => {
                    for decl in part.into_inner() {
                        let dspan = self.span(&decl);
                        let mut i = decl.into_inner();
                        let name = self.ident(i.next()?);
                        let ty = self.ty(i.next()?);
                        let (mut domain, mut init) = (None, None);
                        for p in i {
                            match p.as_rule() {
                                Rule::domain => domain = Some(self.domain(p)),
                                _ => init = Some(self.expr(p)),
                            }
                        }
                        where_decls.push(JunctionDecl {
                            name,
                            ty,
                            domain,
                            init,
                            span: dspan,
                        });
                    }
                }
                Rule::block => body = self.block(part),
                _ => {}
            }
        }
        Some(CompositeItem {
            name,
            outer_ports,
            where_decls,
            body,
            span,
        })
    }

    fn block(&mut self, pair: Pair<Rule>) -> Vec<CompositeStmt> {
        pair.into_inner()
            .filter_map(|s| self.composite_stmt(s))
            .collect()
    }

    fn composite_stmt(&mut self, pair: Pair<Rule>) -> Option<CompositeStmt> {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::for_stmt => {
                let mut i = pair.into_inner();
                let var = self.ident(i.next()?);
                let range = self.range(i.next()?);
                let body = self.block(i.next()?);
                Some(CompositeStmt::For(ForStmt {
                    var,
                    range,
                    body,
                    span,
                }))
            }
            Rule::box_stmt => {
                let mut label = None;
                let mut label_indices = Vec::new();
                let mut callee = None;
                let mut junctions = Vec::new();
                let mut data_args = Vec::new();
                for part in pair.into_inner() {
                    match part.as_rule() {
                        Rule::box_label => {
                            let mut inner = part.into_inner();
                            label = Some(self.ident(inner.next()?));
                            label_indices = inner.map(|p| self.expr(p)).collect();
                        }
                        Rule::ident => callee = Some(self.ident(part)),
                        Rule::box_junctions => {
                            junctions = part.into_inner().map(|p| self.junction_ref(p)).collect()
                        }
                        Rule::box_data => {
                            data_args = part.into_inner().map(|p| self.expr(p)).collect()
                        }
                        _ => {}
                    }
                }
                Some(CompositeStmt::Call(BoxStmt {
                    label,
                    label_indices,
                    callee: callee?,
                    junctions,
                    data_args,
                    span,
                }))
            }
            _ => None,
        }
    }

    fn junction_ref(&mut self, pair: Pair<Rule>) -> JunctionRef {
        let span = self.span(&pair);
        let mut i = pair.into_inner();
        let name = self.ident(i.next().expect("grammar: junction_ref starts with ident"));
        let index = i.next().map(|p| self.expr(p));
        let more_indices = i.map(|p| self.expr(p)).collect();
        JunctionRef {
            name,
            index,
            more_indices,
            span,
        }
    }

    fn domain(&mut self, pair: Pair<Rule>) -> Domain {
        let whole = self.span(&pair);
        let mut i = pair.into_inner();
        let name = self.ident(i.next().expect("grammar: a domain starts with its name"));
        let args = i.map(|p| self.expr(p)).collect();
        // Without brackets the pair may run over the whitespace and comments after the name.
        let next = skip_trivia(self.text, name.span.end);
        let brackets = next < whole.end && self.text[next..].starts_with('(');
        let end = if brackets { whole.end } else { name.span.end };
        Domain {
            span: Span::new(name.span.start, end),
            name,
            args,
            brackets,
        }
    }

    fn ty(&mut self, pair: Pair<Rule>) -> Type {
        let span = self.span(&pair);
        let dims = pair.into_inner().map(|p| self.expr(p)).collect();
        Type { dims, span }
    }

    fn range(&mut self, pair: Pair<Rule>) -> RangeExpr {
        let span = self.span(&pair);
        let mut i = pair.into_inner();
        let start = self.expr(i.next().expect("grammar: range has a start"));
        let end = self.expr(i.next().expect("grammar: range has an end"));
        RangeExpr { start, end, span }
    }

    fn value(&mut self, pair: Pair<Rule>) -> Value {
        let span = self.span(&pair);
        let inner = pair
            .into_inner()
            .next()
            .expect("grammar: value has one child");
        let kind = match inner.as_rule() {
            Rule::range => ValueKind::Range(self.range(inner)),
            Rule::string => ValueKind::Str(self.string(inner)),
            Rule::boolean => ValueKind::Bool(inner.as_str() == "true"),
            Rule::call_value => {
                let mut i = inner.into_inner();
                let name = self.ident(i.next().expect("grammar: call has a name"));
                let args = i
                    .map(|arg| {
                        let mut parts: Vec<Pair<Rule>> = arg.into_inner().collect();
                        let value = self.value(parts.pop().expect("grammar: arg has a value"));
                        let name = parts.pop().map(|p| self.ident(p));
                        Arg { name, value }
                    })
                    .collect();
                ValueKind::Call { name, args }
            }
            _ => ValueKind::Expr(self.expr(inner)),
        };
        Value { kind, span }
    }

    fn string(&mut self, pair: Pair<Rule>) -> StringLit {
        let span = self.span(&pair);
        let raw = pair.into_inner().next().map_or("", |p| p.as_str());
        let raw_start = span.start + 1;
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = raw.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\' | '{' | '}'))) => text.push(e),
                    other => {
                        let end = other.map_or(i + 1, |(j, c)| j + c.len_utf8());
                        self.errors.push(
                            Diagnostic::error(
                                "E0007",
                                format!("unknown escape `{}` in a string", &raw[i..end]),
                                Span::new(raw_start + i, raw_start + end),
                            )
                            .with_label("not an escape")
                            .with_help("the escapes are `\\\"`, `\\\\`, `\\{` and `\\}`"),
                        );
                    }
                },
                '{' => {
                    let close = raw[i..].find('}').map(|c| i + c);
                    let name = close.map(|c| &raw[i + 1..c]);
                    match (close, name) {
                        (Some(close), Some(name))
                            if !name.is_empty()
                                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                                && !name.starts_with(|c: char| c.is_ascii_digit()) =>
                        {
                            if !text.is_empty() {
                                parts.push(StringPart::Text(std::mem::take(&mut text)));
                            }
                            parts.push(StringPart::Interpolation(Ident {
                                name: name.to_string(),
                                span: Span::new(raw_start + i + 1, raw_start + close),
                            }));
                            while chars.peek().is_some_and(|&(j, _)| j <= close) {
                                chars.next();
                            }
                        }
                        _ => {
                            let end = close.map_or(raw.len(), |c| c + 1);
                            self.errors.push(
                                Diagnostic::error(
                                    "E0007",
                                    "bad interpolation in a string",
                                    Span::new(raw_start + i, raw_start + end),
                                )
                                .with_label("expected `{name}`")
                                .with_help("write `{t}` for a loop variable or const, or `\\{` for a literal brace"),
                            );
                            return StringLit { parts, span };
                        }
                    }
                }
                _ => text.push(c),
            }
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(StringPart::Text(text));
        }
        StringLit { parts, span }
    }

    fn placeholder(&mut self, span: Span) -> (Expr, u32) {
        self.errors.push(
            Diagnostic::error(
                "E0005",
                format!("expression nested more than {MAX_EXPR_DEPTH} deep"),
                span,
            )
            .with_label("too deep")
            .with_help("split the expression into `let` bindings"),
        );
        (
            Expr {
                kind: ExprKind::Number(0.0),
                span,
            },
            0,
        )
    }

    fn expr(&mut self, pair: Pair<Rule>) -> Expr {
        let before = self.errors.len();
        let (expr, depth) = self.expr_depth(pair);
        // Report the depth error once per top-level expression.
        if depth > MAX_EXPR_DEPTH && self.errors.len() == before {
            return self.placeholder(expr.span).0;
        }
        expr
    }

    /// Builds an expression and its depth; stops building (placeholder) past the limit.
    fn expr_depth(&mut self, pair: Pair<Rule>) -> (Expr, u32) {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::expr | Rule::product => {
                let additive = pair.as_rule() == Rule::expr;
                let mut i = pair.into_inner();
                let (first, mut depth) = self.expr_depth(i.next().expect("grammar: operand"));
                let mut operand_depth = depth;
                let mut rest: Vec<(BinaryOp, Expr)> = Vec::new();
                while let Some(op) = i.next() {
                    let op = match op.as_str() {
                        "+" => BinaryOp::Add,
                        "-" => BinaryOp::Sub,
                        "*" => BinaryOp::Mul,
                        "/" => BinaryOp::Div,
                        _ => BinaryOp::MatMul,
                    };
                    let (rhs, d) = self.expr_depth(i.next().expect("grammar: operand"));
                    // The depth of the left fold `((first op r1) op r2) ...`.
                    depth = depth.max(d) + 1;
                    operand_depth = operand_depth.max(d);
                    if depth > MAX_EXPR_DEPTH && !additive {
                        return self.placeholder(span);
                    }
                    rest.push((op, rhs));
                }
                if depth <= MAX_EXPR_DEPTH {
                    let acc = rest.into_iter().fold(first, |acc, (op, rhs)| {
                        let s = acc.span.join(rhs.span);
                        Expr {
                            kind: ExprKind::Binary(op, Box::new(acc), Box::new(rhs)),
                            span: s,
                        }
                    });
                    return (acc, depth);
                }
                // A sum too long to fold from the left (which every shorter sum keeps, bit
                // for bit) is added pairwise: a balanced tree of depth log2(terms).
                let depth = operand_depth + balanced_depth(rest.len() + 1);
                if depth > MAX_EXPR_DEPTH {
                    return self.placeholder(span);
                }
                (balanced_sum(first, rest), depth)
            }
            Rule::unary => {
                let parts: Vec<Pair<Rule>> = pair.into_inner().collect();
                let mut parts = parts.into_iter().rev();
                let (mut acc, mut depth) = self.expr_depth(parts.next().expect("grammar: power"));
                for neg in parts {
                    depth += 1;
                    if depth > MAX_EXPR_DEPTH {
                        return self.placeholder(span);
                    }
                    let s = self.span(&neg).join(acc.span);
                    acc = Expr {
                        kind: ExprKind::Neg(Box::new(acc)),
                        span: s,
                    };
                }
                (acc, depth)
            }
            Rule::power => {
                // postfix (^ neg* postfix)*, right associative; the negs before an
                // exponent apply to the rest of the chain: x ^ -y ^ 2 = x ^ (-(y ^ 2)).
                let mut operands: Vec<(Vec<Span>, Pair<Rule>)> = Vec::new();
                let mut negs = Vec::new();
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::neg => negs.push(self.span(&p)),
                        Rule::pow_op => {}
                        _ => operands.push((std::mem::take(&mut negs), p)),
                    }
                }
                let mut acc: Option<(Expr, u32)> = None;
                while let Some((negs, p)) = operands.pop() {
                    let (base, d) = self.expr_depth(p);
                    let (mut e, mut depth) = match acc.take() {
                        None => (base, d),
                        Some((exp, de)) => {
                            let s = base.span.join(exp.span);
                            (
                                Expr {
                                    kind: ExprKind::Binary(
                                        BinaryOp::Pow,
                                        Box::new(base),
                                        Box::new(exp),
                                    ),
                                    span: s,
                                },
                                d.max(de) + 1,
                            )
                        }
                    };
                    for neg in negs.into_iter().rev() {
                        depth += 1;
                        let s = neg.join(e.span);
                        e = Expr {
                            kind: ExprKind::Neg(Box::new(e)),
                            span: s,
                        };
                    }
                    if depth > MAX_EXPR_DEPTH {
                        return self.placeholder(span);
                    }
                    acc = Some((e, depth));
                }
                acc.expect("grammar: power has an operand")
            }
            Rule::test => {
                let mut i = pair.into_inner();
                let (lhs, d) = self.expr_depth(i.next().expect("grammar: operand"));
                let Some(op) = i.next() else {
                    return (lhs, d);
                };
                let op = match op.as_str() {
                    "==" => CompareOp::Eq,
                    "!=" => CompareOp::Ne,
                    "<=" => CompareOp::Le,
                    ">=" => CompareOp::Ge,
                    "<" => CompareOp::Lt,
                    _ => CompareOp::Gt,
                };
                let (rhs, e) = self.expr_depth(i.next().expect("grammar: operand"));
                let depth = d.max(e) + 1;
                if depth > MAX_EXPR_DEPTH {
                    return self.placeholder(span);
                }
                (
                    Expr {
                        kind: ExprKind::Compare(op, Box::new(lhs), Box::new(rhs)),
                        span,
                    },
                    depth,
                )
            }
            Rule::postfix => {
                let mut i = pair.into_inner();
                let (mut acc, mut depth) = self.expr_depth(i.next().expect("grammar: primary"));
                for p in i {
                    let s = acc.span.join(self.span(&p));
                    match p.as_rule() {
                        Rule::transpose => {
                            depth += 1;
                            acc = Expr {
                                kind: ExprKind::Transpose(Box::new(acc)),
                                span: s,
                            };
                        }
                        Rule::field => {
                            depth += 1;
                            let field = self.ident(p.into_inner().next().expect("grammar: field"));
                            acc = Expr {
                                kind: ExprKind::Field(Box::new(acc), field),
                                span: s,
                            };
                        }
                        _ => {
                            let mut indices = Vec::new();
                            let mut rows_end = None;
                            for e in p.into_inner() {
                                let e = match e.as_rule() {
                                    Rule::rows_to => {
                                        let Some(end) = e.into_inner().next() else {
                                            continue;
                                        };
                                        let (end, d) = self.expr_depth(end);
                                        depth = depth.max(d);
                                        rows_end = Some(end);
                                        continue;
                                    }
                                    _ => e,
                                };
                                let (e, d) = self.expr_depth(e);
                                depth = depth.max(d);
                                indices.push(e);
                            }
                            depth += 1;
                            let kind = match (rows_end, indices.pop()) {
                                (Some(end), Some(start)) => {
                                    let range = RangeExpr {
                                        span: start.span.join(end.span),
                                        start,
                                        end,
                                    };
                                    ExprKind::Rows(Box::new(acc), Box::new(range))
                                }
                                (_, last) => {
                                    indices.extend(last);
                                    ExprKind::Index(Box::new(acc), indices)
                                }
                            };
                            acc = Expr { kind, span: s };
                        }
                    }
                    if depth > MAX_EXPR_DEPTH {
                        return self.placeholder(span);
                    }
                }
                (acc, depth)
            }
            Rule::number => {
                let value: f64 = pair.as_str().parse().unwrap_or(f64::INFINITY);
                if !value.is_finite() {
                    self.errors.push(
                        Diagnostic::error(
                            "E0006",
                            format!("number `{}` is too large", pair.as_str()),
                            span,
                        )
                        .with_label("overflows a 64-bit float")
                        .with_help("numbers must be below about 1.8e308"),
                    );
                }
                (
                    Expr {
                        kind: ExprKind::Number(if value.is_finite() { value } else { 0.0 }),
                        span,
                    },
                    1,
                )
            }
            Rule::ident => (
                Expr {
                    kind: ExprKind::Name(pair.as_str().to_string()),
                    span,
                },
                1,
            ),
            Rule::paren => {
                let (mut e, d) = self.expr_depth(pair.into_inner().next().expect("grammar: paren"));
                e.span = span;
                (e, d)
            }
            Rule::call => {
                let mut i = pair.into_inner();
                let name = self.ident(i.next().expect("grammar: call name"));
                let mut depth = 0;
                let mut args = Vec::new();
                for a in i {
                    let (a, d) = self.expr_depth(a);
                    depth = depth.max(d);
                    args.push(a);
                }
                (
                    Expr {
                        kind: ExprKind::Call(name, args),
                        span,
                    },
                    depth + 1,
                )
            }
            Rule::matrix => {
                let mut depth = 0;
                let mut rows = Vec::new();
                for row in pair.into_inner() {
                    let mut r = Vec::new();
                    for e in row.into_inner() {
                        let (e, d) = self.expr_depth(e);
                        depth = depth.max(d);
                        r.push(e);
                    }
                    rows.push(r);
                }
                (
                    Expr {
                        kind: ExprKind::Matrix(rows),
                        span,
                    },
                    depth + 1,
                )
            }
            _ => {
                let _ = self.text;
                (
                    Expr {
                        kind: ExprKind::Number(0.0),
                        span,
                    },
                    1,
                )
            }
        }
    }
}

/// The depth of a balanced binary tree over `terms` leaves (0 for one leaf).
fn balanced_depth(terms: usize) -> u32 {
    usize::BITS - (terms.max(1) - 1).leading_zeros()
}

/// `first op1 t1 op2 t2 ...` (each op `+` or `-`) as a balanced tree: the terms split in
/// halves, and a right half that starts with `-` is subtracted with its signs flipped
/// (`a - b - c + d` = `(a - b) - (c - d)`), so every term is added or subtracted once.
fn balanced_sum(first: Expr, rest: Vec<(BinaryOp, Expr)>) -> Expr {
    let mut terms: Vec<(bool, Expr)> = Vec::with_capacity(rest.len() + 1);
    terms.push((false, first));
    terms.extend(rest.into_iter().map(|(op, e)| (op == BinaryOp::Sub, e)));
    balanced_terms(terms)
}

/// `terms` as a balanced tree: each term is `(negated, expr)`, the first one's sign is
/// taken as `+` (the caller has absorbed it).
fn balanced_terms(mut terms: Vec<(bool, Expr)>) -> Expr {
    if terms.len() == 1 {
        return terms.pop().expect("one term").1;
    }
    let right = terms.split_off(terms.len() / 2);
    let subtract = right[0].0;
    let right: Vec<(bool, Expr)> = right
        .into_iter()
        .map(|(negated, e)| (negated != subtract, e))
        .collect();
    let (left, right) = (balanced_terms(terms), balanced_terms(right));
    let span = left.span.join(right.span);
    let op = if subtract {
        BinaryOp::Sub
    } else {
        BinaryOp::Add
    };
    Expr {
        kind: ExprKind::Binary(op, Box::new(left), Box::new(right)),
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<File, Vec<Diagnostic>> {
        parse(&SourceFile::new("t.opt", text))
    }

    fn goal_expr(text: &str) -> Expr {
        let file = parse_text(&format!("objective f(x: real) {{ minimize {text}; }}")).unwrap();
        let Item::Objective(o) = &file.items[0] else {
            panic!()
        };
        let Stmt::Goal { expr, .. } = &o.body[0] else {
            panic!()
        };
        expr.clone()
    }

    fn show(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Number(n) => n.to_string(),
            ExprKind::Name(n) => n.clone(),
            ExprKind::Neg(a) => format!("(-{})", show(a)),
            ExprKind::Transpose(a) => format!("{}'", show(a)),
            ExprKind::Binary(op, a, b) => format!("({} {} {})", show(a), op.symbol(), show(b)),
            ExprKind::Call(f, args) => format!(
                "{}({})",
                f.name,
                args.iter().map(show).collect::<Vec<_>>().join(", ")
            ),
            ExprKind::Index(a, i) => format!(
                "{}[{}]",
                show(a),
                i.iter().map(show).collect::<Vec<_>>().join(", ")
            ),
            ExprKind::Matrix(rows) => format!(
                "[{}]",
                rows.iter()
                    .map(|r| r.iter().map(show).collect::<Vec<_>>().join(", "))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            ExprKind::Rows(a, r) => format!("{}[{}..{}]", show(a), show(&r.start), show(&r.end)),
            ExprKind::Compare(op, a, b) => format!("({} {} {})", show(a), op.symbol(), show(b)),
            ExprKind::Field(a, f) => format!("{}.{}", show(a), f.name),
        }
    }

    #[test]
    fn row_ranges_parse_as_rows_and_indices_stay_indices() {
        assert_eq!(show(&goal_expr("X[2 * i..i + 1]")), "X[(2 * i)..(i + 1)]");
        assert_eq!(show(&goal_expr("X[0..1]'")), "X[0..1]'");
        assert_eq!(show(&goal_expr("A[1, 2] + x[3]")), "(A[1, 2] + x[3])");
        assert!(parse_text("objective f(x: real) { minimize X[0..1, 2]; }").is_err());
    }

    #[test]
    fn precedence_follows_the_language() {
        assert_eq!(show(&goal_expr("-x^2")), "(-(x ^ 2))");
        assert_eq!(show(&goal_expr("a + b * c - d")), "((a + (b * c)) - d)");
        assert_eq!(show(&goal_expr("x ^ y ^ z")), "(x ^ (y ^ z))");
        assert_eq!(show(&goal_expr("x ^ -y ^ 2")), "(x ^ (-(y ^ 2)))");
        assert_eq!(show(&goal_expr("x @ P @ x")), "((x @ P) @ x)");
        assert_eq!(show(&goal_expr("-a * b")), "((-a) * b)");
        assert_eq!(show(&goal_expr("A'[1, 0]^2")), "(A'[1, 0] ^ 2)");
        assert_eq!(
            show(&goal_expr("f(x)' + [1, 2; 3, 4]")),
            "(f(x)' + [1, 2; 3, 4])"
        );
        assert_eq!(show(&goal_expr("2.5E+4 - 1e-3")), "(25000 - 0.001)");
    }

    #[test]
    fn spans_cover_the_written_text() {
        let e = goal_expr("(a - 1)^2");
        let text = "objective f(x: real) { minimize (a - 1)^2; }";
        assert_eq!(&text[e.span.start..e.span.end], "(a - 1)^2");
    }

    #[test]
    fn missing_semicolon_points_after_the_statement() {
        let text = "objective f(x: real) {\n  var a: real   # comment\n  minimize a;\n}\n";
        let errors = parse_text(text).unwrap_err();
        assert_eq!(errors[0].code, "E0003");
        let at = errors[0].primary.0.start;
        assert_eq!(&text[at - 4..at], "real");
    }

    #[test]
    fn errors_in_several_items_are_all_reported() {
        let text = "const a = ;\nconst b = 2;\nobjective f( { }\nconst c = 1 1;\n";
        let errors = parse_text(text).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn long_chains_do_not_overflow() {
        // A sum of any length is added pairwise (depth 17 here), a product is refused.
        let sum = vec!["x"; 100_000].join(" + ");
        assert!(parse_text(&format!("objective f(x: real) {{ minimize {sum}; }}")).is_ok());
        let product = vec!["x"; 100_000].join(" * ");
        let errors =
            parse_text(&format!("objective f(x: real) {{ minimize {product}; }}")).unwrap_err();
        assert_eq!(errors[0].code, "E0005");
        let negs = "-".repeat(100_000);
        let errors = parse_text(&format!("const a = {negs}1;")).unwrap_err();
        assert_eq!(errors[0].code, "E0005");
        let pows = vec!["x"; 100_000].join("^");
        let errors = parse_text(&format!("const a = {pows};")).unwrap_err();
        assert_eq!(errors[0].code, "E0005");
        let sum = vec!["x"; 200].join(" + ");
        assert!(parse_text(&format!("const a = {sum};")).is_ok());
    }

    #[test]
    fn strings_resolve_escapes_and_interpolations() {
        let file = parse_text("data X[t] = csv(\"task{t}_\\\"x\\\".csv\") for t in 0..2;").unwrap();
        let Item::Data(d) = &file.items[0] else {
            panic!()
        };
        let ValueKind::Call { args, .. } = &d.source.kind else {
            panic!()
        };
        let ValueKind::Str(s) = &args[0].value.kind else {
            panic!()
        };
        assert_eq!(s.parts.len(), 3);
        assert_eq!(s.parts[2], StringPart::Text("_\"x\".csv".into()));
    }
}
