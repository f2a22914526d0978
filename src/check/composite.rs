//! Composites: box calls, junction type inference, loops and junction families (unrolled),
//! box labels, recursion detection, and the memory estimate made before unrolling.
//!
//! Unrolling a million-box loop allocates no string per box: labels share their base
//! (`Arc<str>`), a family member is found by its integer index, and each box statement is
//! resolved once (callee, port shapes, plain junctions) before the loop runs.

use super::consts::LoopEnv;
use super::data_family::FamilyMembers;
use super::domains::{JunctionMarks, Wired};
use super::estimate::{mentions, Cost, PerBoxData, MAX_LOOP_ITERATIONS};
use super::program::{
    BoxCall, BoxCalls, Callee, Composite, CompositeId, DataArg, DataId, Domain, Junction,
    JunctionId, JunctionType, Junctions, ObjectiveId,
};
use super::rows::RowsPlan;
use super::{Checker, GlobalKind, MAX_COMPOSITE_DEPTH};
use crate::diagnostic::{Diagnostic, Span};
use crate::name::{counted, counted_is, IndexedName};
use crate::shape::Shape;
use crate::syntax::ast::{self, CompositeStmt};
use std::collections::HashMap;
use std::sync::Arc;

/// A junction family being built: its shape and members by index.
struct Family {
    name: Arc<str>,
    shape: Option<(Shape, Span)>,
    /// Members with small non-negative indices, by index (`u32::MAX`: none yet).
    dense: Vec<u32>,
    /// Other members.
    sparse: HashMap<i64, JunctionId>,
}

impl Family {
    fn get(&self, i: i64) -> Option<JunctionId> {
        if i >= 0 && (i as usize) < self.dense.len() {
            let id = self.dense[i as usize];
            return (id != u32::MAX).then_some(JunctionId(id));
        }
        self.sparse.get(&i).copied()
    }

    fn insert(&mut self, i: i64, id: JunctionId) {
        // Grow the dense table while indices stay within twice its size.
        if i >= 0 && (i as usize) < 2 * self.dense.len() + 1024 {
            let i = i as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, u32::MAX);
            }
            self.dense[i] = id.0;
        } else {
            self.sparse.insert(i, id);
        }
    }

    fn members(&self) -> impl Iterator<Item = JunctionId> + '_ {
        self.dense
            .iter()
            .filter(|&&id| id != u32::MAX)
            .map(|&id| JunctionId(id))
            .chain(self.sparse.values().copied())
    }
}

/// A junction reference resolved once per statement.
enum RefPlan<'a> {
    Plain(JunctionId),
    Member { family: usize, index: &'a ast::Expr },
    Failed,
}

/// A data argument resolved once per statement.
enum DataPlan<'a> {
    Fixed(DataArg, Shape),
    /// `X[t]` on a data family: its members, resolved once (`None`: not a family that
    /// loaded, reported per iteration as before).
    Member {
        name: &'a str,
        members: Option<FamilyMembers>,
        index: &'a ast::Expr,
        span: Span,
    },
    Number(&'a ast::Expr),
    /// `X[i]` or `X[a..b]` on the matrix data item `parent` (`rows.rs`).
    Rows {
        parent: DataId,
        name: &'a str,
        rows: RowsPlan<'a>,
        span: Span,
    },
    Failed,
}

/// A box statement resolved once, unrolled many times.
pub(super) struct BoxPlan<'a> {
    stmt: &'a ast::BoxStmt,
    pub(super) callee: Callee,
    callee_name: &'a str,
    port_names: Vec<String>,
    pub(super) port_shapes: Vec<Shape>,
    param_shapes: Vec<Shape>,
    refs: Vec<RefPlan<'a>>,
    data: Vec<DataPlan<'a>>,
    label_base: Arc<str>,
    /// `Some(k)`: plain label (given, or unique callee); loops append the loop index.
    plain_label: bool,
    /// Which data arguments may change with an enclosing loop variable.
    varying: Vec<bool>,
    /// The callee's per-box data, when its data arguments may vary (for the estimate).
    pub(super) per_box_data: Option<PerBoxData>,
}

impl BoxPlan<'_> {
    /// How many data arguments read rows that change with a loop variable (`X[i]`,
    /// `X[a..b]`): each makes at most one data item (a view) per box.
    pub(super) fn row_args(&self) -> u64 {
        self.data
            .iter()
            .zip(&self.varying)
            .filter(|(d, &v)| v && matches!(d, DataPlan::Rows { .. }))
            .count() as u64
    }
}

impl DataPlan<'_> {
    /// Whether the argument mentions one of `loops` (the enclosing loop variables).
    fn varies(&self, loops: &[&str]) -> bool {
        let exprs: Vec<&ast::Expr> = match self {
            DataPlan::Member { index, .. }
            | DataPlan::Rows {
                rows: RowsPlan::One(index),
                ..
            } => {
                vec![index]
            }
            DataPlan::Rows {
                rows: RowsPlan::Range(r),
                ..
            } => vec![&r.start, &r.end],
            DataPlan::Number(e) => vec![e],
            DataPlan::Fixed(..) | DataPlan::Failed => Vec::new(),
        };
        exprs
            .iter()
            .any(|e| loops.iter().any(|var| mentions(e, var)))
    }
}

pub(super) enum Plan<'a> {
    Call(BoxPlan<'a>),
    For {
        var: &'a str,
        stmt: &'a ast::ForStmt,
        body: Vec<Plan<'a>>,
    },
    Skip,
}

