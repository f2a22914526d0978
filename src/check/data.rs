//! `data` items: inline literals and csv files, loaded at check time.
//!
//! CSV rules: cells are separated by `,`; blank lines are skipped; `header = true` skips the
//! first line; `cols = a..b` keeps columns a..b-1 (0-based, half-open). Every kept cell
//! must be a finite number. Row and column numbers in messages are 1-based and count lines
//! as they are in the file (the header included). A table with one row or one column is a
//! vector (one cell: a scalar); a typed declaration `real[1, n]` or `real[n, 1]` keeps it
//! a matrix.

use super::consts::LoopEnv;
use super::program::{DataId, DataItem, DataValue};
use super::{Checker, DataEntry};
use crate::diagnostic::{Diagnostic, Span};
use crate::name::IndexedName;
use crate::shape::Shape;
use crate::syntax::ast::{self, ExprKind, StringPart, ValueKind};
use std::collections::HashMap;
use std::sync::Arc;

/// A loaded table before it is given a shape.
pub(crate) struct Table {
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f64>,
}

impl Table {
    /// The default shape of a table (see the module docs).
    fn natural_shape(&self) -> Shape {
        match (self.rows, self.cols) {
            (1, 1) => Shape::Scalar,
            (1, n) | (n, 1) => Shape::Vector(n),
            (m, n) => Shape::Matrix(m, n),
        }
    }

    /// Whether the table can be read as `shape`.
    fn fits(&self, shape: Shape) -> bool {
        match shape {
            Shape::Scalar => self.rows == 1 && self.cols == 1,
            Shape::Vector(n) => {
                (self.rows == 1 && self.cols == n) || (self.cols == 1 && self.rows == n)
            }
            Shape::Matrix(m, n) => self.rows == m && self.cols == n,
        }
    }
}

/// The most errors reported for one csv file.
const MAX_CSV_ERRORS: usize = 5;

