//! The settings of a run: the solve block's method, schedule and stopping rules, overridden
//! by flags (`--method 'adam(lr = 0.01)'`, `--lr`, `--beta`, `--schedule 'log(100)'`,
//! `--steps`, ...), resolved against the method registry ([`crate::method_spec`]).

use crate::check::program::{SamplingOrder, Solve};
use crate::check::sampling::SAMPLING_ORDERS;
use crate::method_spec::{
    method_spec, resolve_method, resolve_schedule, Given, GivenValue, MethodConfig, Schedule,
    SettingError, METHODS, SCHEDULES,
};
use crate::run::solver::StopRule;

/// Steps when neither the solve block nor `--steps` says.
pub const DEFAULT_STEPS: u64 = 1000;

/// The resolved settings of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The method with every parameter.
    pub method: MethodConfig,
    /// The step-size schedule (constant unless given).
    pub schedule: Schedule,
    /// When to stop.
    pub stop: StopRule,
    /// Minibatches of the sampled data (`batch`), or every row at every step.
    pub data: DataPerStep,
}

/// Which rows of the sampled data each step reads (docs/language.md, "Stochastic
/// gradients").
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DataPerStep {
    /// Every row (no `batch`: the v0 behaviour).
    Full,
    /// `batch` rows per sampled box, drawn in `order`; the full objective every
    /// `full_every` steps in the trace, and at the end.
    Minibatch {
        /// Rows per box and step.
        batch: u64,
        /// `shuffle` or `replace`.
        order: SamplingOrder,
        /// The full objective in the trace every this many steps.
        full_every: Option<u64>,
    },
}

/// The flags that override a solve block.
#[derive(Clone, Debug, Default)]
pub struct Overrides<'a> {
    /// `--method NAME` or `--method 'NAME(param = value, ...)'`.
    pub method: Option<&'a str>,
    /// `--lr`.
    pub lr: Option<f64>,
    /// `--beta`.
    pub beta: Option<f64>,
    /// `--schedule NAME` or `--schedule 'NAME(args)'`.
    pub schedule: Option<&'a str>,
    /// `--steps`.
    pub steps: Option<u64>,
    /// `--tolerance`.
    pub tolerance: Option<f64>,
    /// `--rel-tolerance`.
    pub rel_tolerance: Option<f64>,
    /// `--batch`.
    pub batch: Option<u64>,
    /// `--sampling shuffle|replace`.
    pub sampling: Option<&'a str>,
    /// `--full-every`.
    pub full_every: Option<u64>,
}

