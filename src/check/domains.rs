//! Domains (docs/language.md, "Constraints and penalties"): `in DOMAIN` on ports, private
//! variables and junction declarations, resolved to a typed [`Domain`], and a junction's
//! common domain and dual mark, unified over its declaration and the ports wired to it.
//!
//! The rules checked here, each a coded error:
//! - the domain is one of `nonneg`, `box(lo, hi)`, `simplex`, `ball(r)` (E0233, with the
//!   closest name), with its number of arguments (E0234), constant arguments (E0111),
//!   `lo <= hi` (E0235) and `r > 0` (E0236);
//! - the domain fits the variable's shape: `simplex` is a vector's (E0237);
//! - data is not a decision variable: no domain on a data parameter or data item (E0238);
//! - a junction has one domain: two different non-trivial domains from its ports or its
//!   declaration are an error naming both (E0416); the trivial domain `real` (no `in`)
//!   gives way to any other ([`Domain::unify`]);
//! - a junction is dual or primal: its ports agree (E0417).

use super::constraint_types::DOMAIN_NAMES;
use super::program::{BoxCalls, Callee, Domain, JunctionId, Junctions};
use super::{closest, Checker};
use crate::diagnostic::{Diagnostic, Span};
use crate::name::IndexedName;
use crate::shape::Shape;
use crate::syntax::ast;
use std::collections::HashMap;
use std::sync::Arc;

/// The domain and dual mark of one port of a callee.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct PortMarks {
    pub(super) domain: Domain,
    pub(super) dual: bool,
}

impl PortMarks {
    /// True for a port without a domain or `dual`: what every v0 port is.
    pub(super) fn is_plain(self) -> bool {
        self.domain.is_trivial() && !self.dual
    }
}

/// Where a junction's domain or dual mark comes from, for the error naming both.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// The junction's `where` declaration.
    Declared(Span),
    /// Port `port` of box `b` (the composite's `b`-th box).
    Port { b: usize, port: usize, span: Span },
}

/// One junction (or junction family) as the unification has seen it so far.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    domain: Option<(Domain, Origin)>,
    dual: Option<(bool, Origin)>,
}

/// The unified domain and dual mark of every junction of a composite: by junction id for
/// plain junctions, by family name for the members of a family (a family has one domain,
/// as it has one shape).
#[derive(Debug, Default)]
pub(super) struct JunctionMarks {
    plain: HashMap<u32, PortMarks>,
    families: HashMap<Arc<str>, PortMarks>,
}

impl JunctionMarks {
    /// The marks of the run of junctions starting at `first` named `name` (a family's
    /// members share the family's).
    pub(super) fn of(&self, first: JunctionId, name: &IndexedName) -> PortMarks {
        let found = match name.index {
            Some(_) => self.families.get(&*name.base),
            None => self.plain.get(&first.0),
        };
        found.copied().unwrap_or_default()
    }
}

/// What the unification reads of a composite being checked.
pub(super) struct Wired<'a> {
    /// The junctions (names; ids index them).
    pub(super) junctions: &'a Junctions,
    /// The boxes in order.
    pub(super) boxes: &'a BoxCalls,
    /// Each box's junctions, flat (see `BoxCall::junctions`).
    pub(super) box_junctions: &'a [JunctionId],
    /// `where (x: ... in DOMAIN)`: the declared non-trivial domains.
    pub(super) declared: &'a [(JunctionId, Domain, Span)],
}