/// The state of one composite being checked.
struct Wiring {
    /// Every junction so far; shapes are filled in once the loops are unrolled.
    junctions: Junctions,
    /// Shapes of plain junctions known so far, with where they came from.
    plain_shapes: HashMap<u32, (Shape, Span)>,
    plain: HashMap<String, JunctionId>,
    families: Vec<Family>,
    family_names: HashMap<String, usize>,
    boxes: BoxCalls,
    box_junctions: Vec<JunctionId>,
    box_data_args: Vec<DataArg>,
    /// Counters for unlabeled boxes outside loops, per callee (`name[k]`).
    counters: HashMap<String, i64>,
    /// Non-loop labels already used, for duplicate detection.
    labels: HashMap<String, Span>,
    /// How many statements make boxes with each label base: a base made by one statement
    /// without label indices cannot repeat (its loop labels carry every loop index).
    label_statements: HashMap<Arc<str>, u32>,
    /// Labels of the boxes whose base more than one statement makes, with their statement.
    made_labels: HashMap<IndexedName, Span>,
    /// The last multi-index label base made (`f[1, 2]` for label `f`, outer indices 1, 2),
    /// reused while a loop's inner iterations share it.
    label_prefix: Option<(Arc<str>, Vec<i64>, Arc<str>)>,
    /// Box statements and loops (by their start) that failed in an earlier iteration.
    failed_statements: std::collections::HashSet<usize>,
    /// Non-trivial domains declared in `where`, with where they are written.
    declared_domains: Vec<(JunctionId, Domain, Span)>,
    /// Some declaration or callee port has a domain or `dual`: junction domains and dual
    /// marks are unified once the loops are unrolled (`domains.rs`).
    has_marks: bool,
}

