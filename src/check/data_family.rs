//! Data families, `data X[t] = ... for t in a..b;`: one data item per member, pushed as
//! consecutive items and looked up without hashing ([`FamilyMembers`]). A csv family whose
//! members differ only in their rows (`csv("f.csv", rows = t..t + 1)`: the index appears
//! in `rows` alone) evaluates its options and finds its table once; each member evaluates
//! its row range and is a view of the table, so a million members cost a million views
//! and nothing per member that grows with the file or the family.

use super::estimate::mentions;
use super::program::DataId;
use super::{Checker, DataEntry};
use crate::diagnostic::{Diagnostic, Span};
use crate::name::IndexedName;
use crate::shape::Shape;
use crate::syntax::ast::{self, StringPart, ValueKind};
use std::sync::Arc;

/// The members of a data family: consecutive data items, one per index of its range
/// (looked up without hashing: a family may have a million members).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FamilyMembers {
    start: i64,
    first: u32,
    len: u32,
}

impl FamilyMembers {
    /// Member `i`, if the family has it.
    pub(crate) fn get(&self, i: i64) -> Option<DataId> {
        let k = i.checked_sub(self.start)?;
        (0..self.len as i64)
            .contains(&k)
            .then(|| DataId(self.first + k as u32))
    }

    /// The members' indices, in order.
    pub(crate) fn indices(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len as i64).map(move |k| self.start + k)
    }
}

impl Checker<'_> {
    /// Checks and loads every member of the data family `item` (after its type,
    /// `declared`); records the family (or its failure) under its name.
    pub(super) fn data_family(
        &mut self,
        item: &ast::DataItem,
        family: &ast::DataFamily,
        declared: Option<Shape>,
    ) {
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
        // A csv family is charged its files' sizes before any member is read.
        if let ValueKind::Call { name, args } = &item.source.kind {
            if name.name == "csv" {
                let bound = self.family_load_bound(args, &family.index.name, (start, end));
                if self.data_bytes.saturating_add(bound) > self.options.memory_limit_bytes {
                    self.memory_error(
                        item.source.span,
                        &format!("data family `{}` ({} members)", item.name.name, end - start),
                        bound as f64,
                    );
                    self.data_names
                        .insert(item.name.name.clone(), DataEntry::Failed);
                    return;
                }
            }
        }
        let base: Arc<str> = item.name.name.as_str().into();
        // Members are pushed one after another: member t is item `first + (t - start)`.
        let first = self.data.len() as u32;
        self.data.reserve((end - start).max(0) as usize);
        let index = family.index.name.as_str();
        let failed = match rows_only(&item.source, index) {
            Some((call_span, args, rows)) if start < end => self.rows_members(
                item,
                declared,
                (call_span, args, rows),
                (index, &base),
                (start, end),
            ),
            _ => {
                let mut failed = false;
                for t in start..end {
                    match self.data_value(item, declared, &[(index, t)]) {
                        Some(value) => {
                            self.push_data(
                                IndexedName::member(base.clone(), t),
                                value,
                                item.name.span,
                            );
                        }
                        None => failed = true,
                    }
                }
                failed
            }
        };
        let entry = if failed {
            DataEntry::Failed
        } else {
            DataEntry::Family(FamilyMembers {
                start,
                first,
                len: (end - start).max(0) as u32,
            })
        };
        self.data_names.insert(item.name.name.clone(), entry);
    }

    /// The members of a csv family that varies only in its rows (see the module docs):
    /// the options evaluated and the table found once (at the first member), then each
    /// member's rows. Whether a member failed (reported).
    fn rows_members(
        &mut self,
        item: &ast::DataItem,
        declared: Option<Shape>,
        (call_span, args, rows): (Span, &[ast::Arg], &ast::RangeExpr),
        (index, base): (&str, &Arc<str>),
        (start, end): (i64, i64),
    ) -> bool {
        let Some(options) = self.csv_options(call_span, args, &[(index, start)]) else {
            return true;
        };
        let Some(table) = self.cached_csv(
            &options.path,
            options.path_span,
            options.header,
            options.cols,
        ) else {
            return true;
        };
        let name = item.name.name.as_str();
        let declared_span = item.ty.as_ref().map(|t| t.span);
        let mut failed = false;
        for t in start..end {
            let env = [(index, t)];
            let a = self.const_int(&rows.start, &env, "a row bound");
            let b = self.const_int(&rows.end, &env, "a row bound");
            let value = match (a, b) {
                (Some(a), Some(b)) => self
                    .keep_rows(table.clone(), Some((a, b, rows.span)), &options.path)
                    .and_then(|rows| {
                        self.table_value(rows, declared, name, item.source.span, declared_span)
                    }),
                _ => None,
            };
            match value {
                Some(value) => {
                    self.push_data(IndexedName::member(base.clone(), t), value, item.name.span);
                }
                None => failed = true,
            }
        }
        failed
    }
}

