//! The memory estimate of a composite, made before its loops are unrolled, and the bound on
//! loop iterations.
//!
//! A run keeps, for every scalar decision variable, every scalar port coordinate, every box
//! and every distinct box type, a fixed number of bytes; those numbers were measured on
//! this build (peak RSS of `catopt run` on composites that vary one count at a time: a
//! million scalar boxes, a million small vector boxes, one box with 5e6 and 1e7 variables,
//! with two and four vector nodes; docs/cli.md, "Limits", has the table). Nested
//! composites are counted flattened, loops with bounds that depend on an outer loop
//! variable are counted iteration by iteration (never from their first and last
//! iteration only), and a loop nest that would run more than [`MAX_LOOP_ITERATIONS`]
//! iterations (empty ones included) is refused, so a hostile file cannot spin.

use super::composite::Plan;
use super::consts::LoopEnv;
use super::program::{self, Callee, Objective};
use super::Checker;
use crate::syntax::ast::{self, ExprKind};

/// Bytes a run keeps per scalar decision variable: the state, gradient, proposal and the
/// solver's two spare iterates, the pushout's leg and the initial value (measured 79-86).
pub const BYTES_PER_DECISION_VARIABLE: u64 = 56;
/// Bytes per scalar port coordinate (a box's gather and scatter index; measured 8-15).
pub const BYTES_PER_PORT_SCALAR: u64 = 16;
/// Bytes per box: its record in the diagram, the plan and the names (measured 58-106).
pub const BYTES_PER_BOX: u64 = 96;
/// Bytes per number of a box type's workspace (value and adjoint of every expression
/// node, and the compiled tape; measured 16-27).
pub const BYTES_PER_WORKSPACE_ELEMENT: u64 = 24;
/// Bytes per data item that reads rows of another (`X[i]`, `X[a..b]` in a box call): its
/// record and lookup entry; the rows themselves are the parent's numbers, not copied.
pub const BYTES_PER_DATA_VIEW: u64 = std::mem::size_of::<super::program::DataItem>() as u64 + 48;
/// Bytes per number of a box's per-box data vector (its raw data and what is folded from
/// it): the vector in the problem's `BoxData`, and its entry-major copy in a batched chunk.
pub const BYTES_PER_BOX_DATA_NUMBER: u64 = 16;
/// Bytes per box with per-box data beyond [`BYTES_PER_BOX`]: such a box is an instance of
/// its own while lowering (its data arguments, its data vector's entry and offset, its open
/// objective with its decoration; measured 236-246).
pub const BYTES_PER_DATA_BOX: u64 = 288;
/// Bytes per data item's record (a family member's, a csv item's), its numbers aside.
pub const BYTES_PER_DATA_ITEM: u64 = std::mem::size_of::<program::DataItem>() as u64;
/// Bytes a run takes whatever the problem: the program, its libraries and buffers
/// (measured 4-9 MB).
pub const BASE_BYTES: u64 = 8 << 20;
/// The most loop iterations (empty ones included) one composite's loops may run.
pub const MAX_LOOP_ITERATIONS: u64 = 1_000_000_000;
/// The most loop-bound evaluations the estimate makes for loops whose bounds depend on an
/// outer loop variable; past it the file is refused (E0603) rather than estimated slowly.
const MAX_ESTIMATE_EVALUATIONS: u64 = 10_000_000;

/// What a composite or a piece of one costs once flattened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Boxes (objective calls) after flattening.
    pub boxes: u64,
    /// Scalar port coordinates of those boxes.
    pub port_scalars: u64,
    /// Private scalar variables of those boxes (junctions are counted after unrolling).
    pub private_scalars: u64,
    /// Workspace numbers of the box types, counted once per distinct type where the
    /// statement shows it: a call is one type whatever its data (boxes whose data differ
    /// in values share one type with per-box data), except where a data parameter reaches
    /// a power's exponent and its data depend on a loop variable (one type per box).
    pub workspace: u64,
    /// Boxes with per-box data (their data depend on a loop variable).
    pub data_boxes: u64,
    /// Numbers of those boxes' per-box data vectors.
    pub box_data: u64,
    /// Loop iterations, empty ones included.
    pub iterations: u64,
    /// Data arguments that read rows (`X[i]`, `X[a..b]`): at most one data item (a view
    /// sharing the parent's numbers) each.
    pub data_views: u64,
}