impl Checker<'_> {
    /// Resolves `in DOMAIN` written on decision variable `owner` (\"port `x` of `f`\") of
    /// this shape (`None`: its type had an error); `Domain::Real` when none is written or
    /// after reporting an error.
    pub(crate) fn domain(
        &mut self,
        written: Option<&ast::Domain>,
        shape: Option<Shape>,
        owner: &str,
    ) -> Domain {
        let Some(d) = written else {
            return Domain::Real;
        };
        let name = d.name.name.as_str();
        let Some(&(_, arity)) = DOMAIN_NAMES.iter().find(|(n, _)| *n == name) else {
            let help = match closest(name, DOMAIN_NAMES.iter().map(|(n, _)| *n)) {
                Some(best) => format!("did you mean `{best}`? the domains are {}", domain_list()),
                None => format!("the domains are {}", domain_list()),
            };
            self.error(
                Diagnostic::error(
                    "E0233",
                    format!("unknown domain `{name}` on {owner}"),
                    d.name.span,
                )
                .with_label("no such domain")
                .with_help(help),
            );
            return Domain::Real;
        };
        if d.args.len() != arity {
            let form = match name {
                "box" => "`box(lo, hi)`",
                "ball" => "`ball(r)`",
                "simplex" => "`simplex`",
                _ => "`nonneg`",
            };
            self.error(
                Diagnostic::error(
                    "E0234",
                    format!(
                        "domain `{name}` takes {}, but {} given",
                        crate::name::counted(arity, "argument"),
                        crate::name::counted_is(d.args.len(), "argument")
                    ),
                    d.span,
                )
                .with_label("wrong number of arguments")
                .with_help(format!("write {form}")),
            );
            return Domain::Real;
        }
        let args: Vec<Option<f64>> = d.args.iter().map(|a| self.const_eval(a, &[])).collect();
        let Some(args) = args.into_iter().collect::<Option<Vec<f64>>>() else {
            return Domain::Real;
        };
        let domain = match (name, args.as_slice()) {
            ("box", &[lo, hi]) => {
                if lo > hi {
                    self.error(
                        Diagnostic::error(
                            "E0235",
                            format!("`box({lo}, {hi})` on {owner} is empty: its lower bound exceeds its upper bound"),
                            d.span,
                        )
                        .with_label(format!("{lo} > {hi}"))
                        .with_help(format!("write the lower bound first: `box({hi}, {lo})`")),
                    );
                    return Domain::Real;
                }
                Domain::Box { lo, hi }
            }
            ("ball", &[radius]) => {
                if radius <= 0.0 {
                    self.error(
                        Diagnostic::error(
                            "E0236",
                            format!("`ball({radius})` on {owner} needs a positive radius"),
                            d.span,
                        )
                        .with_label(format!("radius {radius}"))
                        .with_help("a ball's radius r is > 0 (`ball(0)` is a single point: fix the variable instead)"),
                    );
                    return Domain::Real;
                }
                Domain::Ball { radius }
            }
            ("simplex", _) => Domain::Simplex,
            _ => Domain::NonNeg,
        };
        if domain == Domain::Simplex {
            if let Some(shape @ (Shape::Scalar | Shape::Matrix(..))) = shape {
                let why = match shape {
                    Shape::Scalar => "a scalar in the simplex is always 1",
                    _ => {
                        "a matrix has no one simplex (its rows', its columns' or all its entries'?)"
                    }
                };
                self.error(
                    Diagnostic::error(
                        "E0237",
                        format!("`simplex` on {owner}, which is {shape}: a simplex is a vector's"),
                        d.span,
                    )
                    .with_label(format!("on {shape}"))
                    .with_help(format!("{why}; declare a vector `real[n] in simplex`")),
                );
                return Domain::Real;
            }
        }
        domain
    }

    /// `in DOMAIN` written on data (`owner`: \"data parameter `X` of `f`\", \"data `X`\"):
    /// data is not a decision variable (E0238).
    pub(crate) fn domain_on_data(&mut self, written: &ast::Domain, owner: &str) {
        self.error(
            Diagnostic::error(
                "E0238",
                format!("{owner} has a domain, but data is not a decision variable"),
                written.span,
            )
            .with_label("a domain on data")
            .with_help("domains constrain ports, `var`s and junctions; remove `in ...` here (data keeps the values it is given)"),
        );
    }

    /// The domain and dual mark of port `k` of `callee`.
    pub(super) fn port_marks(&self, callee: Callee, k: usize) -> PortMarks {
        match callee {
            Callee::Objective(o) => self.objectives[o.0 as usize]
                .as_ref()
                .and_then(|o| o.ports.get(k))
                .map_or_else(PortMarks::default, |p| PortMarks {
                    domain: p.domain,
                    dual: p.dual,
                }),
            Callee::Composite(c) => self.composites[c.0 as usize]
                .as_ref()
                .and_then(|comp| {
                    let j = comp.outer_ports.get(k)?.0 as usize;
                    Some(PortMarks {
                        domain: comp.junctions.domain(j),
                        dual: comp.junctions.dual(j),
                    })
                })
                .unwrap_or_default(),
        }
    }

    /// The name of port `k` of `callee`.
    fn port_name(&self, callee: Callee, k: usize) -> String {
        match callee {
            Callee::Objective(o) => self.objectives[o.0 as usize]
                .as_ref()
                .and_then(|o| o.ports.get(k))
                .map_or_else(String::new, |p| p.name.clone()),
            Callee::Composite(c) => self.composites[c.0 as usize]
                .as_ref()
                .and_then(|c| {
                    let j = c.outer_ports.get(k)?;
                    Some(c.junctions.name(j.0 as usize).to_string())
                })
                .unwrap_or_default(),
        }
    }

    /// Unifies every junction's domain and dual mark over its declaration and the ports
    /// wired to it, in box order; reports each conflicting junction once (E0416, E0417).
    /// Called only for composites where some port or declaration has a mark (v0 files
    /// never pay for it).
    pub(super) fn junction_marks(&mut self, wired: &Wired) -> JunctionMarks {
        let mut plain: HashMap<u32, Seen> = HashMap::new();
        let mut families: HashMap<Arc<str>, Seen> = HashMap::new();
        let mut reported: std::collections::HashSet<String> = Default::default();
        for &(id, domain, span) in wired.declared {
            plain.entry(id.0).or_default().domain = Some((domain, Origin::Declared(span)));
        }
        for (b, call) in wired.boxes.iter().enumerate() {
            let ids =
                &wired.box_junctions[call.junctions.start as usize..call.junctions.end as usize];
            for (port, &id) in ids.iter().enumerate() {
                let marks = self.port_marks(call.callee, port);
                let name = wired.junctions.name(id.0 as usize);
                let seen = match name.index {
                    Some(_) => families.entry(name.base.clone()).or_default(),
                    None => plain.entry(id.0).or_default(),
                };
                let here = Origin::Port {
                    b,
                    port,
                    span: call.span,
                };
                let mut conflict = None;
                if !marks.domain.is_trivial() {
                    match seen.domain {
                        None => seen.domain = Some((marks.domain, here)),
                        Some((d, first)) if d.unify(marks.domain).is_none() => {
                            conflict =
                                Some(("E0416", d.to_string(), marks.domain.to_string(), first));
                        }
                        Some(_) => {}
                    }
                }
                match seen.dual {
                    None => seen.dual = Some((marks.dual, here)),
                    Some((dual, first)) if dual != marks.dual && conflict.is_none() => {
                        let word = |d: bool| if d { "dual" } else { "primal" };
                        conflict =
                            Some(("E0417", word(dual).into(), word(marks.dual).into(), first));
                    }
                    Some(_) => {}
                }
                if let Some((code, was, now, first)) = conflict {
                    let what = match name.index {
                        Some(_) => format!("junction family `{}`", name.base),
                        None => format!("junction `{name}`"),
                    };
                    if reported.insert(format!("{code}{what}")) {
                        let diagnostic =
                            self.marks_conflict(wired, code, &what, (&was, first), (&now, here));
                        self.error(diagnostic);
                    }
                }
            }
        }
        let settle = |seen: &Seen| PortMarks {
            domain: seen.domain.map_or(Domain::Real, |(d, _)| d),
            dual: seen.dual.is_some_and(|(d, _)| d),
        };
        JunctionMarks {
            plain: plain.iter().map(|(&id, seen)| (id, settle(seen))).collect(),
            families: families
                .iter()
                .map(|(name, seen)| (name.clone(), settle(seen)))
                .collect(),
        }
    }

    /// E0416 or E0417 for `what`: `was` from `first`, `now` from `here`.
    fn marks_conflict(
        &self,
        wired: &Wired,
        code: &'static str,
        what: &str,
        (was, first): (&str, Origin),
        (now, here): (&str, Origin),
    ) -> Diagnostic {
        let describe = |origin: Origin| match origin {
            Origin::Declared(span) => ("its `where` declaration".to_string(), span),
            Origin::Port { b, port, span } => {
                let call = wired.boxes.get(b);
                let port = self.port_name(call.callee, port);
                (format!("box `{}` (port `{port}`)", call.label), span)
            }
        };
        let (first_by, first_span) = describe(first);
        let (here_by, here_span) = describe(here);
        let (message, help) = if code == "E0416" {
            (
                format!("{what} is in `{was}` by {first_by}, but in `{now}` by {here_by}"),
                "a junction has one domain: give its ports the same domain, or leave all but one without `in` (a port without a domain takes the junction's)",
            )
        } else {
            (
                format!("{what} is {was} by {first_by}, but {now} by {here_by}"),
                "a junction joins dual ports (prices the boxes share) or primal ports (decisions), not both: mark every port wired to it `dual`, or none",
            )
        };
        Diagnostic::error(code, message, here_span)
            .with_label(format!("`{now}` here"))
            .with_secondary(first_span, format!("`{was}` here"))
            .with_help(help)
    }
}

/// "`nonneg`, `box(lo, hi)`, `simplex` or `ball(r)`".
fn domain_list() -> &'static str {
    "`nonneg`, `box(lo, hi)`, `simplex` and `ball(r)`"
}
