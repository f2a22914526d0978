//! Each csv file is read and parsed once per check, however many data items, family
//! members or rows of items use it: parsed tables are kept per (file, `header`, `cols`),
//! and `rows = a..b`, `X[i]` and `X[a..b]` are views of those tables' numbers (no copy).
//! Paths are resolved once per written path; every limit of `data.rs` (data root, regular
//! files, size and memory) is checked when a file is first read.

use super::data::{load_bound, shown_path, Table};
use super::estimate::BYTES_PER_DATA_ITEM;
use super::program::{DataId, DataItem, DataValue, RowsOf};
use super::Checker;
use crate::diagnostic::{Diagnostic, Span};
use crate::name::{counted, IndexedName};
use crate::shape::Shape;
use crate::syntax::ast::{self, StringPart, ValueKind};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

thread_local! {
    static FILES_READ: Cell<u64> = const { Cell::new(0) };
    static CSV_OPTIONS_EVALUATED: Cell<u64> = const { Cell::new(0) };
}

/// How many data files checks on this thread have opened and read so far: a csv file used
/// by many items is read once per check (tests count reads with it).
pub fn files_read() -> u64 {
    FILES_READ.with(Cell::get)
}

/// Counts one data file opened for reading.
pub(crate) fn count_read() {
    FILES_READ.with(|n| n.set(n.get() + 1));
}

/// How many times checks on this thread have evaluated the options of a `csv(...)` call:
/// once per csv item, per member of a family whose path varies, and once for a family
/// whose members differ only in their rows (`data_family.rs`; tests count with it).
#[cfg(test)]
pub(crate) fn csv_options_evaluated() -> u64 {
    CSV_OPTIONS_EVALUATED.with(Cell::get)
}

/// Counts one evaluation of a `csv(...)` call's options.
pub(crate) fn count_csv_options() {
    CSV_OPTIONS_EVALUATED.with(|n| n.set(n.get() + 1));
}

/// The files read and the row views made so far in one check.
#[derive(Default)]
pub(crate) struct DataCache {
    /// Written path (after interpolation) to its index in `files`.
    paths: HashMap<String, u32>,
    /// Canonical paths, each resolved once.
    files: Vec<PathBuf>,
    /// Parsed tables per (file, header, cols); `None`: the file failed (reported once).
    tables: HashMap<TableKey, Option<Table>>,
    /// Files parsed at least once (their memory is charged).
    parsed: HashSet<u32>,
    /// The last written path looked up and its file (a family's members name one file
    /// in a row: no hashing for them).
    last_path: Option<(String, u32)>,
    /// The last table looked up, with its key.
    last_table: Option<(TableKey, Option<Table>)>,
    /// Single-row views (`X[i]`) made, per parent: row to item (`u32::MAX`: none yet).
    row_items: Vec<(DataId, Vec<u32>)>,
    /// Other row views made: (parent, start, end) to their item.
    views: HashMap<(u32, usize, usize), DataId>,
    /// The loaded data counted so far by [`Checker::data_bytes`].
    counted: CountedData,
}

/// The bytes of the data items counted so far, each storage once: every composite asks,
/// and only the items loaded since are looked at.
#[derive(Default)]
struct CountedData {
    /// Items looked at (a prefix of the checker's data).
    items: usize,
    /// Their bytes.
    bytes: u128,
    /// The storages counted.
    storages: HashSet<usize>,
    /// The last storage counted (a family's members share one: no hashing for them).
    last: Option<usize>,
}

/// A parsed table's key: file, header, cols.
type TableKey = (u32, bool, Option<(i64, i64)>);