impl Checker<'_> {
    /// Checks every composite, dependencies first; reports recursion between composites.
    pub(crate) fn composites_in_order(&mut self) {
        let file = self.file;
        let items: Vec<&ast::CompositeItem> = file
            .items
            .iter()
            .filter_map(|i| match i {
                ast::Item::Composite(c)
                    if self.globals.get(&c.name.name).map(|g| g.1) == Some(c.name.span) =>
                {
                    Some(c)
                }
                _ => None,
            })
            .collect();
        for (i, c) in items.iter().enumerate() {
            self.composite_names.insert(c.name.name.clone(), i);
        }
        self.composites = vec![None; items.len()];
        self.composite_scalars = vec![0; items.len()];
        self.composite_costs = vec![Default::default(); items.len()];
        // Dependencies: composites called as boxes.
        let deps: Vec<Vec<(usize, Span)>> = items
            .iter()
            .map(|c| {
                let mut out = Vec::new();
                collect_callees(&c.body, &mut |callee: &ast::Ident| {
                    if let Some(&j) = self.composite_names.get(&callee.name) {
                        out.push((j, callee.span));
                    }
                });
                out
            })
            .collect();
        // Depth-first order with cycle detection (iterative: the call graph may be deep).
        let mut state = vec![0u8; items.len()]; // 0 new, 1 on stack, 2 done
        let mut order = Vec::with_capacity(items.len());
        let mut in_cycle = vec![false; items.len()];
        for root in 0..items.len() {
            if state[root] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            state[root] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if *next < deps[node].len() {
                    let (dep, span) = deps[node][*next];
                    *next += 1;
                    match state[dep] {
                        0 => {
                            state[dep] = 1;
                            stack.push((dep, 0));
                        }
                        1 => {
                            let start = stack.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                            let mut path: Vec<&str> = stack[start..]
                                .iter()
                                .map(|&(n, _)| items[n].name.name.as_str())
                                .collect();
                            path.push(items[dep].name.name.as_str());
                            for &(n, _) in &stack[start..] {
                                in_cycle[n] = true;
                            }
                            self.error(
                                Diagnostic::error(
                                    "E0401",
                                    format!("recursion between composites: {}", path.join(" -> ")),
                                    span,
                                )
                                .with_label(format!(
                                    "`{}` used inside itself",
                                    items[dep].name.name
                                ))
                                .with_help(
                                    "a wiring diagram cannot contain itself; break the cycle",
                                ),
                            );
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    order.push(node);
                    stack.pop();
                }
            }
        }
        // Nesting depth (a composite calling only objectives has depth 1), dependencies
        // first; deeper files are refused here so that every later stage may recurse on
        // the nesting without a stack overflow.
        let mut depth = vec![1usize; items.len()];
        let mut too_deep = vec![false; items.len()];
        for &i in &order {
            if in_cycle[i] {
                continue;
            }
            let deepest = deps[i]
                .iter()
                .filter(|&&(d, _)| !in_cycle[d])
                .max_by_key(|&&(d, _)| depth[d]);
            if let Some(&(d, span)) = deepest {
                depth[i] = depth[d] + 1;
                too_deep[i] = depth[i] > MAX_COMPOSITE_DEPTH;
                // Report the first level that crosses the limit, not every caller above it.
                if too_deep[i] && !too_deep[d] {
                    self.error(
                        Diagnostic::error(
                            "E0602",
                            format!(
                                "composite `{}` is nested more than {MAX_COMPOSITE_DEPTH} levels deep",
                                items[i].name.name
                            ),
                            span,
                        )
                        .with_label(format!(
                            "`{}` is already {} levels deep",
                            items[d].name.name, depth[d]
                        ))
                        .with_help("flatten some levels: call the objectives directly in a loop"),
                    );
                }
            }
        }
        for i in order {
            if in_cycle[i] || too_deep[i] {
                continue;
            }
            let checked = self.composite(items[i]);
            self.composites[i] = checked;
        }
    }

    /// Checks one composite: resolve, estimate, unroll.
    fn composite(&mut self, item: &ast::CompositeItem) -> Option<Composite> {
        let errors_before = self.error_count();
        let mut w = Wiring {
            junctions: Junctions::new(),
            plain_shapes: HashMap::new(),
            plain: HashMap::new(),
            families: Vec::new(),
            family_names: HashMap::new(),
            boxes: BoxCalls::new(),
            box_junctions: Vec::new(),
            box_data_args: Vec::new(),
            counters: HashMap::new(),
            labels: HashMap::new(),
            label_statements: HashMap::new(),
            made_labels: HashMap::new(),
            label_prefix: None,
            failed_statements: Default::default(),
            declared_domains: Vec::new(),
            has_marks: false,
        };
        for decl in &item.where_decls {
            let shape = self.shape(&decl.ty);
            let owner = format!("junction `{}` of `{}`", decl.name.name, item.name.name);
            let domain = self.domain(decl.domain.as_ref(), shape, &owner);
            let init = decl.init.as_ref().and_then(|e| self.const_eval(e, &[]));
            if let Some(&first) = w.plain.get(&decl.name.name) {
                let first_span = w.junctions.span(first.0 as usize);
                self.error(
                    Diagnostic::error(
                        "E0103",
                        format!("junction `{}` is declared twice", decl.name.name),
                        decl.name.span,
                    )
                    .with_label("declared again")
                    .with_secondary(first_span, "first declared here")
                    .with_help("declare each junction once"),
                );
                continue;
            }
            let id = w.junctions.push(Junction {
                name: IndexedName::plain(decl.name.name.as_str()),
                shape: Shape::Scalar,
                init,
                domain: Domain::Real,
                dual: false,
                span: decl.name.span,
            });
            if let Some(written) = decl.domain.as_ref().filter(|_| !domain.is_trivial()) {
                w.declared_domains.push((id, domain, written.span));
                w.has_marks = true;
            }
            if let Some(shape) = shape {
                w.plain_shapes.insert(id.0, (shape, decl.ty.span));
            }
            w.plain.insert(decl.name.name.clone(), id);
        }
        // Resolve each statement once; count callee uses for labels and the estimate.
        let mut uses: HashMap<&str, u64> = HashMap::new();
        let plans = self.plan(&item.body, &mut w, &mut uses, &[]);
        let Some(cost) = self.estimate_cost(&plans, &[]) else {
            self.loop_limit_error(item, "loop bounds that depend on outer loop variables need more than 10^7 evaluations to estimate");
            return None;
        };
        // Junctions are counted once unrolled; the boxes' own variables are a lower bound
        // on the decision variables, enough to refuse before unrolling anything huge.
        let bytes = cost.bytes(cost.private_scalars);
        if bytes > self.options.memory_limit_bytes as u128 {
            self.composite_memory_error(item, &cost, None, bytes);
            return None;
        }
        if cost.iterations > MAX_LOOP_ITERATIONS {
            self.loop_limit_error(
                item,
                &format!("its loops would run {} iterations", cost.iterations),
            );
            return None;
        }
        w.box_junctions
            .reserve(cost.port_scalars.min(u32::MAX as u64) as usize);
        let mut env: Vec<(&str, i64)> = Vec::new();
        self.unroll(&plans, &mut w, &uses, &mut env);
        // Outer ports.
        let mut outer_ports = Vec::new();
        for port in &item.outer_ports {
            if !self.one_index(port) {
                continue;
            }
            let id = match &port.index {
                None => Some(self.plain_junction(&mut w, &port.name)),
                Some(index) => {
                    let family = self.family(&mut w, &port.name);
                    family.and_then(|f| {
                        let i = self.const_int(index, &[], "a junction index")?;
                        Some(member(&mut w, f, i, port.span))
                    })
                }
            };
            let Some(id) = id else { continue };
            if outer_ports.contains(&id) {
                self.error(
                    Diagnostic::error(
                        "E0410",
                        format!("outer port `{}` is listed twice", self.snippet(port.span)),
                        port.span,
                    )
                    .with_label("repeated")
                    .with_help("list each outer port once"),
                );
                continue;
            }
            outer_ports.push(id);
        }
        // Every junction needs a type: family members take their family's.
        for family in &w.families {
            if family.shape.is_none() {
                for id in family.members() {
                    let j = id.0 as usize;
                    self.untyped_junction(&w.junctions.name(j), w.junctions.span(j));
                }
            }
        }
        for (id, junction) in w.junctions.iter().enumerate() {
            if junction.name.index.is_none() && !w.plain_shapes.contains_key(&(id as u32)) {
                self.untyped_junction(&junction.name, junction.span);
            }
        }
        if self.error_count() > errors_before {
            return None;
        }
        let marks = if w.has_marks {
            self.junction_marks(&Wired {
                junctions: &w.junctions,
                boxes: &w.boxes,
                box_junctions: &w.box_junctions,
                declared: &w.declared_domains,
            })
        } else {
            JunctionMarks::default()
        };
        if self.error_count() > errors_before {
            return None;
        }
        // A run of junctions is one plain junction or members of one family.
        let junctions = w.junctions.with_types(|first, name| {
            let known = match name.index {
                Some(_) => w
                    .family_names
                    .get(&*name.base)
                    .map(|&f| w.families[f].shape),
                None => Some(w.plain_shapes.get(&first.0).copied()),
            };
            let marks = marks.of(first, name);
            JunctionType {
                shape: known.flatten().map_or(Shape::Scalar, |(shape, _)| shape),
                domain: marks.domain,
                dual: marks.dual,
            }
        });
        let scalars_total: u64 = junctions.shapes().map(|s| s.len() as u64).sum::<u64>()
            + w.boxes
                .iter()
                .map(|b| self.private_scalars(b.callee))
                .sum::<u64>();
        let bytes = cost.bytes(scalars_total) + self.data_bytes();
        if bytes > self.options.memory_limit_bytes as u128 {
            self.composite_memory_error(item, &cost, Some(scalars_total), bytes);
            return None;
        }
        if let Some(&i) = self.composite_names.get(&item.name.name) {
            self.composite_scalars[i] = scalars_total;
            self.composite_costs[i] = cost;
        }
        Some(Composite {
            name: item.name.name.clone(),
            span: item.name.span,
            outer_ports,
            junctions,
            boxes: w.boxes,
            box_junctions: w.box_junctions,
            box_data_args: w.box_data_args,
            memory_estimate_bytes: bytes.min(u64::MAX as u128) as u64,
            decision_variables: scalars_total,
        })
    }

    fn untyped_junction(&mut self, name: &IndexedName, span: Span) {
        self.error(
            Diagnostic::error(
                "E0403",
                format!("cannot infer the type of junction `{name}`"),
                span,
            )
            .with_label("no box port is wired to it")
            .with_help(format!(
                "wire it to a box or declare it: `where ({}: real)`",
                name.base
            )),
        );
    }

    /// Scalar private variables of one box of this callee.
    fn private_scalars(&self, callee: Callee) -> u64 {
        match callee {
            Callee::Objective(o) => self.objectives[o.0 as usize]
                .as_ref()
                .map_or(0, |o| o.vars.iter().map(|v| v.shape.len() as u64).sum()),
            Callee::Composite(c) => {
                let exposed: u64 = self.composites[c.0 as usize].as_ref().map_or(0, |c| {
                    c.outer_ports
                        .iter()
                        .map(|j| c.junctions.shape(j.0 as usize).len() as u64)
                        .sum()
                });
                self.composite_scalars[c.0 as usize].saturating_sub(exposed)
            }
        }
    }

    /// Reports a composite whose loops are too many or too irregular to run (E0603).
    fn loop_limit_error(&mut self, item: &ast::CompositeItem, why: &str) {
        self.error(
            Diagnostic::error(
                "E0603",
                format!(
                    "composite `{}` is refused: {why}, more than the limit of {MAX_LOOP_ITERATIONS}",
                    item.name.name
                ),
                item.name.span,
            )
            .with_label("too many loop iterations")
            .with_help("make the loops smaller; empty iterations count too"),
        );
    }

    /// Reports a composite whose run would need more memory than the limit (E0601).
    fn composite_memory_error(
        &mut self,
        item: &ast::CompositeItem,
        cost: &Cost,
        variables: Option<u64>,
        bytes: u128,
    ) {
        let variables = variables
            .map(|v| format!(", {v} scalar variables"))
            .unwrap_or_default();
        self.memory_error(
            item.name.span,
            &format!(
                "composite `{}` ({} boxes, {} port coordinates{variables}, flattened)",
                item.name.name, cost.boxes, cost.port_scalars
            ),
            bytes as f64,
        );
    }

    fn plan<'a>(
        &mut self,
        body: &'a [CompositeStmt],
        w: &mut Wiring,
        uses: &mut HashMap<&'a str, u64>,
        loops: &[&'a str],
    ) -> Vec<Plan<'a>> {
        let mut plans = Vec::with_capacity(body.len());
        for stmt in body {
            match stmt {
                CompositeStmt::For(f) => {
                    if self
                        .globals
                        .get(&f.var.name)
                        .is_some_and(|g| g.0 == GlobalKind::Const)
                        || loops.contains(&f.var.name.as_str())
                    {
                        self.error(
                            Diagnostic::error(
                                "E0116",
                                format!("loop variable `{}` hides another name", f.var.name),
                                f.var.span,
                            )
                            .with_label("already a const or an enclosing loop variable")
                            .with_help("choose another name for the loop variable"),
                        );
                    }
                    let mut inner = loops.to_vec();
                    inner.push(f.var.name.as_str());
                    let body = self.plan(&f.body, w, uses, &inner);
                    plans.push(Plan::For {
                        var: f.var.name.as_str(),
                        stmt: f,
                        body,
                    });
                }
                CompositeStmt::Call(b) => {
                    *uses.entry(b.callee.name.as_str()).or_insert(0) += 1;
                    let plan = self.plan_box(b, w, loops);
                    plans.push(plan.map_or(Plan::Skip, Plan::Call));
                }
            }
        }
        plans
    }

    fn plan_box<'a>(
        &mut self,
        stmt: &'a ast::BoxStmt,
        w: &mut Wiring,
        loops: &[&str],
    ) -> Option<BoxPlan<'a>> {
        let in_loop = !loops.is_empty();
        let name = &stmt.callee.name;
        let (callee, port_names, port_shapes, param_shapes) =
            if let Some(&o) = self.objective_names.get(name) {
                let objective = self.objectives[o].as_ref()?;
                (
                    Callee::Objective(ObjectiveId(o as u32)),
                    objective
                        .ports
                        .iter()
                        .map(|p| p.name.clone())
                        .collect::<Vec<_>>(),
                    objective.ports.iter().map(|p| p.shape).collect::<Vec<_>>(),
                    objective
                        .data_params
                        .iter()
                        .map(|p| p.shape)
                        .collect::<Vec<_>>(),
                )
            } else if let Some(&c) = self.composite_names.get(name) {
                let composite = self.composites[c].as_ref()?;
                (
                    Callee::Composite(CompositeId(c as u32)),
                    composite
                        .outer_ports
                        .iter()
                        .map(|j| composite.junctions.name(j.0 as usize).to_string())
                        .collect(),
                    composite
                        .outer_ports
                        .iter()
                        .map(|j| composite.junctions.shape(j.0 as usize))
                        .collect(),
                    Vec::new(),
                )
            } else {
                let help = match self.globals.get(name) {
                    Some((kind, _)) => {
                        format!("`{name}` is {kind}; a box calls an objective or a composite")
                    }
                    None => {
                        let candidates = self
                            .objective_names
                            .keys()
                            .chain(self.composite_names.keys())
                            .map(String::as_str);
                        match super::closest(name, candidates) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => format!(
                            "define `objective {name}(...) {{ ... }}` or a composite of that name"
                        ),
                        }
                    }
                };
                self.error(
                    Diagnostic::error(
                        "E0107",
                        format!("unknown objective or composite `{name}`"),
                        stmt.callee.span,
                    )
                    .with_label("no such box type")
                    .with_help(help),
                );
                return None;
            };
        if !w.has_marks {
            w.has_marks = (0..port_shapes.len()).any(|k| !self.port_marks(callee, k).is_plain());
        }
        if stmt.junctions.len() != port_shapes.len() {
            self.error(
                Diagnostic::error(
                    "E0404",
                    format!(
                        "box `{name}` has {} ({}), but {} given",
                        counted(port_shapes.len(), "port"),
                        port_names.join(", "),
                        counted_is(stmt.junctions.len(), "junction")
                    ),
                    stmt.span,
                )
                .with_label("wrong number of junctions")
                .with_help(format!(
                    "wire one junction to each port: `{name}({})`",
                    port_names.join(", ")
                )),
            );
            return None;
        }
        if stmt.data_args.len() != param_shapes.len() {
            self.error(
                Diagnostic::error(
                    "E0405",
                    format!("box `{name}` takes {}, but {} given", counted(param_shapes.len(), "data argument"), counted_is(stmt.data_args.len(), "")),
                    stmt.span,
                )
                .with_label("wrong number of data arguments")
                .with_help("pass one data item, data family member, const or number per data parameter, after `;`"),
            );
            return None;
        }
        let mut refs = Vec::with_capacity(stmt.junctions.len());
        for r in &stmt.junctions {
            if !self.one_index(r) {
                refs.push(RefPlan::Failed);
                continue;
            }
            refs.push(match &r.index {
                None => RefPlan::Plain(self.plain_junction(w, &r.name)),
                Some(index) => match self.family(w, &r.name) {
                    Some(family) => RefPlan::Member { family, index },
                    None => RefPlan::Failed,
                },
            });
        }
        let mut data = Vec::with_capacity(stmt.data_args.len());
        for arg in &stmt.data_args {
            data.push(self.plan_data_arg(arg));
        }
        // A data argument that mentions a loop variable (a member `X[i]`, rows `X[i]`, a
        // number `i`) may differ from box to box: per-box data.
        let varying: Vec<bool> = data.iter().map(|d| d.varies(loops)).collect();
        let (label_base, plain_label) = match &stmt.label {
            Some(label) => {
                if !in_loop {
                    if let Some(&first) = w.labels.get(&label.name) {
                        self.error(
                            Diagnostic::error(
                                "E0411",
                                format!("duplicate box label `{}`", label.name),
                                label.span,
                            )
                            .with_label("used again")
                            .with_secondary(first, "first used here")
                            .with_help("give each box a distinct label"),
                        );
                    }
                    w.labels.insert(label.name.clone(), label.span);
                }
                (Arc::<str>::from(label.name.as_str()), true)
            }
            None => (Arc::<str>::from(name.as_str()), false),
        };
        *w.label_statements.entry(label_base.clone()).or_insert(0) += 1;
        Some(BoxPlan {
            stmt,
            callee,
            callee_name: name.as_str(),
            port_names,
            port_shapes,
            param_shapes,
            refs,
            per_box_data: match callee {
                Callee::Objective(o) if varying.iter().any(|&v| v) => self.objectives[o.0 as usize]
                    .as_ref()
                    .map(|o| PerBoxData::of(o, &varying)),
                _ => None,
            },
            varying,
            data,
            label_base,
            plain_label,
        })
    }

    fn plan_data_arg<'a>(&mut self, arg: &'a ast::Expr) -> DataPlan<'a> {
        match &arg.kind {
            ast::ExprKind::Name(name)
                if self
                    .globals
                    .get(name)
                    .is_some_and(|g| g.0 == GlobalKind::Data) =>
            {
                match self.data_member(name, None) {
                    Some(id) => {
                        DataPlan::Fixed(DataArg::Data(id), self.data[id.0 as usize].value.shape)
                    }
                    None => {
                        if matches!(self.data_names.get(name), Some(super::DataEntry::Family(_))) {
                            self.error(
                                Diagnostic::error(
                                    "E0105",
                                    format!("data family `{name}` used without an index"),
                                    arg.span,
                                )
                                .with_label("a family, not one value")
                                .with_help(format!("pass one member: `{name}[t]`")),
                            );
                        }
                        DataPlan::Failed
                    }
                }
            }
            ast::ExprKind::Index(base, indices) => match (&base.kind, indices.as_slice()) {
                (ast::ExprKind::Name(name), [index])
                    if self
                        .globals
                        .get(name)
                        .is_some_and(|g| g.0 == GlobalKind::Data) =>
                {
                    // `X[i]`: a member of a data family, or row i of a matrix data item.
                    match self.data_names.get(name) {
                        Some(super::DataEntry::Single(_)) => {
                            self.plan_rows(name, RowsPlan::One(index), arg.span)
                        }
                        entry => DataPlan::Member {
                            name,
                            members: match entry {
                                Some(super::DataEntry::Family(m)) => Some(*m),
                                _ => None,
                            },
                            index,
                            span: arg.span,
                        },
                    }
                }
                _ => self.bad_data_arg(arg),
            },
            ast::ExprKind::Rows(base, range) => match &base.kind {
                ast::ExprKind::Name(name)
                    if self
                        .globals
                        .get(name)
                        .is_some_and(|g| g.0 == GlobalKind::Data) =>
                {
                    self.plan_rows(name, RowsPlan::Range(range), arg.span)
                }
                _ => self.bad_data_arg(arg),
            },
            ast::ExprKind::Name(name)
                if self
                    .globals
                    .get(name)
                    .map_or(true, |g| g.0 != GlobalKind::Const) =>
            {
                // Neither data nor const: maybe a loop variable (checked when unrolled).
                DataPlan::Number(arg)
            }
            ast::ExprKind::Matrix(_) | ast::ExprKind::Call(..) | ast::ExprKind::Transpose(_) => {
                self.bad_data_arg(arg)
            }
            _ => DataPlan::Number(arg),
        }
    }

    fn plan_rows<'a>(&mut self, name: &'a str, rows: RowsPlan<'a>, span: Span) -> DataPlan<'a> {
        match self.rows_parent(name, span) {
            Some(parent) => DataPlan::Rows {
                parent,
                name,
                rows,
                span,
            },
            None => DataPlan::Failed,
        }
    }

    fn bad_data_arg<'a>(&mut self, arg: &ast::Expr) -> DataPlan<'a> {
        self.error(
            Diagnostic::error(
                "E0412",
                format!("`{}` is not a data argument", self.snippet(arg.span)),
                arg.span,
            )
            .with_label("expected data")
            .with_help(
                "a data argument is a data name, a data family member `X[t]`, rows of a matrix data item `X[i]` or `X[a..b]`, a const or a number",
            ),
        );
        DataPlan::Failed
    }

    /// Whether a junction reference has at most one index (junction families are
    /// one-dimensional); reports E0211 otherwise.
    fn one_index(&mut self, r: &ast::JunctionRef) -> bool {
        if r.more_indices.is_empty() {
            return true;
        }
        self.error(
            Diagnostic::error(
                "E0211",
                format!(
                    "junction `{}` is given {} indices; a junction family member takes one",
                    r.name.name,
                    r.more_indices.len() + 1
                ),
                r.span,
            )
            .with_label("too many indices")
            .with_help("index a junction family with one integer (`x[i * n + j]`); several indices name boxes, in labels and `init` targets"),
        );
        false
    }

    fn plain_junction(&mut self, w: &mut Wiring, name: &ast::Ident) -> JunctionId {
        if let Some(&id) = w.plain.get(&name.name) {
            return id;
        }
        if let Some(&f) = w.family_names.get(&name.name) {
            let family = w.families[f].name.clone();
            self.error(
                Diagnostic::error(
                    "E0402",
                    format!("`{family}` is a junction family, used here without an index"),
                    name.span,
                )
                .with_label("needs an index")
                .with_help(format!(
                    "write `{family}[i]`, or use another name for a single junction"
                )),
            );
        }
        let id = w.junctions.push(Junction {
            name: IndexedName::plain(name.name.as_str()),
            shape: Shape::Scalar,
            init: None,
            domain: Domain::Real,
            dual: false,
            span: name.span,
        });
        w.plain.insert(name.name.clone(), id);
        id
    }

    fn family(&mut self, w: &mut Wiring, name: &ast::Ident) -> Option<usize> {
        if let Some(&f) = w.family_names.get(&name.name) {
            return Some(f);
        }
        if w.plain.contains_key(&name.name) {
            self.error(
                Diagnostic::error(
                    "E0402",
                    format!(
                        "`{}` is a single junction, used here with an index",
                        name.name
                    ),
                    name.span,
                )
                .with_label("not a junction family")
                .with_help("a name is either a single junction or a junction family, not both"),
            );
            return None;
        }
        let f = w.families.len();
        w.families.push(Family {
            name: name.name.as_str().into(),
            shape: None,
            dense: Vec::new(),
            sparse: HashMap::new(),
        });
        w.family_names.insert(name.name.clone(), f);
        Some(f)
    }

    fn unroll<'a>(
        &mut self,
        plans: &'a [Plan<'a>],
        w: &mut Wiring,
        uses: &HashMap<&str, u64>,
        env: &mut Vec<(&'a str, i64)>,
    ) {
        for plan in plans {
            match plan {
                Plan::Skip => {}
                Plan::For { var, stmt, body } => {
                    // Bounds that failed once (reported) fail again in every outer
                    // iteration: evaluating them again would only cost time.
                    if w.failed_statements.contains(&stmt.span.start) {
                        continue;
                    }
                    let start = self.const_int(&stmt.range.start, env, "a loop bound");
                    let end = self.const_int(&stmt.range.end, env, "a loop bound");
                    let (Some(start), Some(end)) = (start, end) else {
                        w.failed_statements.insert(stmt.span.start);
                        continue;
                    };
                    // A loop with no box to make (empty, or only statements that failed
                    // when planned) makes nothing in any iteration.
                    if !makes_boxes(body) {
                        continue;
                    }
                    env.push((var, 0));
                    for i in start..end {
                        env.last_mut().expect("pushed").1 = i;
                        self.unroll(body, w, uses, env);
                    }
                    env.pop();
                }
                Plan::Call(b) => self.unroll_box(b, w, uses, env),
            }
        }
    }

    fn unroll_box(
        &mut self,
        b: &BoxPlan,
        w: &mut Wiring,
        uses: &HashMap<&str, u64>,
        env: &LoopEnv,
    ) {
        // A statement that failed once fails in every iteration with the same (already
        // reported) diagnostics: unrolling it again would only cost time.
        if w.failed_statements.contains(&b.stmt.span.start) {
            return;
        }
        let junctions_start = w.box_junctions.len() as u32;
        let data_start = w.box_data_args.len() as u32;
        let mut ok = true;
        for (port, r) in b.refs.iter().enumerate() {
            let id = match r {
                RefPlan::Plain(id) => *id,
                RefPlan::Member { family, index } => {
                    let Some(i) = self.const_int(index, env, "a junction index") else {
                        ok = false;
                        continue;
                    };
                    member(w, *family, i, b.stmt.junctions[port].span)
                }
                RefPlan::Failed => {
                    ok = false;
                    continue;
                }
            };
            // Unify the junction's (or its family's) shape with the port's.
            let port_shape = b.port_shapes[port];
            let jref = &b.stmt.junctions[port];
            let family = match r {
                RefPlan::Member { family, .. } => Some(*family),
                _ => None,
            };
            let known = match family {
                Some(f) => w.families[f].shape,
                None => w.plain_shapes.get(&id.0).copied(),
            };
            match known {
                None => match family {
                    Some(f) => w.families[f].shape = Some((port_shape, jref.span)),
                    None => {
                        w.plain_shapes.insert(id.0, (port_shape, jref.span));
                    }
                },
                Some((shape, origin)) if shape != port_shape => {
                    let name = &w.junctions.name(id.0 as usize);
                    let what = match family {
                        Some(_) => format!("junction family `{}`", name.base),
                        None => format!("junction `{name}`"),
                    };
                    self.error(
                        Diagnostic::error(
                            "E0406",
                            format!(
                                "port `{}` of box `{}` is {port_shape}, but {what} is {shape}",
                                b.port_names[port], b.callee_name
                            ),
                            jref.span,
                        )
                        .with_label(format!("{what} wired to a {port_shape} port"))
                        .with_secondary(origin, format!("{what} is {shape} because of this"))
                        .with_help("every port wired to a junction (and every member of a family) must have one shape"),
                    );
                    ok = false;
                }
                Some(_) => {}
            }
            w.box_junctions.push(id);
        }
        for (k, d) in b.data.iter().enumerate() {
            let param_shape = b.param_shapes[k];
            let arg = &b.stmt.data_args[k];
            let (value, shape) = match d {
                DataPlan::Fixed(value, shape) => (*value, *shape),
                DataPlan::Member {
                    name,
                    members,
                    index,
                    span,
                } => {
                    let Some(i) = self.const_int(index, env, "a data family index") else {
                        ok = false;
                        continue;
                    };
                    // The family was looked up when planned: no name lookup per box.
                    match members.and_then(|m| m.get(i)) {
                        Some(id) => (DataArg::Data(id), self.data[id.0 as usize].value.shape),
                        None => {
                            if matches!(
                                self.data_names.get(*name),
                                Some(super::DataEntry::Family(_))
                            ) {
                                self.missing_member(name, i, *span);
                            } else if matches!(
                                self.data_names.get(*name),
                                Some(super::DataEntry::Single(_))
                            ) {
                                self.error(
                                    Diagnostic::error(
                                        "E0105",
                                        format!("data `{name}` is not a family"),
                                        *span,
                                    )
                                    .with_label("indexed here")
                                    .with_help(format!("pass `{name}` without an index")),
                                );
                            }
                            ok = false;
                            continue;
                        }
                    }
                }
                DataPlan::Rows {
                    parent,
                    name,
                    rows,
                    span,
                } => match self.rows_arg(*parent, name, *rows, *span, env) {
                    Some(id) => (DataArg::Data(id), self.data[id.0 as usize].value.shape),
                    None => {
                        ok = false;
                        continue;
                    }
                },
                DataPlan::Number(expr) => match self.const_eval(expr, env) {
                    Some(v) => (DataArg::Number(v), Shape::Scalar),
                    None => {
                        ok = false;
                        continue;
                    }
                },
                DataPlan::Failed => {
                    ok = false;
                    continue;
                }
            };
            if shape != param_shape {
                self.error(
                    Diagnostic::error(
                        "E0407",
                        format!("data argument {} of box `{}` is {shape}, but the parameter is {param_shape}", k + 1, b.callee_name),
                        arg.span,
                    )
                    .with_label(format!("this is {shape}"))
                    .with_help("pass data of the declared shape, or change the objective's data parameter"),
                );
                ok = false;
            }
            w.box_data_args.push(value);
        }
        if !ok {
            w.box_junctions.truncate(junctions_start as usize);
            w.box_data_args.truncate(data_start as usize);
            w.failed_statements.insert(b.stmt.span.start);
            return;
        }
        let Some(label) = self.label(b, w, uses, env) else {
            w.box_junctions.truncate(junctions_start as usize);
            w.box_data_args.truncate(data_start as usize);
            w.failed_statements.insert(b.stmt.span.start);
            return;
        };
        w.boxes.push(BoxCall {
            label,
            callee: b.callee,
            junctions: junctions_start..w.box_junctions.len() as u32,
            data_args: data_start..w.box_data_args.len() as u32,
            span: b.stmt.span,
        });
    }

    /// The box label of docs/language.md: given (with its indices, `cell[i, j]:`); else in loops
    /// the label or callee name with every enclosing loop's index, outermost first (`f[i]`,
    /// `f[i, j]`); else the callee's name if it is used once in the composite; else
    /// `name[k]`. `None` (reported) for a label index that is not a constant or a label
    /// another box already has (E0411).
    fn label(
        &mut self,
        b: &BoxPlan,
        w: &mut Wiring,
        uses: &HashMap<&str, u64>,
        env: &LoopEnv,
    ) -> Option<IndexedName> {
        let explicit = !b.stmt.label_indices.is_empty();
        let label = if explicit {
            let mut indices = Vec::with_capacity(b.stmt.label_indices.len());
            for index in &b.stmt.label_indices {
                indices.push(self.const_int(index, env, "a label index")?);
            }
            indexed_label(w, &b.label_base, &indices)
        } else if !env.is_empty() {
            let indices: Vec<i64> = env.iter().map(|&(_, i)| i).collect();
            indexed_label(w, &b.label_base, &indices)
        } else if b.plain_label || uses.get(b.callee_name).copied().unwrap_or(0) <= 1 {
            IndexedName::plain(b.label_base.clone())
        } else {
            let counter = w.counters.entry(b.callee_name.to_string()).or_insert(0);
            let k = *counter;
            *counter += 1;
            IndexedName::member(b.label_base.clone(), k)
        };
        // Plain given labels outside loops were checked when planned; a base that only one
        // statement makes, from its loop indices, cannot repeat.
        let given_plain = b.plain_label && env.is_empty() && !explicit;
        let shared = w.label_statements.get(&b.label_base).copied().unwrap_or(0) > 1;
        if !given_plain && (explicit || shared) {
            if let Some(&first) = w.made_labels.get(&label) {
                self.error(
                    Diagnostic::error(
                        "E0411",
                        format!("duplicate box label `{label}`"),
                        b.stmt.span,
                    )
                    .with_label("makes a box labelled like another")
                    .with_secondary(first, "the first box with this label")
                    .with_help(format!(
                        "give one of the boxes a label of its own (`other: {}(...)`) or label indices that differ (`{}[i, j]: ...`)",
                        b.callee_name, b.label_base
                    )),
                );
                return None;
            }
            w.made_labels.insert(label.clone(), b.stmt.span);
        }
        Some(label)
    }
}