impl Cost {
    fn add(self, other: Cost) -> Cost {
        Cost {
            boxes: self.boxes.saturating_add(other.boxes),
            port_scalars: self.port_scalars.saturating_add(other.port_scalars),
            private_scalars: self.private_scalars.saturating_add(other.private_scalars),
            workspace: self.workspace.saturating_add(other.workspace),
            data_boxes: self.data_boxes.saturating_add(other.data_boxes),
            box_data: self.box_data.saturating_add(other.box_data),
            iterations: self.iterations.saturating_add(other.iterations),
            data_views: self.data_views.saturating_add(other.data_views),
        }
    }

    /// `times` repetitions of a loop body; `once` is the part of the body's workspace that
    /// is the same box type in every iteration.
    fn repeat(self, times: u64, once: u64) -> Cost {
        Cost {
            boxes: self.boxes.saturating_mul(times),
            port_scalars: self.port_scalars.saturating_mul(times),
            private_scalars: self.private_scalars.saturating_mul(times),
            workspace: once
                .saturating_add(self.workspace.saturating_sub(once).saturating_mul(times)),
            data_boxes: self.data_boxes.saturating_mul(times),
            box_data: self.box_data.saturating_mul(times),
            iterations: self.iterations.saturating_mul(times).saturating_add(times),
            data_views: self.data_views.saturating_mul(times),
        }
    }

    /// The estimated bytes of a run with `decision_variables` scalar variables in all.
    pub fn bytes(&self, decision_variables: u64) -> u128 {
        BASE_BYTES as u128
            + decision_variables as u128 * BYTES_PER_DECISION_VARIABLE as u128
            + self.port_scalars as u128 * BYTES_PER_PORT_SCALAR as u128
            + self.boxes as u128 * BYTES_PER_BOX as u128
            + self.workspace as u128 * BYTES_PER_WORKSPACE_ELEMENT as u128
            + self.data_boxes as u128 * BYTES_PER_DATA_BOX as u128
            + self.box_data as u128 * BYTES_PER_BOX_DATA_NUMBER as u128
            + self.data_views as u128 * BYTES_PER_DATA_VIEW as u128
    }
}

/// The estimate of a list of plans, with the workspace that repeats in no enclosing loop.
struct Counted {
    cost: Cost,
    /// Workspace of calls whose box type does not change with the enclosing loops.
    fixed_workspace: u64,
}

