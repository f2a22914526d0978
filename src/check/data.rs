//! `data` items: inline literals and csv files, loaded at check time.
//!
//! CSV rules: cells are separated by `,`; blank lines are skipped; `header = true` skips the
//! first line; `cols = a..b` keeps columns a..b-1 (0-based, half-open); `rows = a..b` keeps
//! data rows a..b-1 (counted from 0 after the header and blank lines). Every kept cell
//! must be a finite number. A file is read and parsed once per (path, header, cols) however
//! many items use it (`data_cache.rs`). Row and column numbers in messages are 1-based and count lines
//! as they are in the file (the header included). A table with one row or one column is a
//! vector (one cell: a scalar); a typed declaration `real[1, n]` or `real[n, 1]` keeps it
//! a matrix.

use super::consts::LoopEnv;
use super::human_bytes;
use super::program::{DataId, DataItem, DataValue, DataValues};
use super::{Checker, DataEntry};
use crate::diagnostic::{Diagnostic, Span};
use crate::name::{counted, IndexedName};
use crate::shape::Shape;
use crate::syntax::ast::{self, ExprKind, StringPart, ValueKind};
use std::borrow::Cow;
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// A loaded table before it is given a shape.
#[derive(Clone)]
pub(crate) struct Table {
    pub rows: usize,
    pub cols: usize,
    pub values: DataValues,
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

/// The evaluated options of a `csv(...)` call.
pub(crate) struct CsvOptions<'s> {
    /// The written path, interpolated.
    pub path: Cow<'s, str>,
    /// Where the path is written.
    pub path_span: Span,
    /// `header = true`: the first line is skipped.
    pub header: bool,
    /// `cols = a..b`, with its span.
    pub cols: Option<(i64, i64, Span)>,
    /// `rows = a..b`, with its span.
    pub rows: Option<(i64, i64, Span)>,
}

/// The most errors reported for one csv file.
const MAX_CSV_ERRORS: usize = 5;