impl Checker<'_> {
    /// The file a written csv path names (resolved once per path; see
    /// [`Checker::resolve_data_path`]).
    fn data_file(&mut self, path: &str, span: Span) -> Result<u32, Box<Diagnostic>> {
        if let Some((last, file)) = &self.data_cache.last_path {
            if last == path {
                return Ok(*file);
            }
        }
        if let Some(&file) = self.data_cache.paths.get(path) {
            self.data_cache.last_path = Some((path.to_string(), file));
            return Ok(file);
        }
        let canonical = self.resolve_data_path(path, span)?;
        let file = match self.data_cache.files.iter().position(|f| *f == canonical) {
            Some(file) => file as u32,
            None => {
                self.data_cache.files.push(canonical);
                self.data_cache.files.len() as u32 - 1
            }
        };
        self.data_cache.paths.insert(path.to_string(), file);
        self.data_cache.last_path = Some((path.to_string(), file));
        Ok(file)
    }

    /// Bytes of every data item loaded so far: its record (a family's members one each)
    /// and 8 per number, storage shared by several items (rows of one file) counted once;
    /// row views are counted by the estimate.
    pub(crate) fn data_bytes(&mut self) -> u128 {
        let counted = &mut self.data_cache.counted;
        for item in self.data.get(counted.items..).unwrap_or(&[]) {
            if item.rows_of.is_some() {
                continue;
            }
            counted.bytes += BYTES_PER_DATA_ITEM as u128;
            let storage = item.value.values.storage_id();
            if counted.last == Some(storage) {
                continue;
            }
            counted.last = Some(storage);
            if counted.storages.insert(storage) {
                counted.bytes += item.value.values.storage_len() as u128 * 8;
            }
        }
        counted.items = self.data.len();
        counted.bytes
    }

    /// The table of a csv file with `header` and `cols`, read and parsed on first use only.
    pub(crate) fn cached_csv(
        &mut self,
        path: &str,
        span: Span,
        header: bool,
        cols: Option<(i64, i64, Span)>,
    ) -> Option<Table> {
        let file = match self.data_file(path, span) {
            Ok(file) => file,
            Err(diagnostic) => {
                self.error(*diagnostic);
                return None;
            }
        };
        let key = (file, header, cols.map(|(a, b, _)| (a, b)));
        if let Some((last, table)) = &self.data_cache.last_table {
            if *last == key {
                return table.clone();
            }
        }
        let table = match self.data_cache.tables.get(&key) {
            Some(table) => table.clone(),
            None => {
                let canonical = self.data_cache.files[file as usize].clone();
                let table = self.load_csv(&canonical, path, span, header, cols);
                self.data_cache.parsed.insert(file);
                self.data_cache.tables.insert(key, table.clone());
                table
            }
        };
        self.data_cache.last_table = Some((key, table.clone()));
        table
    }

    /// Keeps rows `a..b` of a table (`csv(..., rows = a..b)`): a view, no copy.
    pub(crate) fn keep_rows(
        &mut self,
        table: Table,
        rows: Option<(i64, i64, Span)>,
        path: &str,
    ) -> Option<Table> {
        let Some((a, b, span)) = rows else {
            return Some(table);
        };
        let n = table.rows;
        let view = (a >= 0 && a < b && b as usize <= n)
            .then(|| {
                let (a, b) = (a as usize, b as usize);
                table.values.view(a * table.cols..b * table.cols)
            })
            .flatten();
        let Some(values) = view else {
            let shown = shown_path(path);
            let message = if b <= a {
                format!("rows {a}..{b} of `{shown}` are empty")
            } else {
                format!(
                    "rows {a}..{b} do not fit `{shown}`, which has {}",
                    counted(n, "row")
                )
            };
            self.error(
                Diagnostic::error("E0314", message, span)
                    .with_label("row range out of bounds")
                    .with_help(format!(
                        "rows are counted from 0 after the header and blank lines; use a range `a..b` with a < b inside 0..{n}"
                    )),
            );
            return None;
        };
        Some(Table {
            rows: (b - a) as usize,
            cols: table.cols,
            values,
        })
    }

    /// The memory bound of loading every member of a csv data family, from the sizes of
    /// its files, each distinct file counted once and files already read not at all (the
    /// members whose path or file is bad are left to report themselves).
    pub(crate) fn family_load_bound(
        &mut self,
        args: &[ast::Arg],
        index: &str,
        range: (i64, i64),
    ) -> u64 {
        let Some(ast::Arg {
            name: None,
            value:
                ast::Value {
                    kind: ValueKind::Str(lit),
                    span,
                },
        }) = args.first()
        else {
            return 0;
        };
        // A path without `{t}` names one file for every member.
        let varies = lit
            .parts
            .iter()
            .any(|p| matches!(p, StringPart::Interpolation(n) if n.name == index));
        let range = if varies {
            range
        } else {
            (range.0, range.0.saturating_add(1).min(range.1))
        };
        let mut files = HashSet::new();
        let mut total = 0u64;
        for t in range.0..range.1 {
            let Some(path) = self.interpolate(lit, &[(index, t)]) else {
                return 0;
            };
            let Ok(file) = self.data_file(&path, *span) else {
                continue;
            };
            if self.data_cache.parsed.contains(&file) || !files.insert(file) {
                continue;
            }
            if let Ok(meta) = std::fs::metadata(&self.data_cache.files[file as usize]) {
                if meta.is_file() {
                    total = total.saturating_add(load_bound(meta.len()));
                }
            }
        }
        total
    }

    /// The data item of rows `start..end` of `parent` (one row, a vector, when `single`):
    /// a view of the parent's numbers, made once however many boxes read it. The rows must
    /// be in bounds (the caller checks).
    pub(crate) fn row_view(
        &mut self,
        parent: DataId,
        (start, end): (usize, usize),
        single: bool,
        span: Span,
    ) -> Option<DataId> {
        let item = &self.data[parent.0 as usize];
        let Shape::Matrix(m, n) = item.value.shape else {
            return None;
        };
        let cache = &mut self.data_cache;
        let slot = if single {
            let k = match cache.row_items.iter().position(|(p, _)| *p == parent) {
                Some(k) => k,
                None => {
                    cache.row_items.push((parent, vec![u32::MAX; m]));
                    cache.row_items.len() - 1
                }
            };
            let id = *cache.row_items[k].1.get(start)?;
            if id != u32::MAX {
                return Some(DataId(id));
            }
            Some(k)
        } else {
            if let Some(&id) = cache.views.get(&(parent.0, start, end)) {
                return Some(id);
            }
            None
        };
        let values = item.value.values.view(start * n..end * n)?;
        let shape = if single {
            Shape::Vector(n)
        } else {
            Shape::Matrix(end - start, n)
        };
        let name = if single {
            IndexedName::member(item.name.base.clone(), start as i64)
        } else {
            IndexedName::plain(item.name.base.clone())
        };
        self.data.push(DataItem {
            name,
            value: DataValue { shape, values },
            span,
            rows_of: Some(RowsOf {
                parent,
                start,
                end,
                single,
            }),
        });
        let id = DataId(self.data.len() as u32 - 1);
        match slot {
            Some(k) => self.data_cache.row_items[k].1[start] = id.0,
            None => {
                self.data_cache.views.insert((parent.0, start, end), id);
            }
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::files_read;
    use crate::check::program::Program;
    use crate::check::{check_source, CheckOptions};
    use crate::diagnostic::SourceFile;
    use crate::shape::Shape;
    use std::path::{Path, PathBuf};

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("catopt-cache-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Checks `text` with data in `dir`: the program (or the error codes) and the files read.
    fn check(dir: &Path, text: &str) -> (Result<Program, Vec<&'static str>>, u64) {
        let options = CheckOptions {
            base_dir: dir.to_path_buf(),
            ..CheckOptions::default()
        };
        let before = files_read();
        let outcome = check_source(SourceFile::new("f.opt", text), &options);
        let reads = files_read() - before;
        let program = outcome
            .program
            .ok_or_else(|| outcome.report.diagnostics.iter().map(|d| d.code).collect());
        (program, reads)
    }

    fn rows_file(dir: &Path, rows: usize) {
        let text: String = (0..rows).map(|r| format!("{r},{}\n", r * 10)).collect();
        std::fs::write(dir.join("rows.csv"), text).unwrap();
    }

    #[test]
    fn a_family_of_rows_of_one_file_reads_it_once() {
        let dir = temp_dir("family");
        rows_file(&dir, 2001);
        let text = "data X[t] = csv(\"rows.csv\", rows = t..t + 1) for t in 0..2001;\n";
        let (program, reads) = check(&dir, text);
        let program = program.unwrap();
        assert_eq!(reads, 1);
        assert_eq!(program.data.len(), 2001);
        let last = &program.data[2000].value;
        assert_eq!(last.shape, Shape::Vector(2));
        assert_eq!(&*last.values, &[2000.0, 20000.0]);
        // The members share one storage.
        assert!(program.data[0]
            .value
            .values
            .shares_storage_with(&program.data[2000].value.values));
    }

    #[test]
    fn items_with_the_same_options_share_one_read_and_others_read_again() {
        let dir = temp_dir("options");
        rows_file(&dir, 10);
        let text = "data A = csv(\"rows.csv\");\ndata B = csv(\"./rows.csv\", rows = 2..5);\n\
                    data C = csv(\"rows.csv\", cols = 1..2);\n";
        let (program, reads) = check(&dir, text);
        let program = program.unwrap();
        // A and B: one read (the same file by two spellings); C's columns: a second.
        assert_eq!(reads, 2);
        assert_eq!(program.data[1].value.shape, Shape::Matrix(3, 2));
        assert_eq!(
            &*program.data[1].value.values,
            &[2.0, 20.0, 3.0, 30.0, 4.0, 40.0]
        );
        assert_eq!(program.data[2].value.shape, Shape::Vector(10));
    }

    #[test]
    fn families_of_distinct_files_read_each_file() {
        let dir = temp_dir("distinct");
        for t in 0..3 {
            std::fs::write(dir.join(format!("task{t}.csv")), format!("{t},1\n2,{t}\n")).unwrap();
        }
        let text = "data X[t] = csv(\"task{t}.csv\") for t in 0..3;\n";
        let (program, reads) = check(&dir, text);
        let program = program.unwrap();
        assert_eq!(reads, 3);
        for t in 0..3 {
            let t_value = t as f64;
            assert_eq!(program.data[t].name.to_string(), format!("X[{t}]"));
            assert_eq!(
                &*program.data[t].value.values,
                &[t_value, 1.0, 2.0, t_value]
            );
        }
    }

    #[test]
    fn rows_read_by_boxes_are_views_made_once() {
        let dir = temp_dir("views");
        rows_file(&dir, 1000);
        let text = "data X = csv(\"rows.csv\");\n\
            objective f(w: real[2]; r: real[2]) { minimize sumsq(w - r); }\n\
            objective g(w: real[2]; P: real[2, 2]) { minimize sumsq(P @ w); }\n\
            composite c() {\n\
              for i in 0..1000 { f(w[i]; X[i]); again[i]: f(w[i]; X[i]); }\n\
              for k in 0..10 { g(v[k]; X[2 * k..2 * k + 2]); }\n\
            }\n";
        let (program, reads) = check(&dir, text);
        let program = program.unwrap();
        assert_eq!(reads, 1);
        // X, then one view per distinct row (used twice each) and per slice.
        assert_eq!(program.data.len(), 1 + 1000 + 10);
        let parent = &program.data[0].value.values;
        for item in &program.data[1..] {
            assert!(item.rows_of.is_some());
            assert!(item.value.values.shares_storage_with(parent));
        }
        assert_eq!(program.data[1000].display_name(), "X[999]");
        assert_eq!(&*program.data[1000].value.values, &[999.0, 9990.0]);
        assert_eq!(program.data[1010].display_name(), "X[18..20]");
        assert_eq!(program.data[1010].value.shape, Shape::Matrix(2, 2));
        let composite = &program.composites[0];
        let (a, b) = (composite.data_args_of(6), composite.data_args_of(7));
        assert_eq!(a, b, "box f[3] and again[3] read the same row item");
    }
}

#[cfg(test)]
mod estimate_tests {
    use crate::check::estimate::{
        BYTES_PER_BOX_DATA_NUMBER, BYTES_PER_DATA_BOX, BYTES_PER_DATA_ITEM, BYTES_PER_DATA_VIEW,
    };
    use crate::check::{check_source, CheckOptions};
    use crate::diagnostic::SourceFile;

    fn estimate(dir: &std::path::Path, text: &str) -> u64 {
        let options = CheckOptions {
            base_dir: dir.to_path_buf(),
            ..CheckOptions::default()
        };
        let outcome = check_source(SourceFile::new("f.opt", text), &options);
        let program = outcome.program.expect("checks");
        program.composites[0].memory_estimate_bytes
    }

    #[test]
    fn rows_are_counted_once_and_row_items_as_records() {
        let dir =
            std::env::temp_dir().join(format!("catopt-cache-estimate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text: String = (0..1000).map(|r| format!("{r},1\n")).collect();
        std::fs::write(dir.join("rows.csv"), text).unwrap();
        let head = "data X = csv(\"rows.csv\");\n\
            data F[t] = csv(\"rows.csv\", rows = t..t + 1) for t in 0..1000;\n\
            objective f(w: real[2]; r: real[2]) { minimize sumsq(w - r); }\n";
        let by_member = estimate(
            &dir,
            &format!("{head}composite c() {{ for i in 0..1000 {{ f(w[i]; F[i]); }} }}\n"),
        );
        let by_row = estimate(
            &dir,
            &format!("{head}composite c() {{ for i in 0..1000 {{ f(w[i]; X[i]); }} }}\n"),
        );
        // The family's rows are X's numbers (counted once in both); each X[i] is a record.
        assert_eq!(by_row - by_member, 1000 * BYTES_PER_DATA_VIEW);
        let alone = estimate(
            &dir,
            "data X = csv(\"rows.csv\");\n\
             objective f(w: real[2]; r: real[2]) { minimize sumsq(w - r); }\n\
             composite c() { for i in 0..1000 { f(w[i]; X[0]); } }\n",
        );
        // Without the family and with one row for every box: the same numbers, but no
        // member records, no views and no per-box data (one box type, its data constant).
        let per_box = BYTES_PER_DATA_BOX + 2 * BYTES_PER_BOX_DATA_NUMBER;
        assert_eq!(
            by_row - alone,
            1000 * (BYTES_PER_DATA_ITEM + BYTES_PER_DATA_VIEW + per_box)
        );
    }
}