impl Checker<'_> {
    /// The flattened cost of `plans` under the loop environment `env`; `None` when the
    /// loops are too irregular to estimate within the evaluation budget (E0603 reported).
    pub(super) fn estimate_cost(&mut self, plans: &[Plan], env: &LoopEnv) -> Option<Cost> {
        let mut budget = MAX_ESTIMATE_EVALUATIONS;
        self.count_plans(plans, env, &mut budget).map(|c| c.cost)
    }

    fn count_plans(&mut self, plans: &[Plan], env: &LoopEnv, budget: &mut u64) -> Option<Counted> {
        let mut total = Counted {
            cost: Cost::default(),
            fixed_workspace: 0,
        };
        for plan in plans {
            let counted = match plan {
                Plan::Call(b) => {
                    let (mut cost, varies) =
                        self.call_cost(b.callee, &b.port_shapes, b.per_box_data);
                    cost.data_views = b.row_args();
                    Counted {
                        cost,
                        fixed_workspace: if varies { 0 } else { cost.workspace },
                    }
                }
                Plan::For { var, stmt, body } => {
                    *budget = budget.checked_sub(1)?;
                    let start = self
                        .const_int(&stmt.range.start, env, "a loop bound")
                        .unwrap_or(0);
                    let end = self
                        .const_int(&stmt.range.end, env, "a loop bound")
                        .unwrap_or(0);
                    let trips = end.saturating_sub(start).max(0) as u64;
                    let mut inner_env = env.to_vec();
                    inner_env.push((var, start));
                    if trips == 0 {
                        Counted {
                            cost: Cost::default(),
                            fixed_workspace: 0,
                        }
                    } else if !bounds_mention(body, var) {
                        // Every iteration costs the same: count one and multiply.
                        let one = self.count_plans(body, &inner_env, budget)?;
                        Counted {
                            cost: one.cost.repeat(trips, one.fixed_workspace),
                            fixed_workspace: one.fixed_workspace,
                        }
                    } else {
                        // Inner bounds depend on `var`: count every iteration (the first
                        // and the last say nothing of the ones between).
                        let mut sum = Cost::default();
                        let mut fixed = 0;
                        for i in start..end {
                            if *budget == 0 {
                                return None;
                            }
                            inner_env.last_mut().expect("pushed").1 = i;
                            let one = self.count_plans(body, &inner_env, budget)?;
                            let mut cost = one.cost;
                            cost.workspace = cost.workspace.saturating_sub(one.fixed_workspace);
                            sum = sum.add(cost);
                            fixed = fixed.max(one.fixed_workspace);
                        }
                        sum.workspace = sum.workspace.saturating_add(fixed);
                        sum.iterations = sum.iterations.saturating_add(trips);
                        Counted {
                            cost: sum,
                            fixed_workspace: fixed,
                        }
                    }
                }
                Plan::Skip => continue,
            };
            total.cost = total.cost.add(counted.cost);
            total.fixed_workspace = total
                .fixed_workspace
                .saturating_add(counted.fixed_workspace);
        }
        Some(total)
    }

    /// The cost of one box call, and whether its box type differs from iteration to
    /// iteration. `per_box`: the objective's per-box data when the call's data depend on
    /// a loop variable (a data parameter in an exponent: one type per box).
    fn call_cost(
        &self,
        callee: Callee,
        port_shapes: &[crate::shape::Shape],
        per_box: Option<PerBoxData>,
    ) -> (Cost, bool) {
        match callee {
            Callee::Objective(o) => {
                let objective = self.objectives[o.0 as usize].as_ref();
                let mut cost = Cost {
                    boxes: 1,
                    port_scalars: port_shapes.iter().map(|s| s.len() as u64).sum(),
                    private_scalars: objective
                        .map_or(0, |o| o.vars.iter().map(|v| v.shape.len() as u64).sum()),
                    workspace: objective.map_or(0, |o| o.workspace_elements()),
                    ..Cost::default()
                };
                let Some(per_box) = per_box else {
                    return (cost, false);
                };
                if per_box.in_exponent {
                    return (cost, true);
                }
                cost.data_boxes = 1;
                cost.box_data = per_box.elements;
                (cost, false)
            }
            // A nested composite's box types are the same in every call.
            Callee::Composite(c) => (self.composite_costs[c.0 as usize], false),
        }
    }
}

/// What one box of an objective keeps as per-box data when its data arguments differ
/// from box to box (`numerics::BoxData`; lowering, `box_types_of`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerBoxData {
    /// The most numbers of its data vector: the data parameters that differ and every
    /// subexpression that reads one of them and nothing but data and numbers (folded once
    /// per box, `CompiledObjective::box_data`).
    pub elements: u64,
    /// Whether a data parameter reaches a power's exponent: boxes whose data differ are
    /// then one box type each, their data constant.
    pub in_exponent: bool,
}

impl PerBoxData {
    /// The per-box data of `objective` when its data parameters marked in `varying` differ
    /// from box to box (the others are constants of the box type).
    pub fn of(objective: &Objective, varying: &[bool]) -> PerBoxData {
        let mut out = PerBoxData {
            elements: objective
                .data_params
                .iter()
                .zip(varying)
                .filter(|(_, &v)| v)
                .map(|(d, _)| d.shape.len() as u64)
                .sum(),
            in_exponent: false,
        };
        let mut lets: Vec<Reads> = Vec::with_capacity(objective.lets.len());
        for l in &objective.lets {
            let reads = out.walk(&l.expr, &lets, varying);
            lets.push(reads);
        }
        out.walk(&objective.body, &lets, varying);
        out
    }