impl Checker<'_> {
    /// Checks and loads one `data` item (all members of a family).
    pub(crate) fn data_item(&mut self, item: &ast::DataItem) {
        if let Some(domain) = &item.domain {
            self.domain_on_data(domain, &format!("data `{}`", item.name.name));
        }
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
        self.data_family(item, family, declared);
    }

    pub(crate) fn push_data(&mut self, name: IndexedName, value: DataValue, span: Span) -> DataId {
        self.data.push(DataItem {
            name,
            value,
            span,
            rows_of: None,
        });
        DataId(self.data.len() as u32 - 1)
    }

    /// The value of a data item (one family member when `env` binds the index).
    pub(crate) fn data_value(
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
            values: table.values,
        })
    }

    /// An inline literal `[1, 2; 3, 4]`, `[1, 2, 3]` or a number.
    fn literal_table(&mut self, expr: &ast::Expr, env: &LoopEnv) -> Option<Table> {
        let ExprKind::Matrix(rows) = &expr.kind else {
            let value = self.const_eval(expr, env)?;
            return Some(Table {
                rows: 1,
                cols: 1,
                values: DataValues::from(Arc::from([value])),
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
                            "row {} of the literal has {}, the first row has {cols}",
                            r + 1,
                            counted(row.len(), "entry")
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
        ok.then(|| Table {
            rows: rows.len(),
            cols,
            values: DataValues::from(Arc::<[f64]>::from(values)),
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

    /// `csv("file", header = true, cols = a..b, rows = a..b)`: its table.
    pub(crate) fn csv_call(
        &mut self,
        call_span: Span,
        args: &[ast::Arg],
        env: &LoopEnv,
    ) -> Option<Table> {
        let options = self.csv_options(call_span, args, env)?;
        let table = self.cached_csv(
            &options.path,
            options.path_span,
            options.header,
            options.cols,
        )?;
        self.keep_rows(table, options.rows, &options.path)
    }

    /// The options of a `csv(...)` call, evaluated in `env` (reported when bad).
    pub(crate) fn csv_options<'s>(
        &mut self,
        call_span: Span,
        args: &'s [ast::Arg],
        env: &LoopEnv,
    ) -> Option<CsvOptions<'s>> {
        super::data_cache::count_csv_options();
        let mut path = None;
        let mut header = false;
        let mut cols = None;
        let mut rows = None;
        let mut ok = true;
        for (i, arg) in args.iter().enumerate() {
            // Each option may be given once (no allocation: a family calls this per member).
            if let Some(n) = &arg.name {
                let earlier = args.get(..i).unwrap_or(&[]).iter();
                let first = earlier
                    .filter_map(|a| a.name.as_ref())
                    .find(|g| g.name == n.name)
                    .map(|g| g.span);
                if let Some(first) = first {
                    self.error(
                        Diagnostic::error(
                            "E0310",
                            format!("`csv` option `{}` is given twice", n.name),
                            n.span,
                        )
                        .with_label("repeated option")
                        .with_secondary(first, "first given here")
                        .with_help(format!("give `{}` once", n.name)),
                    );
                    ok = false;
                    continue;
                }
            }
            match (&arg.name, &arg.value.kind) {
                (None, ValueKind::Str(lit)) if i == 0 => {
                    let text = match lit.parts.as_slice() {
                        [StringPart::Text(t)] => Cow::Borrowed(t.as_str()),
                        _ => Cow::Owned(self.interpolate(lit, env)?),
                    };
                    path = Some((text, lit.span))
                }
                (Some(n), ValueKind::Bool(b)) if n.name == "header" => header = *b,
                (Some(n), ValueKind::Range(r)) if n.name == "cols" || n.name == "rows" => {
                    let what = if n.name == "cols" {
                        "a column bound"
                    } else {
                        "a row bound"
                    };
                    let a = self.const_int(&r.start, env, what);
                    let b = self.const_int(&r.end, env, what);
                    match (a, b) {
                        (Some(a), Some(b)) if n.name == "cols" => cols = Some((a, b, r.span)),
                        (Some(a), Some(b)) => rows = Some((a, b, r.span)),
                        _ => ok = false,
                    }
                }
                (Some(n), _) if n.name == "header" || n.name == "cols" || n.name == "rows" => {
                    let (needs, example) = match n.name.as_str() {
                        "header" => ("`true` or `false`", "header = true"),
                        "cols" => ("a column range `a..b`", "cols = 1..3"),
                        _ => ("a row range `a..b`", "rows = 0..100"),
                    };
                    self.error(
                        Diagnostic::error(
                            "E0310",
                            format!(
                                "`csv` option `{}` needs {needs}, found `{}`",
                                n.name,
                                self.snippet(arg.value.span)
                            ),
                            arg.value.span,
                        )
                        .with_label(format!("not {needs}"))
                        .with_help(format!("write `{example}`")),
                    );
                    ok = false;
                }
                _ => {
                    let what = arg
                        .name
                        .as_ref()
                        .map_or("this argument".to_string(), |n| format!("`{}`", n.name));
                    self.error(
                        Diagnostic::error("E0310", format!("`csv` does not take {what}"), arg.value.span)
                            .with_label("unexpected argument")
                            .with_help("write `csv(\"file.csv\")`, optionally with `header = true`, `cols = a..b` and `rows = a..b`"),
                    );
                    ok = false;
                }
            }
        }
        let Some((path, path_span)) = path else {
            self.error(
                Diagnostic::error("E0310", "`csv` needs a file name", call_span)
                    .with_label("no file name")
                    .with_help("write `csv(\"file.csv\")`; the path is relative to the data root (the .opt file's directory)"),
            );
            return None;
        };
        ok.then_some(CsvOptions {
            path,
            path_span,
            header,
            cols,
            rows,
        })
    }

    /// The data root: `csv(...)` paths are relative to it.
    pub(crate) fn data_root(&self) -> &Path {
        self.options
            .data_root
            .as_deref()
            .unwrap_or(&self.options.base_dir)
    }

    /// The file a csv path names, canonical, after the data root's rules (see
    /// `docs/cli.md`): no absolute path, no `..`, no symlink leading out of the root,
    /// unless `allow_any_path`. Nothing is opened.
    pub(crate) fn resolve_data_path(
        &self,
        path: &str,
        span: Span,
    ) -> Result<PathBuf, Box<Diagnostic>> {
        let root = self.data_root();
        let shown = shown_path(path);
        let written = Path::new(path);
        let confined = !self.options.allow_any_path;
        let outside = |why: &str, label: &str| {
            Box::new(
                Diagnostic::error(
                    "E0311",
                    format!("data file `{shown}` {why}"),
                    span,
                )
                .with_label(label.to_string())
                .with_help(format!(
                    "csv paths are relative to the data root `{}` and stay inside it; move the file there, or choose the root with --data-root (reading any path: --allow-any-path)",
                    shown_path(&root.display().to_string())
                )),
            )
        };
        if confined {
            if written.has_root()
                || written
                    .components()
                    .any(|c| matches!(c, Component::Prefix(_) | Component::RootDir))
            {
                return Err(outside(
                    "is an absolute path, outside the data root",
                    "absolute path",
                ));
            }
            if written.components().any(|c| c == Component::ParentDir) {
                return Err(outside(
                    "goes up with `..`, out of the data root",
                    "`..` in a data path",
                ));
            }
        }
        let full = root.join(written);
        let canonical_root = std::fs::canonicalize(root);
        let inside = |p: &Path| {
            canonical_root
                .as_ref()
                .is_ok_and(|r| std::fs::canonicalize(p).is_ok_and(|p| p.starts_with(r)))
        };
        let leads_out = || {
            outside(
                "leads out of the data root through a symbolic link",
                "symbolic link out of the data root",
            )
        };
        let canonical = match std::fs::canonicalize(&full) {
            Ok(canonical) => canonical,
            Err(err) => {
                // A missing file behind a link out of the root is refused like an existing
                // one: whether files exist outside the root is not told.
                let existing = full.ancestors().skip(1).find(|a| a.exists());
                if confined && existing.is_some_and(|a| !inside(a)) {
                    return Err(leads_out());
                }
                return Err(Box::new(
                    Diagnostic::error(
                        "E0301",
                        format!("cannot read data file `{shown}`: {err}"),
                        span,
                    )
                    .with_label(format!("looked for {}", shown_path(&full.display().to_string())))
                    .with_help("csv paths are relative to the data root: the directory of the .opt file, or --data-root"),
                ));
            }
        };
        if confined && !inside(&canonical) {
            return Err(leads_out());
        }
        Ok(canonical)
    }

    /// A diagnostic for a data file that is not a regular file.
    fn not_regular(shown: &str, span: Span, file_type: std::fs::FileType) -> Diagnostic {
        Diagnostic::error(
            "E0312",
            format!(
                "data file `{shown}` is {}, not a regular file",
                file_kind(file_type)
            ),
            span,
        )
        .with_label("not a regular file")
        .with_help("csv(...) reads regular files only (no devices, pipes or directories); save the data to a file")
    }

    /// A diagnostic for a data file over the size limit.
    /// `size`: the file's size from its metadata, `None` when reading went past the limit.
    fn too_large(&self, shown: &str, span: Span, size: Option<u64>) -> Diagnostic {
        let max = self.options.max_data_bytes;
        let has = match size {
            Some(size) => format!("has {size} bytes"),
            None => "holds more bytes than its size says".to_string(),
        };
        Diagnostic::error(
            "E0313",
            format!(
                "data file `{shown}` {has}, more than the limit of {max} bytes ({})",
                human_bytes(max as f64)
            ),
            span,
        )
        .with_label("data file too large")
        .with_help("use a smaller file, or raise the limit with --max-data-bytes")
    }

    /// Opens and reads a data file, `canonical` as [`Checker::resolve_data_path`] made it
    /// from the written `path`: a regular file within `max_data_bytes` (checked before
    /// opening, on the open file, and while reading) whose loading fits the memory limit.
    fn read_data_file(&mut self, canonical: &Path, path: &str, span: Span) -> Option<Vec<u8>> {
        let max = self.options.max_data_bytes;
        let shown = shown_path(path);
        let unreadable = |err: std::io::Error| {
            Diagnostic::error(
                "E0301",
                format!("cannot read data file `{shown}`: {err}"),
                span,
            )
            .with_label(format!(
                "reading {}",
                shown_path(&canonical.display().to_string())
            ))
            .with_help("check the file's permissions")
        };
        // The metadata first: opening a FIFO without a writer would block.
        let meta = match std::fs::metadata(canonical) {
            Ok(meta) => meta,
            Err(err) => {
                self.error(unreadable(err));
                return None;
            }
        };
        if !meta.is_file() {
            self.error(Self::not_regular(&shown, span, meta.file_type()));
            return None;
        }
        if meta.len() > max {
            self.error(self.too_large(&shown, span, Some(meta.len())));
            return None;
        }
        if !self.data_fits(&shown, span, meta.len()) {
            return None;
        }
        super::data_cache::count_read();
        let mut file = match open_no_block(canonical) {
            Ok(file) => file,
            Err(err) => {
                self.error(unreadable(err));
                return None;
            }
        };
        // The file may have been replaced since: check what was opened.
        match file.metadata() {
            Ok(meta) if !meta.is_file() => {
                self.error(Self::not_regular(&shown, span, meta.file_type()));
                return None;
            }
            Ok(meta) if meta.len() > max => {
                self.error(self.too_large(&shown, span, Some(meta.len())));
                return None;
            }
            Ok(_) => {}
            Err(err) => {
                self.error(unreadable(err));
                return None;
            }
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
        if let Err(err) = (&mut file)
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
        {
            self.error(unreadable(err));
            return None;
        }
        if bytes.len() as u64 > max {
            self.error(self.too_large(&shown, span, None));
            return None;
        }
        // A file that grew (or whose size the system does not report, as in /proc).
        if bytes.len() as u64 > meta.len() && !self.data_fits(&shown, span, bytes.len() as u64) {
            return None;
        }
        Some(bytes)
    }

    /// Whether loading a csv file of `size` bytes fits the memory limit with the data
    /// loaded so far; reports E0601 if not.
    fn data_fits(&mut self, shown: &str, span: Span, size: u64) -> bool {
        let bound = load_bound(size);
        if self.data_bytes.saturating_add(bound) > self.options.memory_limit_bytes {
            self.memory_error(span, &format!("data file `{shown}`"), bound as f64);
            return false;
        }
        true
    }

    /// Reads and parses a csv file (`canonical`, written `path`); see the module docs.
    pub(crate) fn load_csv(
        &mut self,
        canonical: &Path,
        path: &str,
        span: Span,
        header: bool,
        cols: Option<(i64, i64, Span)>,
    ) -> Option<Table> {
        let bytes = self.read_data_file(canonical, path, span)?;
        let shown = shown_path(path);
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            Err(err) => {
                // Nothing of the file is shown: it may not be meant as text at all.
                self.error(
                    Diagnostic::error(
                        "E0301",
                        format!(
                            "data file `{shown}` is not UTF-8 at byte {}",
                            err.valid_up_to()
                        ),
                        span,
                    )
                    .with_label("not a text file")
                    .with_help("a csv file is UTF-8 text: numbers separated by commas"),
                );
                return None;
            }
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // The rows that hold data: not blank, not the header.
        let data_lines = || {
            text.lines()
                .enumerate()
                .filter(|(_, line)| !line.trim().is_empty())
                .skip(usize::from(header))
        };
        // Count the cells first, so the values are allocated once at their final size.
        let count: usize = data_lines()
            .map(|(_, line)| {
                let cells = line.bytes().filter(|&b| b == b',').count() + 1;
                match cols {
                    Some((a, b, _)) => {
                        (b.clamp(0, cells as i64) - a.clamp(0, cells as i64)).max(0) as usize
                    }
                    None => cells,
                }
            })
            .sum();
        let mut values: Arc<[f64]> = std::iter::repeat(0.0).take(count).collect();
        let mut pushed = 0;
        let slots = Arc::get_mut(&mut values).unwrap_or(&mut []);
        let mut width: Option<(usize, usize)> = None; // (cells per row, line of the first row)
        let mut rows = 0;
        let mut errors = 0;
        for (line_index, line) in data_lines() {
            let line_no = line_index + 1;
            let cells = line.split(',').count();
            match width {
                None => width = Some((cells, line_no)),
                Some((w, first)) if w != cells => {
                    errors += 1;
                    self.error(
                        Diagnostic::error(
                            "E0302",
                            format!(
                                "`{shown}` row {line_no} has {}, row {first} has {w}",
                                counted(cells, "cell")
                            ),
                            span,
                        )
                        .with_label("ragged csv file")
                        .with_help(format!(
                            "give row {line_no} of `{shown}` {}",
                            counted(w, "cell")
                        )),
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
                                format!(
                                    "columns {a}..{b} do not fit `{shown}`, which has {}",
                                    counted(cells, "column")
                                ),
                                cspan,
                            )
                            .with_label("column range out of bounds")
                            .with_help(format!(
                                "columns are counted from 0; use a range inside 0..{cells}"
                            )),
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
                    Ok(v) if v.is_finite() => {
                        if let Some(slot) = slots.get_mut(pushed) {
                            *slot = v;
                        }
                        pushed += 1;
                    }
                    Ok(v) => {
                        errors += 1;
                        self.error(
                            Diagnostic::error(
                                "E0305",
                                format!(
                                    "`{shown}` row {line_no}, column {}: {v} is not a finite number",
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
                        let hint = if line_no == 1 && !header {
                            "if the first line is a header, write `csv(..., header = true)`"
                        } else {
                            "every cell must be a number"
                        };
                        self.error(
                            Diagnostic::error(
                                "E0304",
                                format!(
                                    "`{shown}` row {line_no}, column {}: `{}` is not a number",
                                    col + 1,
                                    shown_cell(cell)
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
                    format!("data file `{shown}` holds no numbers"),
                    span,
                )
                .with_label("empty csv file")
                .with_help("a csv file holds rows of numbers separated by commas"),
            );
            return None;
        };
        if pushed != values.len() {
            // Not reached (every counted cell of a good file is a number); kept exact anyway.
            values = values.get(..pushed).unwrap_or(&[]).into();
        }
        let cols = cols.map_or(cells, |(a, b, _)| (b - a) as usize);
        self.data_bytes += values.len() as u64 * 8;
        Some(Table {
            rows,
            cols,
            values: values.into(),
        })
    }
}

/// The memory that loading a csv file of `size` bytes may need at its peak: the text
/// (read once) and the parsed values, 8 bytes per number. A number takes at least two
/// bytes of the file with its separator, so at most `4 * size + 8` bytes of values:
/// 5 bytes per file byte in all (`docs/errors.md`, memory estimate).
pub(crate) fn load_bound(size: u64) -> u64 {
    size.saturating_mul(5).saturating_add(8)
}

/// A csv cell as shown in a message: escaped (`escape_debug`) and cut after 40 characters.
pub(crate) fn shown_cell(cell: &str) -> String {
    const SHOWN: usize = 40;
    let mut shown: String = cell
        .chars()
        .take(SHOWN)
        .flat_map(char::escape_debug)
        .collect();
    if cell.chars().nth(SHOWN).is_some() {
        shown.push_str("...");
    }
    shown
}

/// A path as shown in a message: control characters escaped (`\u{1b}`), the rest as is.
pub(crate) fn shown_path(path: &str) -> String {
    path.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// "a directory", "a FIFO", ...: what a file that is not regular is.
fn file_kind(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Opens a file for reading without blocking (a FIFO swapped in after the metadata check
/// opens at once instead of waiting for a writer) and without following a final symlink.
fn open_no_block(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::fs::OpenOptionsExt;
        const O_NONBLOCK: i32 = 0o4000;
        const O_NOFOLLOW: i32 = 0o400000;
        options.custom_flags(O_NONBLOCK | O_NOFOLLOW);
    }
    #[cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    ))]
    {
        use std::os::unix::fs::OpenOptionsExt;
        const O_NONBLOCK: i32 = 0x0004;
        const O_NOFOLLOW: i32 = 0x0100;
        options.custom_flags(O_NONBLOCK | O_NOFOLLOW);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use crate::check::{check_source, CheckOptions};
    use crate::diagnostic::SourceFile;
    use std::path::PathBuf;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("catopt-data-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn codes(text: &str, options: &CheckOptions) -> Vec<&'static str> {
        let outcome = check_source(SourceFile::new("f.opt", text), options);
        outcome.report.diagnostics.iter().map(|d| d.code).collect()
    }

    #[test]
    fn a_family_is_charged_its_files_sizes_before_any_is_read() {
        let dir = temp_dir("family");
        // 1000 bytes that are not numbers: reading any member would report E0304.
        for t in 0..1000 {
            std::fs::write(dir.join(format!("big{t}.csv")), "a,".repeat(500)).unwrap();
        }
        let options = CheckOptions {
            base_dir: dir.clone(),
            memory_limit_bytes: 1 << 20,
            ..CheckOptions::default()
        };
        let text = "data X[t] = csv(\"big{t}.csv\") for t in 0..1000;\n";
        assert_eq!(codes(text, &options), ["E0601"]);
        let outcome = check_source(SourceFile::new("f.opt", text), &options);
        let message = &outcome.report.diagnostics[0].message;
        assert!(message.contains("data family `X`"), "{message}");
        // One file for every member is read once, and charged once.
        let text = "data X[t] = csv(\"big0.csv\") for t in 0..1000;\n";
        assert_eq!(codes(text, &options), ["E0304"]);
        // A few members fit, and are read.
        let text = "data X[t] = csv(\"big{t}.csv\") for t in 0..3;\n";
        assert_eq!(codes(text, &options), ["E0304"]);
        for t in 0..3 {
            std::fs::write(
                dir.join(format!("big{t}.csv")),
                format!("{}1\n", "1,".repeat(499)),
            )
            .unwrap();
        }
        assert!(codes(text, &options).is_empty());
    }

    #[test]
    fn a_file_is_charged_five_bytes_per_byte_before_reading() {
        let dir = temp_dir("single");
        // 1000 bytes, 500 numbers: the most numbers 1000 bytes can hold.
        std::fs::write(dir.join("a.csv"), format!("{}1\n", "1,".repeat(499))).unwrap();
        let text = "data A = csv(\"a.csv\");\n";
        let options = |limit| CheckOptions {
            base_dir: dir.clone(),
            memory_limit_bytes: limit,
            ..CheckOptions::default()
        };
        assert!(codes(text, &options(5 * 1000 + 8)).is_empty());
        assert_eq!(codes(text, &options(5 * 1000 + 7)), ["E0601"]);
    }

    #[test]
    fn cells_are_escaped_and_truncated() {
        assert_eq!(super::shown_cell("a\u{1b}[0m"), r"a\u{1b}[0m");
        let long = "x".repeat(50);
        assert_eq!(super::shown_cell(&long), format!("{}...", "x".repeat(40)));
    }
}