/// Resolves the settings: the flags override the solve block. A `--method` that switches
/// the optimiser keeps the block's `lr` (if the new one takes it); other parameters apply
/// only to the method they were written for.
pub fn resolve(flags: &Overrides<'_>, solve: Option<&Solve>) -> Result<Settings, String> {
    let block = solve.and_then(|s| s.method.as_ref());
    let (flag_name, flag_params) = match flags.method {
        Some(text) => {
            let (name, params) = parse_call(text, "--method")?;
            (Some(name), params)
        }
        None => (None, Vec::new()),
    };
    let name = flag_name
        .or_else(|| block.map(|m| m.name.clone()))
        .unwrap_or_else(|| "gd".into());
    let Some(spec) = method_spec(&name) else {
        let (_, hint) = resolve_method(&name, &[])
            .expect_err("unknown")
            .message_and_hint();
        return Err(format!(
            "unknown method `{name}`; {hint} (see `catopt run --help`)"
        ));
    };
    let takes = |param: &str| spec.params.iter().any(|p| p.name == param);
    let mut given: Vec<(String, GivenValue)> = match block {
        Some(m) if m.name == name => m.params.clone(),
        Some(m) => m
            .params
            .iter()
            .filter(|(p, _)| p == "lr" && takes("lr"))
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let mut set = |param: &str, value: GivenValue| {
        given.retain(|(p, _)| p != param);
        given.push((param.to_string(), value));
    };
    for (param, value) in flag_params {
        let Some(param) = param else {
            return Err(format!(
                "--method: the parameters of `{name}` must be named, as in `{name}(lr = 0.1)`"
            ));
        };
        set(&param, value);
    }
    for (flag, param, value) in [("--lr", "lr", flags.lr), ("--beta", "beta", flags.beta)] {
        if let Some(value) = value {
            if !takes(param) {
                return Err(format!(
                    "{flag}: `{name}` has no parameter `{param}`; its parameters are {}",
                    spec.params
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            set(param, GivenValue::Number(value));
        }
    }
    let borrowed: Vec<(&str, Given<'_>)> = given
        .iter()
        .map(|(p, v)| (p.as_str(), v.as_given()))
        .collect();
    let method = resolve_method(&name, &borrowed).map_err(|error| match error {
        SettingError::Missing { name: "lr", .. } => format!(
            "no step size: give one in the solve block (`method = {name}(lr = 0.1);`) or with --lr"
        ),
        other => {
            let (message, hint) = other.message_and_hint();
            format!("{message}; {hint}")
        }
    })?;
    let schedule = match flags.schedule {
        Some(text) => {
            let (schedule_name, params) = parse_call(text, "--schedule")?;
            let borrowed: Vec<(Option<&str>, Given<'_>)> = params
                .iter()
                .map(|(p, v)| (p.as_deref(), v.as_given()))
                .collect();
            resolve_schedule(&schedule_name, &borrowed).map_err(|error| {
                let (message, hint) = error.message_and_hint();
                format!("--schedule: {message}; {hint}")
            })?
        }
        None => solve
            .and_then(|s| s.schedule)
            .map_or(Schedule::Constant, |(s, _)| s),
    };
    if !spec.takes_schedule && !schedule.is_constant() {
        let takers: Vec<&str> = METHODS
            .iter()
            .filter(|m| m.takes_schedule)
            .map(|m| m.name)
            .collect();
        return Err(format!(
            "`{name}` takes no step-size schedule (it chooses its own steps), but the schedule \
             is `{}`; schedules apply to {}",
            schedule.describe(),
            takers.join(", ")
        ));
    }
    let max_steps = flags
        .steps
        .or(solve.and_then(|s| s.steps))
        .unwrap_or(DEFAULT_STEPS);
    let tolerance = flags.tolerance.or(solve.and_then(|s| s.tolerance));
    let rel_tolerance = flags.rel_tolerance.or(solve.and_then(|s| s.rel_tolerance));
    for (flag, value) in [("tolerance", tolerance), ("rel-tolerance", rel_tolerance)] {
        if value.is_some_and(|v| v.is_nan() || v < 0.0) {
            return Err(format!("--{flag} must be a non-negative number"));
        }
    }
    // `rel_tolerance = 0` turns the rule off: two bitwise-equal objectives in a row (a
    // plateau reached to the last bit, long before the gradient is small) must not stop a
    // run whose user asked for no relative stopping rule.
    let rel_tolerance = rel_tolerance.filter(|&v| v > 0.0);
    let data = data_per_step(flags, solve)?;
    if let DataPerStep::Minibatch { batch, .. } = data {
        if let Some(rule) = tolerance
            .map(|_| "tolerance")
            .or(rel_tolerance.map(|_| "rel_tolerance"))
        {
            return Err(format!(
                "`{rule}` with `batch = {batch}`: minibatch gradients and objectives are \
                 noisy estimates, so they are no stopping rule; remove `{rule}` (a minibatch \
                 run stops after `steps`, and `full_every` traces the full objective)"
            ));
        }
    }
    Ok(Settings {
        method,
        schedule,
        stop: StopRule {
            max_steps,
            tolerance,
            rel_tolerance,
        },
        data,
    })
}

/// The sampling settings: the flags override the solve block's `batch`, `sampling` and
/// `full_every`.
fn data_per_step(flags: &Overrides<'_>, solve: Option<&Solve>) -> Result<DataPerStep, String> {
    let block = solve.and_then(|s| s.sampling);
    if flags.batch == Some(0) {
        return Err("--batch must be at least 1".into());
    }
    if flags.full_every == Some(0) {
        return Err("--full-every must be at least 1".into());
    }
    let order = match flags.sampling {
        None => None,
        Some(name) => Some(SamplingOrder::from_name(name).ok_or_else(|| {
            format!(
                "--sampling `{name}`: the orders are {}",
                SAMPLING_ORDERS.join(", ")
            )
        })?),
    };
    let Some(batch) = flags.batch.or(block.map(|b| b.batch)) else {
        if let Some(flag) = order
            .map(|_| "--sampling")
            .or(flags.full_every.map(|_| "--full-every"))
        {
            return Err(format!(
                "{flag} applies to minibatches: give a batch size with --batch (or \
                 `batch = B;` in the solve block)"
            ));
        }
        return Ok(DataPerStep::Full);
    };
    Ok(DataPerStep::Minibatch {
        batch,
        order: order
            .or(block.map(|b| b.order))
            .unwrap_or(SamplingOrder::Shuffle),
        full_every: flags.full_every.or(block.and_then(|b| b.full_every)),
    })
}

/// A parsed `NAME` or `NAME(arg, name = value, ...)`: values are numbers or bare names.
type Call = (String, Vec<(Option<String>, GivenValue)>);

/// Parses a flag's `NAME(...)` the way a solve block writes it.
fn parse_call(text: &str, flag: &str) -> Result<Call, String> {
    let text = text.trim();
    let bad = |why: &str| {
        format!(
            "{flag} `{text}`: {why}; write a name, or a call such as `adam(lr = 0.01, beta1 = 0.8)` \
             or `log(100)`"
        )
    };
    let (name, rest) = match text.find('(') {
        Some(open) => {
            let Some(inner) = text[open + 1..].strip_suffix(')') else {
                return Err(bad("no closing `)`"));
            };
            (text[..open].trim(), Some(inner))
        }
        None => (text, None),
    };
    if !is_name(name) {
        return Err(bad("not a name"));
    }
    let mut params = Vec::new();
    for arg in rest.unwrap_or("").split(',') {
        let arg = arg.trim();
        if arg.is_empty() {
            if rest.is_some_and(|r| !r.trim().is_empty()) {
                return Err(bad("an empty argument"));
            }
            continue;
        }
        let (param, value) = match arg.split_once('=') {
            Some((p, v)) => (Some(p.trim()), v.trim()),
            None => (None, arg),
        };
        if param.is_some_and(|p| !is_name(p)) {
            return Err(bad("a parameter name is not a name"));
        }
        let value = match value.parse::<f64>() {
            Ok(v) => GivenValue::Number(v),
            Err(_) if is_name(value) => GivenValue::Name(value.to_string()),
            Err(_) => return Err(bad(&format!("`{value}` is neither a number nor a name"))),
        };
        params.push((param.map(str::to_string), value));
    }
    Ok((name.to_string(), params))
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The methods and schedules for `catopt run --help`, from the registry.
pub fn method_help() -> String {
    let mut text = String::from(
        "Optimisers (method = NAME(...) in a solve block, or --method 'NAME(param = value)'):\n",
    );
    for spec in METHODS {
        let params: Vec<String> = spec
            .params
            .iter()
            .map(|p| match p.default {
                crate::method_spec::Default::Required => p.name.to_string(),
                crate::method_spec::Default::Number(v) => {
                    format!("{} = {}", p.name, crate::name::short_number(v))
                }
                crate::method_spec::Default::ReciprocalOfLr => format!("{} = 1/lr", p.name),
                crate::method_spec::Default::Choice(c) => format!("{} = {c}", p.name),
            })
            .collect();
        text.push_str(&format!(
            "  {}({})  [{}]\n      {}\n",
            spec.name,
            params.join(", "),
            spec.class.as_str(),
            spec.summary
        ));
    }
    text.push_str("\nStep-size schedules (schedule = ... or --schedule; gd, momentum, nesterov, agd, adam):\n");
    for schedule in SCHEDULES {
        let params: Vec<&str> = schedule.params.iter().map(|p| p.name).collect();
        let call = if params.is_empty() {
            schedule.name.to_string()
        } else {
            format!("{}({})", schedule.name, params.join(", "))
        };
        text.push_str(&format!("  {call:<20} eta_k = {}\n", schedule.formula));
    }
    text.push_str(
        "\nExit codes: 0 done, 2 bad file or arguments, 3 diverged or no progress, 5 an output \
         could not be written, 130 interrupted.",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_like_solve_block_values() {
        let (name, params) = parse_call("adam(lr = 0.01, beta1=0.8)", "--method").unwrap();
        assert_eq!(name, "adam");
        assert_eq!(
            params,
            vec![
                (Some("lr".into()), GivenValue::Number(0.01)),
                (Some("beta1".into()), GivenValue::Number(0.8))
            ]
        );
        let (name, params) = parse_call("armijo(direction = adam)", "--method").unwrap();
        assert_eq!(name, "armijo");
        assert_eq!(params[0].1, GivenValue::Name("adam".into()));
        assert_eq!(parse_call("lbfgs", "--method").unwrap().1, vec![]);
        assert_eq!(parse_call("lbfgs()", "--method").unwrap().1, vec![]);
        assert_eq!(
            parse_call("log(100)", "--schedule").unwrap().1,
            vec![(None, GivenValue::Number(100.0))]
        );
        for bad in ["adam(lr = ", "adam(lr = 0.1,)", "9x", "adam(lr = 1 2)"] {
            assert!(parse_call(bad, "--method").is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_override_and_switching_keeps_lr() {
        let flags = Overrides {
            method: Some("momentum"),
            lr: None,
            ..Overrides::default()
        };
        let error = resolve(&flags, None).unwrap_err();
        assert!(error.contains("no step size"), "{error}");
        let flags = Overrides {
            method: Some("adam(lr = 0.5, beta2 = 0.99)"),
            schedule: Some("cosine(10)"),
            ..Overrides::default()
        };
        let settings = resolve(&flags, None).unwrap();
        assert_eq!(settings.method.number("beta2"), 0.99);
        assert_eq!(settings.schedule, Schedule::Cosine { period: 10 });
        let flags = Overrides {
            method: Some("lbfgs"),
            schedule: Some("log(10)"),
            ..Overrides::default()
        };
        assert!(resolve(&flags, None)
            .unwrap_err()
            .contains("takes no step-size schedule"));
        let flags = Overrides {
            method: Some("gd"),
            beta: Some(0.5),
            lr: Some(0.1),
            ..Overrides::default()
        };
        assert!(resolve(&flags, None)
            .unwrap_err()
            .contains("no parameter `beta`"));
        let flags = Overrides {
            method: Some("adma"),
            ..Overrides::default()
        };
        assert!(resolve(&flags, None)
            .unwrap_err()
            .contains("did you mean `adam`"));
    }
}