    /// What `e` reads; counts the folded subexpressions and notes an exponent that reads
    /// a data parameter (the checker bounds the depth of expressions, so the recursion is
    /// bounded).
    fn walk(&mut self, e: &program::Expr, lets: &[Reads], varying: &[bool]) -> Reads {
        use program::ExprKind as K;
        let reads = match &e.kind {
            K::Number(_) | K::Data(_) => Reads::DATA,
            K::Port(_) | K::Var(_) => Reads::VARIABLE,
            K::DataParam(i) if varying.get(*i) == Some(&true) => Reads::PARAM,
            K::DataParam(_) => Reads::DATA,
            K::Let(i) => lets.get(*i).copied().unwrap_or(Reads::VARIABLE),
            K::Neg(a) | K::Transpose(a) | K::Index(a, _) => self.walk(a, lets, varying),
            K::Binary(op, a, b) => {
                let a = self.walk(a, lets, varying);
                let b = self.walk(b, lets, varying);
                if *op == program::BinaryOp::Pow && b.param {
                    self.in_exponent = true;
                }
                a.and(b)
            }
            K::Call(_, args) | K::Vector(args) => args
                .iter()
                .fold(Reads::DATA, |r, a| r.and(self.walk(a, lets, varying))),
            K::Matrix(rows) => rows
                .iter()
                .flatten()
                .fold(Reads::DATA, |r, a| r.and(self.walk(a, lets, varying))),
        };
        if reads.data_only && reads.param && !matches!(e.kind, K::DataParam(_)) {
            self.elements = self.elements.saturating_add(e.shape.len() as u64);
        }
        reads
    }
}

/// What a typed subexpression reads.
#[derive(Clone, Copy)]
struct Reads {
    /// Only data and numbers.
    data_only: bool,
    /// A data parameter.
    param: bool,
}

impl Reads {
    const DATA: Reads = Reads {
        data_only: true,
        param: false,
    };
    const PARAM: Reads = Reads {
        data_only: true,
        param: true,
    };
    const VARIABLE: Reads = Reads {
        data_only: false,
        param: false,
    };

    fn and(self, other: Reads) -> Reads {
        Reads {
            data_only: self.data_only && other.data_only,
            param: self.param || other.param,
        }
    }
}

/// Whether a loop bound inside `plans` mentions `name`.
fn bounds_mention(plans: &[Plan], name: &str) -> bool {
    plans.iter().any(|plan| match plan {
        Plan::For { stmt, body, .. } => {
            mentions(&stmt.range.start, name)
                || mentions(&stmt.range.end, name)
                || bounds_mention(body, name)
        }
        _ => false,
    })
}

/// Whether `expr` mentions the name `name`.
pub(super) fn mentions(expr: &ast::Expr, name: &str) -> bool {
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match &e.kind {
            ExprKind::Name(n) if n == name => return true,
            ExprKind::Number(_) | ExprKind::Name(_) => {}
            ExprKind::Neg(a) | ExprKind::Transpose(a) | ExprKind::Field(a, _) => stack.push(a),
            ExprKind::Binary(_, a, b) | ExprKind::Compare(_, a, b) => {
                stack.push(a);
                stack.push(b);
            }
            ExprKind::Call(_, args) => stack.extend(args),
            ExprKind::Index(a, indices) => {
                stack.push(a);
                stack.extend(indices);
            }
            ExprKind::Matrix(rows) => stack.extend(rows.iter().flatten()),
            ExprKind::Rows(a, range) => {
                stack.push(a);
                stack.push(&range.start);
                stack.push(&range.end);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::PerBoxData;
    use crate::check::{check_source, CheckOptions};
    use crate::diagnostic::SourceFile;

    #[test]
    fn per_box_data_counts_the_differing_data_and_what_is_folded_from_it() {
        let text = "objective f(w: real; r: real[3], k: real) {\n\
                      let s = sum(r) * 2;\n\
                      minimize (w - s)^k + w * sum(r / 4);\n\
                    }\n";
        let outcome = check_source(SourceFile::new("f.opt", text), &CheckOptions::default());
        let program = outcome.program.expect("checks");
        let f = &program.objectives[0];
        // r (3), sum(r), sum(r) * 2, the let's use `s`, r / 4 (3), sum(r / 4).
        assert_eq!(
            PerBoxData::of(f, &[true, false]),
            PerBoxData {
                elements: 3 + 1 + 1 + 1 + 3 + 1,
                in_exponent: false
            }
        );
        // k alone: nothing is folded from it, but it is an exponent.
        assert_eq!(
            PerBoxData::of(f, &[false, true]),
            PerBoxData {
                elements: 1,
                in_exponent: true
            }
        );
        assert_eq!(PerBoxData::of(f, &[false, false]), PerBoxData::default());
    }
}
