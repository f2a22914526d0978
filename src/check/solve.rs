//! Solve blocks: the method and its parameters, stopping rules, seed, and init lines.

use super::program::{Composite, CompositeId, Init, InitTarget, InitValue, MethodSetting, Solve};
use super::sampling::SamplingSettings;
use super::Checker;
use crate::diagnostic::{Diagnostic, Span};
use crate::method_spec::{
    method_spec, resolve_method, resolve_schedule, Given, GivenValue, Schedule, SettingError,
    METHODS, SCHEDULES,
};
use crate::name::IndexedName;
use crate::shape::Shape;
use crate::syntax::ast::{self, ValueKind};

/// The settings a solve block accepts.
pub const KNOWN_SETTINGS: [&str; 10] = [
    "method",
    "schedule",
    "steps",
    "tolerance",
    "rel_tolerance",
    "seed",
    "batch",
    "sampling",
    "full_every",
    "init",
];

/// One argument of a method or schedule call, as written.
struct SettingArg {
    name: Option<String>,
    value: GivenValue,
    name_span: Span,
    value_span: Span,
}

/// A call value `name(args)` or a bare name (`lbfgs`, `inv_sqrt`).
fn call_or_name(value: &ast::Value) -> Option<(ast::Ident, &[ast::Arg])> {
    match &value.kind {
        ValueKind::Call { name, args } => Some((name.clone(), args)),
        ValueKind::Expr(ast::Expr {
            kind: ast::ExprKind::Name(n),
            span,
        }) => Some((
            ast::Ident {
                name: n.clone(),
                span: *span,
            },
            &[],
        )),
        _ => None,
    }
}

/// At most this many `init` targets are listed in E0507's help (then "and N more").
const INIT_TARGETS_SHOWN: usize = 12;

/// At most this many members of a junction family are listed in E0507's help.
const FAMILY_MEMBERS_SHOWN: usize = 5;

/// At most this many `init` targets are compared with a misspelt one.
const INIT_TARGETS_COMPARED: usize = 10_000;

/// The `init` targets gathered for E0507's help.
#[derive(Default)]
struct InitTargets {
    /// The first few, as shown.
    shown: Vec<String>,
    /// Names a misspelt target is compared with (the first [`INIT_TARGETS_COMPARED`]).
    candidates: Vec<String>,
    /// How many there are.
    total: usize,
}

impl InitTargets {
    fn push(&mut self, name: String) {
        let shown = format!("`{name}`");
        self.push_shown(name, shown);
    }

    fn push_shown(&mut self, name: String, shown: String) {
        self.total += 1;
        if self.shown.len() < INIT_TARGETS_SHOWN {
            self.shown.push(shown);
        }
        if self.candidates.len() < INIT_TARGETS_COMPARED {
            self.candidates.push(name);
        }
    }
}