impl Checker<'_> {
    /// Checks and loads one `data` item (all members of a family).
    pub(crate) fn data_item(&mut self, item: &ast::DataItem) {
        let declared = match &item.ty {
            Some(ty) => match self.shape(ty) {
                Some(shape) => Some(shape),
                None => {
                    self.data_names
                        .insert(item.name.name.clone(), DataEntry::Failed);
                    return;
                }
            },
            None => None,
        };
        let Some(family) = &item.family else {
            let entry = match self.data_value(item, declared, &[]) {
                Some(value) => DataEntry::Single(self.push_data(
                    IndexedName::plain(item.name.name.as_str()),
                    value,
                    item.name.span,
                )),
                None => DataEntry::Failed,
            };
            self.data_names.insert(item.name.name.clone(), entry);
            return;
        };
        if family.index.name != family.loop_var.name {
            self.error(
                Diagnostic::error(
                    "E0114",
                    format!(
                        "data family `{}[{}]` loops over `{}`",
                        item.name.name, family.index.name, family.loop_var.name
                    ),
                    family.loop_var.span,
                )
                .with_label(format!("expected `{}`", family.index.name))
                .with_secondary(family.index.span, "the family index")
                .with_help("the index and the loop variable must be the same name"),
            );
            self.data_names
                .insert(item.name.name.clone(), DataEntry::Failed);
            return;
        }
        let range = &family.range;
        let start = self.const_int(&range.start, &[], "a range bound");
        let end = self.const_int(&range.end, &[], "a range bound");
        let (Some(start), Some(end)) = (start, end) else {
            self.data_names
                .insert(item.name.name.clone(), DataEntry::Failed);
            return;
        };
        if end.saturating_sub(start) > 1_000_000 {
            self.memory_error(range.span, "this data family", (end - start) as f64 * 64.0);
            self.data_names
                .insert(item.name.name.clone(), DataEntry::Failed);
            return;
        }
        let base: Arc<str> = item.name.name.as_str().into();
        let mut members = HashMap::new();
        let mut failed = false;
        for t in start..end {
            let env = [(family.index.name.as_str(), t)];
            match self.data_value(item, declared, &env) {
                Some(value) => {
                    let id =
                        self.push_data(IndexedName::member(base.clone(), t), value, item.name.span);
                    members.insert(t, id);
                }
                None => failed = true,
            }
        }
        let entry = if failed {
            DataEntry::Failed
        } else {
            DataEntry::Family(members)
        };
        self.data_names.insert(item.name.name.clone(), entry);
    }

    fn push_data(&mut self, name: IndexedName, value: DataValue, span: Span) -> DataId {
        self.data.push(DataItem { name, value, span });
        DataId(self.data.len() as u32 - 1)
    }

    /// The value of a data item (one family member when `env` binds the index).
    fn data_value(
        &mut self,
        item: &ast::DataItem,
        declared: Option<Shape>,
        env: &LoopEnv,
    ) -> Option<DataValue> {
        let source = &item.source;
        let table = match &source.kind {
            ValueKind::Expr(expr) => self.literal_table(expr, env)?,
            ValueKind::Call { name, args } if name.name == "csv" => {
                self.csv_call(name.span, args, env)?
            }
            _ => {
                self.error(
                    Diagnostic::error(
                        "E0309",
                        format!(
                            "data `{}` must be `csv(...)`, a literal or a number",
                            item.name.name
                        ),
                        source.span,
                    )
                    .with_label("not a data value")
                    .with_help("write `csv(\"file.csv\")`, `[1, 2; 3, 4]` or a number"),
                );
                return None;
            }
        };
        self.table_value(
            table,
            declared,
            &item.name.name,
            source.span,
            item.ty.as_ref().map(|t| t.span),
        )
    }

    /// Gives a table its shape, checking it against a declared one.
    pub(crate) fn table_value(
        &mut self,
        table: Table,
        declared: Option<Shape>,
        name: &str,
        span: Span,
        declared_span: Option<Span>,
    ) -> Option<DataValue> {
        let shape = match declared {
            Some(shape) if table.fits(shape) => shape,
            Some(shape) => {
                let mut d = Diagnostic::error(
                    "E0215",
                    format!(
                        "`{name}` is declared {shape} but its data has {} rows and {} columns",
                        table.rows, table.cols
                    ),
                    span,
                )
                .with_label(format!("{} x {} table", table.rows, table.cols))
                .with_help(format!(
                    "fix the data or declare `{name}` with the shape of the data"
                ));
                if let Some(ds) = declared_span {
                    d = d.with_secondary(ds, format!("declared {shape} here"));
                }
                self.error(d);
                return None;
            }
            None => table.natural_shape(),
        };
        Some(DataValue {
            shape,
            values: table.values.into(),
        })
    }

    /// An inline literal `[1, 2; 3, 4]`, `[1, 2, 3]` or a number.
    fn literal_table(&mut self, expr: &ast::Expr, env: &LoopEnv) -> Option<Table> {
        let ExprKind::Matrix(rows) = &expr.kind else {
            let value = self.const_eval(expr, env)?;
            return Some(Table {
                rows: 1,
                cols: 1,
                values: vec![value],
            });
        };
        let cols = rows.first().map_or(0, Vec::len);
        if cols == 0 {
            self.error(
                Diagnostic::error("E0308", "empty data literal", expr.span)
                    .with_label("no numbers")
                    .with_help("write at least one number: `[1, 2, 3]`"),
            );
            return None;
        }
        let mut values = Vec::with_capacity(rows.len() * cols);
        let mut ok = true;
        for (r, row) in rows.iter().enumerate() {
            if row.len() != cols {
                let span = row
                    .first()
                    .map_or(expr.span, |e| e.span.join(row[row.len() - 1].span));
                self.error(
                    Diagnostic::error(
                        "E0306",
                        format!(
                            "row {} of the literal has {} entries, the first row has {cols}",
                            r + 1,
                            row.len()
                        ),
                        span,
                    )
                    .with_label("ragged row")
                    .with_help("every row of a matrix literal needs the same number of entries"),
                );
                ok = false;
                continue;
            }
            for e in row {
                match self.const_eval(e, env) {
                    Some(v) => values.push(v),
                    None => ok = false,
                }
            }
        }
        ok.then_some(Table {
            rows: rows.len(),
            cols,
            values,
        })
    }

    /// Interpolates a string with loop variables and consts.
    pub(crate) fn interpolate(&mut self, lit: &ast::StringLit, env: &LoopEnv) -> Option<String> {
        let mut out = String::new();
        for part in &lit.parts {
            match part {
                StringPart::Text(t) => out.push_str(t),
                StringPart::Interpolation(name) => {
                    let value = match env.iter().rev().find(|(n, _)| *n == name.name) {
                        Some(&(_, v)) => v as f64,
                        None => self.const_value(&name.name, name.span)?,
                    };
                    out.push_str(&value.to_string());
                }
            }
        }
        Some(out)
    }

    /// `csv("file", header = true, cols = a..b)`.
    pub(crate) fn csv_call(
        &mut self,
        call_span: Span,
        args: &[ast::Arg],
        env: &LoopEnv,
    ) -> Option<Table> {
        let mut path = None;
        let mut header = false;
        let mut cols = None;
        let mut ok = true;
        for (i, arg) in args.iter().enumerate() {
            match (&arg.name, &arg.value.kind) {
                (None, ValueKind::Str(lit)) if i == 0 => {
                    path = Some((self.interpolate(lit, env)?, lit.span))
                }
                (Some(n), ValueKind::Bool(b)) if n.name == "header" => header = *b,
                (Some(n), ValueKind::Range(r)) if n.name == "cols" => {
                    let a = self.const_int(&r.start, env, "a column bound");
                    let b = self.const_int(&r.end, env, "a column bound");
                    match (a, b) {
                        (Some(a), Some(b)) => cols = Some((a, b, r.span)),
                        _ => ok = false,
                    }
                }
                _ => {
                    let what = arg
                        .name
                        .as_ref()
                        .map_or("this argument".to_string(), |n| format!("`{}`", n.name));
                    self.error(
                        Diagnostic::error("E0310", format!("`csv` does not take {what}"), arg.value.span)
                            .with_label("unexpected argument")
                            .with_help("write `csv(\"file.csv\")`, optionally with `header = true` and `cols = a..b`"),
                    );
                    ok = false;
                }
            }
        }
        let Some((path, path_span)) = path else {
            self.error(
                Diagnostic::error("E0310", "`csv` needs a file name", call_span)
                    .with_label("no file name")
                    .with_help("write `csv(\"file.csv\")`; the path is relative to the .opt file"),
            );
            return None;
        };
        if !ok {
            return None;
        }
        self.load_csv(&path, path_span, header, cols)
    }

    fn load_csv(
        &mut self,
        path: &str,
        span: Span,
        header: bool,
        cols: Option<(i64, i64, Span)>,
    ) -> Option<Table> {
        let full = self.options.base_dir.join(path);
        let limit = self.options.memory_limit_bytes;
        if let Ok(meta) = std::fs::metadata(&full) {
            // A cell takes at least two bytes ("1,"), i.e. 4 bytes of f64 per byte of file.
            let bound = meta.len().saturating_mul(4);
            if bound.saturating_add(self.data_bytes) > limit {
                self.memory_error(span, &format!("data file `{path}`"), bound as f64);
                return None;
            }
        }
        let bytes = match std::fs::read(&full) {
            Ok(bytes) => bytes,
            Err(err) => {
                self.error(
                    Diagnostic::error(
                        "E0301",
                        format!("cannot read data file `{path}`: {err}"),
                        span,
                    )
                    .with_label(format!("looked for {}", full.display()))
                    .with_help("csv paths are relative to the directory of the .opt file"),
                );
                return None;
            }
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            self.error(
                Diagnostic::error(
                    "E0301",
                    format!("data file `{path}` is not UTF-8 text"),
                    span,
                )
                .with_label("not a text file")
                .with_help("a csv file holds numbers separated by commas"),
            );
            return None;
        };
        let mut values = Vec::new();
        let mut width: Option<(usize, usize)> = None; // (cells per row, line of the first row)
        let mut rows = 0;
        let mut errors = 0;
        let mut first_line = true;
        for (line_index, line) in text.lines().enumerate() {
            let line_no = line_index + 1;
            if line.trim().is_empty() {
                continue;
            }
            if first_line && header {
                first_line = false;
                continue;
            }
            first_line = false;
            let cells = line.split(',').count();
            match width {
                None => width = Some((cells, line_no)),
                Some((w, first)) if w != cells => {
                    errors += 1;
                    self.error(
                        Diagnostic::error(
                            "E0302",
                            format!(
                                "`{path}` row {line_no} has {cells} cells, row {first} has {w}"
                            ),
                            span,
                        )
                        .with_label("ragged csv file")
                        .with_help(format!("give row {line_no} of `{path}` {w} cells")),
                    );
                    if errors >= MAX_CSV_ERRORS {
                        return None;
                    }
                    continue;
                }
                _ => {}
            }
            let (lo, hi) = match cols {
                Some((a, b, cspan)) => {
                    if a < 0 || b <= a || b as usize > cells {
                        self.error(
                            Diagnostic::error(
                                "E0303",
                                format!("columns {a}..{b} do not fit `{path}`, which has {cells} columns"),
                                cspan,
                            )
                            .with_label("column range out of bounds")
                            .with_help(format!("columns are counted from 0; use a range inside 0..{cells}")),
                        );
                        return None;
                    }
                    (a as usize, b as usize)
                }
                None => (0, cells),
            };
            for (col, cell) in line.split(',').enumerate().take(hi).skip(lo) {
                let cell = cell.trim();
                match cell.parse::<f64>() {
                    Ok(v) if v.is_finite() => values.push(v),
                    Ok(v) => {
                        errors += 1;
                        self.error(
                            Diagnostic::error(
                                "E0305",
                                format!(
                                    "`{path}` row {line_no}, column {}: {v} is not a finite number",
                                    col + 1
                                ),
                                span,
                            )
                            .with_label("NaN or infinity in data")
                            .with_help("data must be finite numbers; clean the file"),
                        );
                    }
                    Err(_) => {
                        errors += 1;
                        let shown: String = cell.chars().take(20).collect();
                        let hint = if line_no == 1 && !header {
                            "if the first line is a header, write `csv(..., header = true)`"
                        } else {
                            "every cell must be a number"
                        };
                        self.error(
                            Diagnostic::error(
                                "E0304",
                                format!(
                                    "`{path}` row {line_no}, column {}: `{shown}` is not a number",
                                    col + 1
                                ),
                                span,
                            )
                            .with_label("non-numeric cell")
                            .with_help(hint),
                        );
                    }
                }
                if errors >= MAX_CSV_ERRORS {
                    return None;
                }
            }
            rows += 1;
        }
        if errors > 0 {
            return None;
        }
        let Some((cells, _)) = width else {
            self.error(
                Diagnostic::error(
                    "E0308",
                    format!("data file `{path}` holds no numbers"),
                    span,
                )
                .with_label("empty csv file")
                .with_help("a csv file holds rows of numbers separated by commas"),
            );
            return None;
        };
        let cols = cols.map_or(cells, |(a, b, _)| (b - a) as usize);
        self.data_bytes += values.len() as u64 * 8;
        Some(Table { rows, cols, values })
    }
}
