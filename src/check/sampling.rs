//! Sampled data (docs/language.md, "Stochastic gradients"): the `sample` mark on an
//! objective's data parameters, and the solve settings `batch`, `sampling` and
//! `full_every`, checked against the composite they solve.
//!
//! The rules checked here, each a coded error:
//! - `sample` marks data parameters only (E0230), and only vectors or matrices: a sampled
//!   parameter is a set of rows (a vector's rows are its entries) (E0231);
//! - the sampled parameters of one objective have one row count, since each draw picks the
//!   same rows of all of them (E0232);
//! - `batch` needs sampled data in some box of the composite (E0520) and may not exceed the
//!   rows of any sampled objective it reaches (E0521: an error, not a clamp, so that a
//!   `batch` never silently means the full data);
//! - `sampling` is `shuffle` or `replace` (E0522); `sampling` and `full_every` mean nothing
//!   without `batch` (E0523);
//! - `tolerance` and `rel_tolerance` are no stopping rules for minibatches, whose
//!   gradients and objectives are noisy estimates (E0524).

use super::program::{Callee, Composite, Objective, Sampling, SamplingOrder};
use super::Checker;
use crate::diagnostic::{Diagnostic, Span};
use crate::shape::Shape;
use crate::syntax::ast::{self, ValueKind};

/// The sampling orders, as written.
pub const SAMPLING_ORDERS: [&str; 2] = ["shuffle", "replace"];

impl SamplingOrder {
    /// The order written `name` (`shuffle` or `replace`).
    pub fn from_name(name: &str) -> Option<SamplingOrder> {
        match name {
            "shuffle" => Some(SamplingOrder::Shuffle),
            "replace" => Some(SamplingOrder::Replace),
            _ => None,
        }
    }

    /// Its name, as a solve block writes it.
    pub fn name(self) -> &'static str {
        match self {
            SamplingOrder::Shuffle => "shuffle",
            SamplingOrder::Replace => "replace",
        }
    }
}

/// The rows of a sampled data parameter of this shape (`None` for a scalar: no rows).
pub fn rows_of(shape: Shape) -> Option<usize> {
    match shape {
        Shape::Scalar => None,
        Shape::Vector(n) => Some(n),
        Shape::Matrix(rows, _) => Some(rows),
    }
}

/// The sampling settings of a solve block as they are written, before they are checked
/// against the composite.
#[derive(Default)]
pub(crate) struct SamplingSettings {
    pub(crate) batch: Option<(u64, Span)>,
    pub(crate) order: Option<(SamplingOrder, Span)>,
    pub(crate) full_every: Option<(u64, Span)>,
}