/// For a csv family whose index `index` appears only in its `rows = a..b` option: the
/// call's span and arguments and that range. `None` for any other family.
fn rows_only<'s>(
    source: &'s ast::Value,
    index: &str,
) -> Option<(Span, &'s [ast::Arg], &'s ast::RangeExpr)> {
    let ValueKind::Call { name, args } = &source.kind else {
        return None;
    };
    if name.name != "csv" {
        return None;
    }
    let mut rows = None;
    for arg in args {
        let is_rows = arg.name.as_ref().is_some_and(|n| n.name == "rows");
        match &arg.value.kind {
            ValueKind::Range(range) if is_rows && rows.is_none() => rows = Some(range),
            ValueKind::Range(range) => {
                if mentions(&range.start, index) || mentions(&range.end, index) {
                    return None;
                }
            }
            ValueKind::Str(lit) => {
                let varies = lit
                    .parts
                    .iter()
                    .any(|p| matches!(p, StringPart::Interpolation(n) if n.name == index));
                if varies {
                    return None;
                }
            }
            ValueKind::Expr(e) => {
                if mentions(e, index) {
                    return None;
                }
            }
            ValueKind::Bool(_) => {}
            _ => return None,
        }
    }
    rows.map(|rows| (name.span, args.as_slice(), rows))
}

#[cfg(test)]
mod tests {
    use crate::check::data_cache::{csv_options_evaluated, files_read};
    use crate::check::{check_source, CheckOptions};
    use crate::diagnostic::SourceFile;
    use std::path::{Path, PathBuf};

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("catopt-family-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Checks `text` with data in `dir`: the error codes, the csv options evaluated and the
    /// files read.
    fn check(dir: &Path, text: &str) -> (Vec<&'static str>, u64, u64) {
        let options = CheckOptions {
            base_dir: dir.to_path_buf(),
            ..CheckOptions::default()
        };
        let (evaluated, read) = (csv_options_evaluated(), files_read());
        let outcome = check_source(SourceFile::new("f.opt", text), &options);
        let codes = outcome.report.diagnostics.iter().map(|d| d.code).collect();
        (
            codes,
            csv_options_evaluated() - evaluated,
            files_read() - read,
        )
    }

    #[test]
    fn a_family_of_rows_evaluates_its_options_once() {
        let dir = temp_dir("rows");
        let text: String = (0..3000).map(|r| format!("{r},{}\n", r % 7)).collect();
        std::fs::write(dir.join("rows.csv"), text).unwrap();
        let family = "data X[t] = csv(\"rows.csv\", header = false, rows = 2 * t..2 * t + 2) \
                      for t in 0..1500;\n";
        assert_eq!(check(&dir, family), (vec![], 1, 1));
        // Each member is still its own rows: the last is rows 2998..3000.
        let options = CheckOptions {
            base_dir: dir.clone(),
            ..CheckOptions::default()
        };
        let program = check_source(SourceFile::new("f.opt", family), &options)
            .program
            .unwrap();
        assert_eq!(program.data.len(), 1500);
        assert_eq!(
            &*program.data[1499].value.values,
            &[2998.0, 2.0, 2999.0, 3.0]
        );
        assert_eq!(program.data[1499].name.to_string(), "X[1499]");
        // A member out of the file is reported as before, with the members that fit.
        let over = "data X[t] = csv(\"rows.csv\", rows = t..t + 1) for t in 2999..3001;\n";
        assert_eq!(check(&dir, over), (vec!["E0314"], 1, 1));
        // A bad option is reported once, not once per member.
        let bad = "data X[t] = csv(\"rows.csv\", header = 1, rows = t..t + 1) for t in 0..50;\n";
        assert_eq!(check(&dir, bad), (vec!["E0310"], 1, 0));
    }

    #[test]
    fn a_family_whose_path_or_columns_vary_evaluates_each_member() {
        let dir = temp_dir("paths");
        for t in 0..3 {
            std::fs::write(dir.join(format!("task{t}.csv")), format!("{t},1\n2,{t}\n")).unwrap();
        }
        let text = "data X[t] = csv(\"task{t}.csv\", rows = 0..1) for t in 0..3;\n";
        assert_eq!(check(&dir, text), (vec![], 3, 3));
        let text =
            "data X[t] = csv(\"task0.csv\", cols = t..t + 1, rows = t..t + 1) for t in 0..2;\n";
        assert_eq!(check(&dir, text), (vec![], 2, 2));
    }
}