impl Checker<'_> {
    /// Checks one solve block.
    pub(crate) fn solve(&mut self, item: &ast::SolveItem) -> Option<Solve> {
        let name = &item.target.name;
        let Some(&index) = self.composite_names.get(name) else {
            let help = match self.globals.get(name) {
                Some((super::GlobalKind::Objective, _)) => {
                    format!("wrap the objective in a composite: `composite c() {{ {name}(...); }}` and solve `c`")
                }
                Some((kind, _)) => format!("`{name}` is {kind}; solve a composite"),
                None => self.suggest(name, "solve the name of a composite defined in this file"),
            };
            self.error(
                Diagnostic::error(
                    "E0501",
                    format!("unknown composite `{name}` in a solve block"),
                    item.target.span,
                )
                .with_label("not a composite")
                .with_help(help),
            );
            return None;
        };
        let composite = self.composites[index].take();
        let result = self.solve_settings(item, CompositeId(index as u32), composite.as_ref());
        self.composites[index] = composite;
        result
    }

    fn solve_settings(
        &mut self,
        item: &ast::SolveItem,
        id: CompositeId,
        composite: Option<&Composite>,
    ) -> Option<Solve> {
        let mut solve = Solve {
            composite: id,
            span: item.span,
            method: None,
            schedule: None,
            steps: None,
            tolerance: None,
            rel_tolerance: None,
            seed: None,
            inits: Vec::new(),
            sampling: None,
        };
        let mut sampling = SamplingSettings::default();
        let mut seen: Vec<(&str, Span)> = Vec::new();
        let mut ok = true;
        for setting in &item.settings {
            match setting {
                ast::Setting::Assign { name, value, .. } => {
                    if let Some(&(_, first)) = seen.iter().find(|(n, _)| *n == name.name) {
                        self.error(
                            Diagnostic::error(
                                "E0505",
                                format!("setting `{}` is given twice", name.name),
                                name.span,
                            )
                            .with_label("set again")
                            .with_secondary(first, "first set here")
                            .with_help("give each setting once"),
                        );
                        ok = false;
                        continue;
                    }
                    seen.push((name.name.as_str(), name.span));
                    let r = match name.name.as_str() {
                        "method" => self.method(value).map(|m| solve.method = Some(m)),
                        "schedule" => self.schedule(value).map(|s| solve.schedule = Some(s)),
                        "steps" => self.count(value, "steps", 0).map(|v| solve.steps = Some(v)),
                        "seed" => self.count(value, "seed", 0).map(|v| solve.seed = Some(v)),
                        "tolerance" => self
                            .non_negative(value, "tolerance")
                            .map(|v| solve.tolerance = Some(v)),
                        "rel_tolerance" => self
                            .non_negative(value, "rel_tolerance")
                            .map(|v| solve.rel_tolerance = Some(v)),
                        "batch" => self.batch_setting(value).map(|b| sampling.batch = Some(b)),
                        "sampling" => self
                            .sampling_setting(value)
                            .map(|o| sampling.order = Some(o)),
                        "full_every" => self
                            .full_every_setting(value)
                            .map(|n| sampling.full_every = Some(n)),
                        other => {
                            let help = match super::closest(other, KNOWN_SETTINGS.iter().copied()) {
                                Some(best) => format!(
                                    "did you mean `{best}`? The settings are {}",
                                    KNOWN_SETTINGS.join(", ")
                                ),
                                None => format!("the settings are {}", KNOWN_SETTINGS.join(", ")),
                            };
                            self.error(
                                Diagnostic::error(
                                    "E0506",
                                    format!("unknown setting `{other}`"),
                                    name.span,
                                )
                                .with_label("not a solve setting")
                                .with_help(help),
                            );
                            None
                        }
                    };
                    ok &= r.is_some();
                }
                ast::Setting::Init {
                    target,
                    value,
                    span,
                } => match self.init(target, value, *span, composite) {
                    Some(init) => solve.inits.push(init),
                    None => ok = false,
                },
            }
        }
        if let (Some(method), Some(composite)) = (&solve.method, composite) {
            let given: Vec<(&str, Given<'_>)> = method
                .params
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_given()))
                .collect();
            if let Ok(config) = resolve_method(&method.name, &given) {
                let bytes = composite.memory_estimate_bytes as f64
                    + config.state_bytes_per_variable() as f64
                        * composite.decision_variables as f64;
                let limit = self.options.memory_limit_bytes;
                if bytes > limit as f64 {
                    self.error(
                        Diagnostic::error(
                            "E0601",
                            format!(
                                "`{}` on composite `{}` would need about {} ({} decision \
                                 variables, {} bytes of method state each), more than the limit \
                                 of {}",
                                config.describe(),
                                composite.name,
                                super::human_bytes(bytes),
                                composite.decision_variables,
                                config.state_bytes_per_variable(),
                                super::human_bytes(limit as f64)
                            ),
                            method.span,
                        )
                        .with_label("too much method state")
                        .with_help(
                            "choose a method that keeps less state per variable (`gd`, \
                             `momentum`), or a smaller `memory`",
                        ),
                    );
                    ok = false;
                }
            }
        }
        if let (Some(method), Some((schedule, span))) = (&solve.method, solve.schedule) {
            let takes = method_spec(&method.name).is_some_and(|m| m.takes_schedule);
            if !takes && !schedule.is_constant() {
                let takers: Vec<&str> = METHODS
                    .iter()
                    .filter(|m| m.takes_schedule)
                    .map(|m| m.name)
                    .collect();
                self.error(
                    Diagnostic::error(
                        "E0510",
                        format!(
                            "`{}` takes no step-size schedule (it chooses its own steps)",
                            method.name
                        ),
                        span,
                    )
                    .with_label("a schedule")
                    .with_secondary(method.span, "this method")
                    .with_help(format!(
                        "remove `schedule = {}`; schedules apply to {}",
                        schedule.describe(),
                        takers.join(", ")
                    )),
                );
                ok = false;
            }
        }
        let stopping_rules: Vec<(&str, Span)> = seen
            .iter()
            .filter(|(n, _)| matches!(*n, "tolerance" | "rel_tolerance"))
            .copied()
            .collect();
        match self.sampling(sampling, composite, &stopping_rules) {
            Ok(sampling) => solve.sampling = sampling,
            Err(()) => ok = false,
        }
        ok.then_some(solve)
    }

    fn number_value(&mut self, value: &ast::Value, what: &str) -> Option<f64> {
        match &value.kind {
            ValueKind::Expr(e) => self.const_eval(e, &[]),
            _ => {
                self.error(
                    Diagnostic::error(
                        "E0504",
                        format!(
                            "`{what}` needs a number, found `{}`",
                            self.snippet(value.span)
                        ),
                        value.span,
                    )
                    .with_label("not a number")
                    .with_help(format!("write `{what} = 0.1;`")),
                );
                None
            }
        }
    }

    fn bad_value(&mut self, span: Span, what: &str, found: f64, needs: &str) {
        self.error(
            Diagnostic::error(
                "E0504",
                format!(
                    "`{what}` must be {needs}, found {}",
                    crate::name::short_number(found)
                ),
                span,
            )
            .with_label("bad value")
            .with_help(format!("give `{what}` {needs}")),
        );
    }

    pub(super) fn count(&mut self, value: &ast::Value, what: &str, min: u64) -> Option<u64> {
        let v = self.number_value(value, what)?;
        if v.fract() != 0.0 || v < min as f64 || v > 9.0e15 {
            let needs = if min == 0 {
                "a non-negative integer"
            } else {
                "a positive integer"
            };
            self.bad_value(value.span, what, v, needs);
            return None;
        }
        Some(v as u64)
    }

    fn non_negative(&mut self, value: &ast::Value, what: &str) -> Option<f64> {
        let v = self.number_value(value, what)?;
        if v < 0.0 {
            self.bad_value(value.span, what, v, "a non-negative number");
            return None;
        }
        Some(v)
    }

    /// `method = NAME(param = value, ...)` or a bare `NAME`: checked against the method
    /// registry ([`crate::method_spec`]), every value in its range.
    fn method(&mut self, value: &ast::Value) -> Option<MethodSetting> {
        let known = METHODS
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", ");
        let Some((name, args)) = call_or_name(value) else {
            self.error(
                Diagnostic::error(
                    "E0502",
                    format!(
                        "`method` needs an optimiser, found `{}`",
                        self.snippet(value.span)
                    ),
                    value.span,
                )
                .with_label("not an optimiser")
                .with_help(format!("the optimisers are {known} (`catopt run --help`)")),
            );
            return None;
        };
        let Some(spec) = method_spec(&name.name) else {
            let error = resolve_method(&name.name, &[]).expect_err("unknown method");
            let (message, help) = error.message_and_hint();
            self.error(
                Diagnostic::error("E0502", message, name.span)
                    .with_label("not an optimiser")
                    .with_help(help),
            );
            return None;
        };
        let params = self.setting_args(spec.name, args, "E0503", false)?;
        self.resolve_setting("E0503", value.span, &params, |given| {
            resolve_method(spec.name, given).map(|_| ())
        })?;
        Some(MethodSetting {
            name: spec.name.to_string(),
            params: params
                .into_iter()
                .map(|a| (a.name.unwrap_or_default(), a.value))
                .collect(),
            span: value.span,
        })
    }

    /// `schedule = log(100);`, `step(every = 10, factor = 0.5)`, or a bare `inv_sqrt`.
    fn schedule(&mut self, value: &ast::Value) -> Option<(Schedule, Span)> {
        let Some((name, args)) = call_or_name(value) else {
            self.error(
                Diagnostic::error(
                    "E0509",
                    format!(
                        "`schedule` needs a schedule, found `{}`",
                        self.snippet(value.span)
                    ),
                    value.span,
                )
                .with_label("not a schedule")
                .with_help(format!(
                    "the schedules are {}",
                    SCHEDULES
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            return None;
        };
        let params = self.setting_args(&name.name, args, "E0509", true)?;
        let mut schedule = None;
        self.resolve_setting("E0509", value.span, &params, |_| {
            let positional: Vec<(Option<&str>, Given<'_>)> = params
                .iter()
                .map(|a| (a.name.as_deref(), a.value.as_given()))
                .collect();
            resolve_schedule(&name.name, &positional).map(|s| schedule = Some(s))
        })?;
        schedule.map(|s| (s, value.span))
    }

    /// The arguments of a method or schedule call: each a number (a constant expression)
    /// or a bare name, named unless `positional` is allowed.
    fn setting_args(
        &mut self,
        owner: &str,
        args: &[ast::Arg],
        code: &'static str,
        positional: bool,
    ) -> Option<Vec<SettingArg>> {
        let mut params = Vec::with_capacity(args.len());
        let mut ok = true;
        for arg in args {
            if arg.name.is_none() && !positional {
                self.error(
                    Diagnostic::error(
                        code,
                        format!("parameters of `{owner}` must be named"),
                        arg.value.span,
                    )
                    .with_label("unnamed parameter")
                    .with_help(format!(
                        "write `{owner}(lr = {})`",
                        self.snippet(arg.value.span)
                    )),
                );
                ok = false;
                continue;
            }
            let value = match &arg.value.kind {
                ValueKind::Expr(ast::Expr {
                    kind: ast::ExprKind::Name(n),
                    ..
                }) if !self.const_state.contains_key(n.as_str()) => GivenValue::Name(n.clone()),
                _ => {
                    let what = arg.name.as_ref().map_or(owner, |n| n.name.as_str());
                    match self.number_value(&arg.value, what) {
                        Some(v) => GivenValue::Number(v),
                        None => {
                            ok = false;
                            continue;
                        }
                    }
                }
            };
            params.push(SettingArg {
                name: arg.name.as_ref().map(|n| n.name.clone()),
                value,
                name_span: arg.name.as_ref().map_or(arg.value.span, |n| n.span),
                value_span: arg.value.span,
            });
        }
        ok.then_some(params)
    }

    /// Runs `resolve` on the given parameters and reports its error at the parameter it
    /// names (or the whole value).
    fn resolve_setting(
        &mut self,
        code: &'static str,
        span: Span,
        params: &[SettingArg],
        resolve: impl FnOnce(&[(&str, Given<'_>)]) -> Result<(), SettingError>,
    ) -> Option<()> {
        let given: Vec<(&str, Given<'_>)> = params
            .iter()
            .map(|a| (a.name.as_deref().unwrap_or(""), a.value.as_given()))
            .collect();
        let Err(error) = resolve(&given) else {
            return Some(());
        };
        let culprit = match &error {
            SettingError::UnknownParameter { name, .. } | SettingError::Repeated(name) => params
                .iter()
                .rev()
                .find(|a| a.name.as_deref() == Some(name))
                .map(|a| a.name_span),
            SettingError::OutOfRange { name, .. } => params
                .iter()
                .find(|a| a.name.as_deref() == Some(name))
                .map(|a| a.value_span),
            _ => None,
        };
        let (code, label) = match &error {
            SettingError::OutOfRange { .. } => ("E0504", "bad value".to_string()),
            SettingError::UnknownParameter { .. } => (code, "unknown parameter".into()),
            SettingError::Repeated(_) => (code, "repeated".into()),
            SettingError::Missing { name, .. } => (code, format!("no `{name}`")),
            SettingError::TooMany { .. } => (code, "too many values".into()),
            SettingError::Unknown { .. } => (code, "unknown name".into()),
        };
        let (message, help) = error.message_and_hint();
        self.error(
            Diagnostic::error(code, message, culprit.unwrap_or(span))
                .with_label(label)
                .with_help(help),
        );
        None
    }

    /// One segment of a dotted `init` target as a name: `left`, `f[3]` or `cell[1, 2]`.
    fn init_segment(&mut self, segment: &ast::JunctionRef) -> Option<IndexedName> {
        let mut indices = Vec::with_capacity(1 + segment.more_indices.len());
        for index in segment.index.iter().chain(&segment.more_indices) {
            indices.push(self.const_int(index, &[], "a box index")?);
        }
        Some(IndexedName::with_indices(&segment.name.name, &indices))
    }

    /// E0507's help: a did-you-mean when a valid `init` target of `composite` is close to
    /// `written`, then `what` targets may be, then the targets (junctions, junction families, private
    /// `label.var` of every box, nested composites' boxes included), the first
    /// [`INIT_TARGETS_SHOWN`] of them and a count of the rest.
    fn init_targets_help(&self, written: &str, what: &str, composite: &Composite) -> String {
        let mut targets = InitTargets::default();
        let mut families: Vec<(std::sync::Arc<str>, Vec<i64>)> = Vec::new();
        for junction in composite.junctions.iter() {
            match junction.name.index {
                None => targets.push(junction.name.base.to_string()),
                Some(i) => match families.iter_mut().find(|(b, _)| *b == junction.name.base) {
                    Some((_, members)) => members.push(i),
                    None => families.push((junction.name.base.clone(), vec![i])),
                },
            }
        }
        // A family (`x`, or a member `x[k]`) is one target, shown with its members.
        let mut family_note = None;
        for (base, mut members) in families {
            members.sort_unstable();
            let listed: Vec<String> = members
                .iter()
                .take(FAMILY_MEMBERS_SHOWN)
                .map(|i| format!("{base}[{i}]"))
                .collect();
            let more = members.len().saturating_sub(listed.len());
            let members_text = format!(
                "{}{}",
                listed.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
            if written.split('[').next() == Some(&*base) && written.contains('[') {
                family_note = Some(format!(
                    " `{base}` is a junction family whose members are {members_text}."
                ));
            }
            targets.push_shown(
                base.to_string(),
                format!("`{base}` (a family: {members_text})"),
            );
        }
        self.private_targets(composite, "", &mut targets, 0);
        let mut help = match super::closest(written, targets.candidates.iter().map(String::as_str))
        {
            Some(best) => {
                let mut chars = what.chars();
                let first = chars.next().map(|c| c.to_ascii_uppercase());
                format!(
                    "did you mean `{best}`? {}{}.",
                    first.unwrap_or(' '),
                    chars.as_str()
                )
            }
            None => format!("{what}."),
        };
        help.push_str(&family_note.unwrap_or_default());
        if targets.total == 0 {
            help.push_str(&format!(
                " `{}` has no junction and no private variable.",
                composite.name
            ));
            return help;
        }
        help.push_str(&format!(
            " The init targets of `{}` are: {}",
            composite.name,
            targets.shown.join(", ")
        ));
        if targets.total > targets.shown.len() {
            help.push_str(&format!(
                " and {} more",
                targets.total - targets.shown.len()
            ));
        }
        help
    }

    /// Adds the private variables `prefix label.var` of `composite`'s boxes to `targets`,
    /// nested composites' boxes included (`outer.inner.var`).
    fn private_targets(
        &self,
        composite: &Composite,
        prefix: &str,
        targets: &mut InitTargets,
        depth: usize,
    ) {
        if depth > 256 {
            return;
        }
        for call in composite.boxes.iter() {
            let label = format!("{prefix}{}", call.label);
            match call.callee {
                super::program::Callee::Objective(id) => {
                    if let Some(Some(objective)) = self.objectives.get(id.0 as usize) {
                        for var in &objective.vars {
                            targets.push(format!("{label}.{}", var.name));
                        }
                    }
                }
                super::program::Callee::Composite(id) => {
                    if let Some(Some(inner)) = self.composites.get(id.0 as usize) {
                        self.private_targets(inner, &format!("{label}."), targets, depth + 1);
                    }
                }
            }
        }
    }

    fn init(
        &mut self,
        target: &[ast::JunctionRef],
        value: &ast::Value,
        span: Span,
        composite: Option<&Composite>,
    ) -> Option<Init> {
        let composite = composite?;
        let first = target.first()?;
        let mut shape: Option<Shape> = None;
        let resolved = if target.len() == 1 && !first.more_indices.is_empty() {
            // Several indices name a box, and a box is no init target by itself.
            None
        } else if target.len() == 1 {
            let name = first.name.name.as_str();
            match &first.index {
                None => {
                    if let Some((i, j)) = composite
                        .junctions
                        .iter()
                        .enumerate()
                        .find(|(_, j)| j.name.index.is_none() && &*j.name.base == name)
                    {
                        shape = Some(j.shape);
                        Some(InitTarget::Junction(super::program::JunctionId(i as u32)))
                    } else {
                        let mut members: Vec<(i64, u32)> = composite
                            .junctions
                            .iter()
                            .enumerate()
                            .filter(|(_, j)| j.name.index.is_some() && &*j.name.base == name)
                            .map(|(i, j)| (j.name.index.unwrap_or(0), i as u32))
                            .collect();
                        if members.is_empty() {
                            None
                        } else {
                            members.sort_unstable();
                            // A family's initial data is one entry per (scalar) member.
                            let member_shape = composite.junctions.shape(members[0].1 as usize);
                            shape = member_shape
                                .is_scalar()
                                .then_some(Shape::Vector(members.len()));
                            Some(InitTarget::Family(
                                members
                                    .into_iter()
                                    .map(|(_, i)| super::program::JunctionId(i))
                                    .collect(),
                            ))
                        }
                    }
                }
                Some(index) => {
                    let i = self.const_int(index, &[], "a junction index")?;
                    composite
                        .junctions
                        .iter()
                        .position(|j| j.name.index == Some(i) && &*j.name.base == name)
                        .map(|p| {
                            shape = Some(composite.junctions.shape(p));
                            InitTarget::Junction(super::program::JunctionId(p as u32))
                        })
                }
            }
        } else {
            let label = self.init_segment(first)?;
            let label_exists = composite.boxes.iter().any(|b| b.label == label);
            if label_exists {
                let mut path = Vec::with_capacity(target.len());
                for seg in target {
                    path.push(self.init_segment(seg)?.to_string());
                }
                Some(InitTarget::Private(path))
            } else {
                None
            }
        };
        let Some(target_value) = resolved else {
            let shown = self.snippet(target.first()?.span.join(target.last()?.span));
            let what = if target.len() == 1 {
                format!("name a junction or junction family of `{}`, or a private variable as `label.var`", composite.name)
            } else {
                format!("the first part must be a box label of `{}` (an objective's name, `name[k]`, or a given label)", composite.name)
            };
            let help = self.init_targets_help(&shown, &what, composite);
            self.error(
                Diagnostic::error(
                    "E0507",
                    format!(
                        "`init {shown}`: no such target in composite `{}`",
                        composite.name
                    ),
                    first.span,
                )
                .with_label("unknown init target")
                .with_help(help),
            );
            return None;
        };
        let init_value = match &value.kind {
            ValueKind::Expr(e) => InitValue::Number(self.const_eval(e, &[])?),
            ValueKind::Call { name, args } if name.name == "csv" => {
                let table = self.csv_call(name.span, args, &[])?;
                let data =
                    self.table_value(table, shape, &self.snippet(first.span), value.span, None)?;
                InitValue::Data(data)
            }
            ValueKind::Call { name, args } if name.name == "normal" => {
                let numbers: Vec<Option<f64>> = args
                    .iter()
                    .map(|a| match (&a.name, &a.value.kind) {
                        (None, ValueKind::Expr(e)) => self.const_eval(e, &[]),
                        _ => None,
                    })
                    .collect();
                match numbers.as_slice() {
                    [Some(mean), Some(sd)] if *sd >= 0.0 => InitValue::Normal {
                        mean: *mean,
                        sd: *sd,
                    },
                    _ => {
                        self.error(
                            Diagnostic::error(
                                "E0508",
                                "`normal` needs a mean and a non-negative standard deviation",
                                value.span,
                            )
                            .with_label("bad arguments")
                            .with_help("write `normal(0, 0.1)`"),
                        );
                        return None;
                    }
                }
            }
            _ => {
                self.error(
                    Diagnostic::error(
                        "E0508",
                        format!("`{}` is not an initial value", self.snippet(value.span)),
                        value.span,
                    )
                    .with_label("not an initial value")
                    .with_help(
                        "an initial value is a number, `csv(\"file.csv\")` or `normal(mean, sd)`",
                    ),
                );
                return None;
            }
        };
        Some(Init {
            target: target_value,
            value: init_value,
            span,
        })
    }
}