impl Checker<'_> {
    /// Checks the `sample` marks of an objective's ports and data parameters (the data
    /// parameters' shapes as resolved); returns which data parameters are sampled, or
    /// `None` after an error.
    pub(crate) fn sampled_params(
        &mut self,
        item: &ast::ObjectiveItem,
        shapes: &[Shape],
    ) -> Option<Vec<bool>> {
        let mut ok = true;
        for port in &item.ports {
            if let Some(mark) = port.sample {
                self.error(
                    Diagnostic::error(
                        "E0230",
                        format!(
                            "port `{}` of `{}` is marked `sample`, but only data parameters \
                             can be sampled",
                            port.name.name, item.name.name
                        ),
                        mark,
                    )
                    .with_label("on a port")
                    .with_help(
                        "ports are decision variables; move the data after the `;` in the \
                         header (`objective f(w: real[3]; X: real[100, 3] sample)`)",
                    ),
                );
                ok = false;
            }
        }
        let mut sampled = Vec::with_capacity(item.data_params.len());
        let mut first: Option<(&str, usize, Span)> = None;
        for (param, &shape) in item.data_params.iter().zip(shapes) {
            let Some(mark) = param.sample else {
                sampled.push(false);
                continue;
            };
            sampled.push(true);
            let Some(rows) = rows_of(shape) else {
                self.error(
                    Diagnostic::error(
                        "E0231",
                        format!(
                            "data parameter `{}` of `{}` is a scalar and has no rows to sample",
                            param.name.name, item.name.name
                        ),
                        mark,
                    )
                    .with_label("a scalar")
                    .with_help(
                        "`sample` marks a vector (its entries are the rows) or a matrix; \
                         remove `sample` here",
                    ),
                );
                ok = false;
                continue;
            };
            match first {
                None => first = Some((&param.name.name, rows, param.span)),
                Some((name, first_rows, first_span)) if first_rows != rows => {
                    self.error(
                        Diagnostic::error(
                            "E0232",
                            format!(
                                "the sampled data parameters of `{}` differ in their rows: \
                                 `{name}` has {first_rows}, `{}` has {rows}",
                                item.name.name, param.name.name
                            ),
                            param.span,
                        )
                        .with_label(format!("{rows} rows"))
                        .with_secondary(first_span, format!("{first_rows} rows"))
                        .with_help(
                            "each draw picks the same rows of every sampled parameter of a \
                             box, so they need one row count; sample only the parameters \
                             that are rows of one data set",
                        ),
                    );
                    ok = false;
                }
                Some(_) => {}
            }
        }
        ok.then_some(sampled)
    }

    /// `batch = B;` (a positive integer).
    pub(crate) fn batch_setting(&mut self, value: &ast::Value) -> Option<(u64, Span)> {
        self.count(value, "batch", 1).map(|b| (b, value.span))
    }

    /// `full_every = N;` (a positive integer).
    pub(crate) fn full_every_setting(&mut self, value: &ast::Value) -> Option<(u64, Span)> {
        self.count(value, "full_every", 1).map(|n| (n, value.span))
    }

    /// `sampling = shuffle | replace;`
    pub(crate) fn sampling_setting(&mut self, value: &ast::Value) -> Option<(SamplingOrder, Span)> {
        let written = match &value.kind {
            ValueKind::Expr(ast::Expr {
                kind: ast::ExprKind::Name(name),
                ..
            }) => Some(name.as_str()),
            _ => None,
        };
        match written.and_then(SamplingOrder::from_name) {
            Some(order) => Some((order, value.span)),
            None => {
                let found = self.snippet(value.span);
                let help = match written.and_then(|w| super::closest(w, SAMPLING_ORDERS.iter().copied())) {
                    Some(best) => format!("did you mean `{best}`? Write `sampling = shuffle;` (each epoch a random permutation of the rows, cut into batches) or `sampling = replace;` (rows drawn with replacement)"),
                    None => "write `sampling = shuffle;` (each epoch a random permutation of the rows, cut into batches) or `sampling = replace;` (rows drawn with replacement)".to_string(),
                };
                self.error(
                    Diagnostic::error(
                        "E0522",
                        format!("`sampling` is `shuffle` or `replace`, found `{found}`"),
                        value.span,
                    )
                    .with_label("not a sampling order")
                    .with_help(help),
                );
                None
            }
        }
    }

    /// The checked sampling of a solve block on `composite` (whose `tolerance` and
    /// `rel_tolerance` settings are `stopping_rules`): `None` (full data) without `batch`;
    /// an error (`Err`) if a rule of this module is broken.
    pub(crate) fn sampling(
        &mut self,
        settings: SamplingSettings,
        composite: Option<&Composite>,
        stopping_rules: &[(&str, Span)],
    ) -> Result<Option<Sampling>, ()> {
        let Some((batch, batch_span)) = settings.batch else {
            let stray = [
                settings.order.map(|(_, span)| ("sampling", span)),
                settings.full_every.map(|(_, span)| ("full_every", span)),
            ];
            let mut ok = true;
            for (name, span) in stray.into_iter().flatten() {
                self.error(
                    Diagnostic::error(
                        "E0523",
                        format!(
                            "`{name}` is set but `batch` is not: every step uses the full data"
                        ),
                        span,
                    )
                    .with_label("no effect without `batch`")
                    .with_help(format!(
                        "add `batch = 64;` (rows drawn per box and step) to sample minibatches, \
                         or remove `{name}`"
                    )),
                );
                ok = false;
            }
            return if ok { Ok(None) } else { Err(()) };
        };
        if let Some(&(rule, span)) = stopping_rules.first() {
            self.error(
                Diagnostic::error(
                    "E0524",
                    format!("`{rule}` is set with `batch = {batch}`"),
                    span,
                )
                .with_label("not a stopping rule for minibatches")
                .with_secondary(batch_span, "minibatches")
                .with_help(format!(
                    "minibatch gradients and objectives are noisy estimates, so a minibatch \
                     run stops after `steps`; remove `{rule}` (`full_every = N` traces the \
                     full objective)"
                )),
            );
            return Err(());
        }
        let sampling = Sampling {
            batch,
            order: settings.order.map_or(SamplingOrder::Shuffle, |(o, _)| o),
            full_every: settings.full_every.map(|(n, _)| n),
            span: batch_span,
        };
        let Some(composite) = composite else {
            return Ok(Some(sampling));
        };
        let sampled = self.sampled_objectives(composite);
        if sampled.is_empty() {
            self.error(
                Diagnostic::error(
                    "E0520",
                    format!(
                        "`batch = {batch}` but no box of `{}` has sampled data",
                        composite.name
                    ),
                    batch_span,
                )
                .with_label("nothing to sample")
                .with_help(
                    "mark the data parameters whose rows are the examples with `sample` \
                     (`objective fit(w: real[64]; X: real[1797, 64] sample, y: real[1797] \
                     sample)`), or remove `batch`",
                ),
            );
            return Err(());
        }
        let mut ok = true;
        for (name, span, rows) in sampled {
            if batch > rows as u64 {
                self.error(
                    Diagnostic::error(
                        "E0521",
                        format!(
                            "`batch = {batch}` is more than the {rows} rows of `{name}`'s sampled data"
                        ),
                        batch_span,
                    )
                    .with_label("too large")
                    .with_secondary(span, format!("{rows} rows"))
                    .with_help(format!(
                        "choose `batch` of at most {rows}; to use every row each step, remove \
                         `batch`"
                    )),
                );
                ok = false;
            }
        }
        if ok {
            Ok(Some(sampling))
        } else {
            Err(())
        }
    }

    /// The objectives with sampled data that boxes of `composite` (nested composites
    /// included) instantiate, each once, in the order first met: name, where declared, rows.
    fn sampled_objectives(&self, composite: &Composite) -> Vec<(String, Span, usize)> {
        let mut seen_composites = vec![false; self.composites.len()];
        let mut seen_objectives = vec![false; self.objectives.len()];
        let mut found = Vec::new();
        let mut stack = vec![composite];
        while let Some(c) = stack.pop() {
            for callee in c.boxes.callees() {
                match callee {
                    Callee::Objective(id) => {
                        let i = id.0 as usize;
                        if seen_objectives[i] {
                            continue;
                        }
                        seen_objectives[i] = true;
                        let Some(objective) = self.objectives[i].as_ref() else {
                            continue;
                        };
                        if let Some(rows) = objective.sampled_rows() {
                            found.push((objective.name.clone(), objective.span, rows));
                        }
                    }
                    Callee::Composite(id) => {
                        let i = id.0 as usize;
                        if !seen_composites[i] {
                            seen_composites[i] = true;
                            stack.extend(self.composites[i].as_ref());
                        }
                    }
                }
            }
        }
        found
    }
}

impl Objective {
    /// The row count of this objective's sampled data parameters (one for all of them, as
    /// the checker ensures), or `None` if it has none.
    pub fn sampled_rows(&self) -> Option<usize> {
        self.data_params
            .iter()
            .find(|p| p.sampled)
            .and_then(|p| rows_of(p.shape))
    }
}

impl std::fmt::Display for Sampling {
    /// As a solve block writes it: `batch = 64, sampling = shuffle, full_every = 100`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "batch = {}, sampling = {}",
            self.batch,
            self.order.name()
        )?;
        if let Some(n) = self.full_every {
            write!(f, ", full_every = {n}")?;
        }
        Ok(())
    }
}
