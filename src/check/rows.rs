//! Box-call data arguments that read rows of a matrix data item: `X[i]` (row i, a vector)
//! and `X[a..b]` (rows a..b-1, a matrix), with indices in loop variables and consts.
//! Resolved once per statement (`X` must be one matrix data item: `X[t]` on a data family
//! is a member, see `composite.rs`), bounds checked per iteration; each distinct row range
//! is one data item, a view of `X`'s numbers ([`Checker::row_view`]), so a million boxes
//! reading a million rows copy nothing.

use super::consts::LoopEnv;
use super::program::DataId;
use super::{Checker, DataEntry};
use crate::diagnostic::{Diagnostic, Span};
use crate::name::counted;
use crate::shape::Shape;
use crate::syntax::ast;

/// Which rows a data argument reads, as written.
#[derive(Clone, Copy)]
pub(super) enum RowsPlan<'a> {
    /// `X[i]`: one row.
    One(&'a ast::Expr),
    /// `X[a..b]`: rows a..b-1.
    Range(&'a ast::RangeExpr),
}

impl Checker<'_> {
    /// The matrix data item `name` whose rows a box call's data argument `X[i]` or
    /// `X[a..b]` reads; `None` (reported) when `name` has no rows (a vector, a scalar, or
    /// a data family given a row range) or failed to load (reported where it is declared).
    pub(super) fn rows_parent(&mut self, name: &str, span: Span) -> Option<DataId> {
        let written = self.snippet(span);
        let id = match self.data_names.get(name)? {
            DataEntry::Single(id) => *id,
            DataEntry::Family(_) => {
                self.error(
                    Diagnostic::error(
                        "E0414",
                        format!("`{name}` is a data family: `{written}` reads rows of one matrix data item"),
                        span,
                    )
                    .with_label("rows of a family")
                    .with_help(format!(
                        "pass a member `{name}[t]`, or declare the family's members as rows: `data {name}[t] = csv(\"f.csv\", rows = t..t + 1) for t in 0..n;`"
                    )),
                );
                return None;
            }
            DataEntry::Failed => return None,
        };
        let shape = self.data[id.0 as usize].value.shape;
        if let Shape::Matrix(..) = shape {
            return Some(id);
        }
        self.error(
            Diagnostic::error(
                "E0414",
                format!("`{name}` is {shape}, not a matrix: `{written}` reads rows of a matrix"),
                span,
            )
            .with_label(format!("`{name}` has no rows"))
            .with_help(format!(
                "pass `{name}` whole, or declare it with rows, `data {name}: real[m, n] = ...;`"
            )),
        );
        None
    }

    /// The data item of the rows a data argument reads in one iteration (`env`): a view
    /// of `parent`, made once. `None` (reported) for rows out of bounds, empty or reversed.
    pub(super) fn rows_arg(
        &mut self,
        parent: DataId,
        name: &str,
        rows: RowsPlan,
        span: Span,
        env: &LoopEnv,
    ) -> Option<DataId> {
        let (start, end, single) = match rows {
            RowsPlan::One(index) => {
                let i = self.const_int(index, env, "a row index")?;
                (i, i.saturating_add(1), true)
            }
            RowsPlan::Range(range) => {
                let a = self.const_int(&range.start, env, "a row bound");
                let b = self.const_int(&range.end, env, "a row bound");
                (a?, b?, false)
            }
        };
        let Shape::Matrix(m, _) = self.data[parent.0 as usize].value.shape else {
            return None;
        };
        if start >= 0 && start < end && end as u64 <= m as u64 {
            return self.row_view(parent, (start as usize, end as usize), single, span);
        }
        let at = if !env.is_empty() {
            let values: Vec<String> = env.iter().map(|(n, v)| format!("{n} = {v}")).collect();
            format!("where {}", values.join(", "))
        } else if end <= start && !single {
            "empty row range".to_string()
        } else {
            "out of bounds".to_string()
        };
        let (message, help) = if single {
            (
                format!(
                    "row {start} of `{name}` is out of bounds: `{name}` has {}",
                    counted(m, "row")
                ),
                format!("rows are counted from 0: index `{name}` with values in 0..{m} (check the loop's range)"),
            )
        } else if end <= start {
            (
                format!("rows {start}..{end} of `{name}` are empty"),
                "write a row range `a..b` with a < b: it reads rows a to b - 1".to_string(),
            )
        } else {
            (
                format!(
                    "rows {start}..{end} of `{name}` are out of bounds: `{name}` has {}",
                    counted(m, "row")
                ),
                format!(
                    "rows are counted from 0: use ranges inside 0..{m} (check the loop's range)"
                ),
            )
        };
        self.error(
            Diagnostic::error("E0413", message, span)
                .with_label(at)
                .with_help(help),
        );
        None
    }
}