/// `base[indices...]`, sharing the outer part's string with the previous label made when
/// the outer indices are the same (a nested loop's inner iterations).
fn indexed_label(w: &mut Wiring, base: &Arc<str>, indices: &[i64]) -> IndexedName {
    let Some((&last, outer)) = indices.split_last() else {
        return IndexedName::plain(base.clone());
    };
    if outer.is_empty() {
        return IndexedName::member(base.clone(), last);
    }
    if let Some((cached_base, cached_outer, prefix)) = &w.label_prefix {
        if cached_base == base && cached_outer == outer {
            return IndexedName::member(prefix.clone(), last);
        }
    }
    let name = IndexedName::with_indices(base, indices);
    w.label_prefix = Some((base.clone(), outer.to_vec(), name.base.clone()));
    name
}

/// Whether `plans` contain a box call (in any loop).
fn makes_boxes(plans: &[Plan]) -> bool {
    plans.iter().any(|plan| match plan {
        Plan::Call(_) => true,
        Plan::For { body, .. } => makes_boxes(body),
        Plan::Skip => false,
    })
}

/// The junction of family member `i`, created on first use.
fn member(w: &mut Wiring, family: usize, i: i64, span: Span) -> JunctionId {
    let f = &mut w.families[family];
    if let Some(id) = f.get(i) {
        return id;
    }
    let id = w.junctions.push(Junction {
        name: IndexedName::member(f.name.clone(), i),
        shape: Shape::Scalar,
        init: None,
        domain: Domain::Real,
        dual: false,
        span,
    });
    f.insert(i, id);
    id
}

fn collect_callees<'a>(body: &'a [CompositeStmt], f: &mut impl FnMut(&'a ast::Ident)) {
    for stmt in body {
        match stmt {
            CompositeStmt::Call(b) => f(&b.callee),
            CompositeStmt::For(l) => collect_callees(&l.body, f),
        }
    }
}
