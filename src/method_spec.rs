//! The optimisers and step-size schedules as the language knows them: names, parameters
//! with defaults and ranges, class, and update formula (docs/language.md, "Methods").
//!
//! This one registry is read by the checker (which settings a solve block may write), the
//! CLI (`--method`, `--schedule`, `catopt run --help`), `catopt explain`, `catopt laws` and
//! the docs test. It is data only: the arithmetic of each method is one file under
//! `run::method`, found by [`MethodSpec::name`].
//!
//! ```
//! use catopt::method_spec::{resolve_method, Given};
//! let adam = resolve_method("adam", &[("lr", Given::Number(0.01))]).unwrap();
//! assert_eq!(adam.number("beta2"), 0.999);
//! assert!(resolve_method("adam", &[("beta1", Given::Number(1.2))]).is_err());
//! ```

use std::fmt;

mod schedule;
pub use schedule::{resolve_schedule, Schedule, ScheduleSpec, SCHEDULES};

/// Which methods compose, and how (`catopt laws` reports and checks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodClass {
    /// Each box's own update, added on junctions, equals the composite update.
    Compositional,
    /// Reads each coordinate's summed gradient: distributed equals central, but each box
    /// running the method on its own objective is a different algorithm.
    Coordinatewise,
    /// Needs composite function values (a line search): one reduction per trial.
    Global,
}

impl MethodClass {
    /// `compositional`, `coordinatewise` or `global`.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodClass::Compositional => "compositional",
            MethodClass::Coordinatewise => "coordinatewise",
            MethodClass::Global => "global",
        }
    }
}

/// The values a parameter may take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Range {
    /// A number > 0.
    Positive,
    /// A number >= 0.
    NonNegative,
    /// A number in [0, 1).
    UnitHalfOpen,
    /// A number in (0, 1).
    UnitOpen,
    /// A number >= 1.
    AtLeastOne,
    /// A whole number from `min` to `max`.
    Count {
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// One of these names.
    Choice(&'static [&'static str]),
}

impl Range {
    /// Whether a number is allowed (never for a choice).
    pub fn admits(self, value: f64) -> bool {
        match self {
            Range::Positive => value.is_finite() && value > 0.0,
            Range::NonNegative => value.is_finite() && value >= 0.0,
            Range::UnitHalfOpen => (0.0..1.0).contains(&value),
            Range::UnitOpen => value > 0.0 && value < 1.0,
            Range::AtLeastOne => value.is_finite() && value >= 1.0,
            Range::Count { min, max } => {
                value.fract() == 0.0 && value >= min as f64 && value <= max as f64
            }
            Range::Choice(_) => false,
        }
    }

    /// What the range admits, as a phrase: "positive", "in [0, 1)", "one of gd, adam".
    pub fn describe(self) -> String {
        match self {
            Range::Positive => "a positive number".into(),
            Range::NonNegative => "a non-negative number".into(),
            Range::UnitHalfOpen => "a number in [0, 1)".into(),
            Range::UnitOpen => "a number in (0, 1)".into(),
            Range::AtLeastOne => "a number >= 1".into(),
            Range::Count { min, max } if max >= 1 << 53 => format!("a whole number >= {min}"),
            Range::Count { min, max } => format!("a whole number from {min} to {max}"),
            Range::Choice(names) => format!("one of {}", names.join(", ")),
        }
    }
}

/// A parameter's default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Default {
    /// None: the parameter must be given.
    Required,
    /// This number.
    Number(f64),
    /// `1 / lr` (agd's `gamma0`).
    ReciprocalOfLr,
    /// This name (a choice).
    Choice(&'static str),
}

/// One parameter of a method or schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSpec {
    /// As written: `lr`, `beta`.
    pub name: &'static str,
    /// Its default.
    pub default: Default,
    /// The values it may take.
    pub range: Range,
    /// What it means, in a few words.
    pub help: &'static str,
}

/// One optimiser.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MethodSpec {
    /// As written in `method = NAME(...)` and `--method`.
    pub name: &'static str,
    /// Its parameters, in the order they are printed.
    pub params: &'static [ParamSpec],
    /// Which class it is in.
    pub class: MethodClass,
    /// Whether `schedule = ...` applies to it.
    pub takes_schedule: bool,
    /// One line: what it is.
    pub summary: &'static str,
    /// The update, as in docs/language.md.
    pub formula: &'static str,
    /// How much state the method keeps per decision variable, beyond gd's.
    pub state: StateSize,
}

/// The numbers a method keeps per decision variable beyond gradient descent's, for the
/// memory estimate: `vectors` rotated by the solver (three copies each: current, proposal,
/// previous), and `per_memory` vectors per unit of the `memory` parameter, kept once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateSize {
    /// Vectors beyond `values` that the solver rotates (momentum's velocity, Adam's m, s).
    pub vectors: u64,
    /// Vectors the method keeps itself whatever `memory` is (a search direction, a trial
    /// point).
    pub scratch: u64,
    /// Vectors per unit of the `memory` parameter (lbfgs: the pairs s, y).
    pub per_memory: u64,
}

const LR: ParamSpec = ParamSpec {
    name: "lr",
    default: Default::Required,
    range: Range::Positive,
    help: "the step size (eta_k = lr under the constant schedule)",
};

const fn number(name: &'static str, value: f64, range: Range, help: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        default: Default::Number(value),
        range,
        help,
    }
}

const ADAM_PARAMS: [ParamSpec; 3] = [
    number(
        "beta1",
        0.9,
        Range::UnitHalfOpen,
        "decay of the first moment m",
    ),
    number(
        "beta2",
        0.999,
        Range::UnitHalfOpen,
        "decay of the second moment s",
    ),
    number("eps", 1e-8, Range::Positive, "added to sqrt(s_hat)"),
];

/// Every optimiser, in the order `catopt run --help` lists them.
pub const METHODS: &[MethodSpec] = &[
    MethodSpec {
        name: "gd",
        params: &[LR],
        class: MethodClass::Compositional,
        takes_schedule: true,
        summary: "gradient descent",
        state: StateSize {
            vectors: 0,
            scratch: 0,
            per_memory: 0,
        },
        formula: "x <- x - eta_k g",
    },
    MethodSpec {
        name: "momentum",
        params: &[
            LR,
            number("beta", 0.9, Range::UnitHalfOpen, "the momentum coefficient"),
        ],
        class: MethodClass::Compositional,
        takes_schedule: true,
        summary: "heavy-ball momentum",
        state: StateSize {
            vectors: 1,
            scratch: 0,
            per_memory: 0,
        },
        formula: "v <- beta v + g; x <- x - eta_k v   (v0 = 0)",
    },
    MethodSpec {
        name: "nesterov",
        params: &[
            LR,
            number("beta", 0.9, Range::UnitHalfOpen, "the momentum coefficient"),
        ],
        class: MethodClass::Compositional,
        takes_schedule: true,
        summary: "Nesterov's accelerated gradient (gradient at the look-ahead y)",
        state: StateSize {
            vectors: 1,
            scratch: 0,
            per_memory: 0,
        },
        formula: "x' = y - eta_k grad F(y); y <- x' + beta (x' - x); x <- x'   (y0 = x0)",
    },
    MethodSpec {
        name: "agd",
        params: &[
            LR,
            number("mu", 0.0, Range::NonNegative, "strong-convexity estimate"),
            ParamSpec {
                name: "gamma0",
                default: Default::ReciprocalOfLr,
                range: Range::Positive,
                help: "initial gamma (default 1/lr)",
            },
        ],
        class: MethodClass::Compositional,
        takes_schedule: true,
        summary: "accelerated GD, estimating-sequence form (Mishkin, Pilanci, Schmidt 2024)",
        state: StateSize {
            vectors: 2,
            scratch: 0,
            per_memory: 0,
        },
        formula: "alpha^2 = eta_k ((1-alpha) gamma_k + alpha mu); gamma_{k+1} = (1-alpha) gamma_k \
                  + alpha mu; y = (alpha gamma_k v + gamma_{k+1} x) / (gamma_k + alpha mu); \
                  g = grad F(y); x <- y - eta_k g; v <- ((1-alpha) gamma_k v + alpha mu y - \
                  alpha g) / gamma_{k+1}   (v0 = x0)",
    },
    MethodSpec {
        name: "adam",
        params: &[LR, ADAM_PARAMS[0], ADAM_PARAMS[1], ADAM_PARAMS[2]],
        class: MethodClass::Coordinatewise,
        takes_schedule: true,
        summary: "Adam (coordinatewise: distributed = central, per-box Adam is another method)",
        state: StateSize {
            vectors: 2,
            scratch: 0,
            per_memory: 0,
        },
        formula: "m <- beta1 m + (1-beta1) g; s <- beta2 s + (1-beta2) g^2; x <- x - eta_k \
                  (m / (1-beta1^t)) / (sqrt(s / (1-beta2^t)) + eps)   (t = k + 1)",
    },
    MethodSpec {
        name: "armijo",
        params: &[
            number("lr", 1.0, Range::Positive, "the first trial step size"),
            number("c", 0.1, Range::UnitOpen, "sufficient-decrease constant"),
            number("shrink", 0.5, Range::UnitOpen, "factor on a rejected trial"),
            number(
                "grow",
                2.0,
                Range::AtLeastOne,
                "factor on the last accepted step",
            ),
            ParamSpec {
                name: "direction",
                default: Default::Choice("gd"),
                range: Range::Choice(&["gd", "adam"]),
                help: "the search direction",
            },
            ParamSpec {
                name: "groups",
                default: Default::Choice("all"),
                range: Range::Choice(&["all", "variables"]),
                help: "one step size for all, or one per junction (+ one for private variables)",
            },
            ADAM_PARAMS[0],
            ADAM_PARAMS[1],
            ADAM_PARAMS[2],
        ],
        class: MethodClass::Global,
        takes_schedule: false,
        summary: "Armijo line search (Vaswani et al. 2019; Adam-SLS and per-group split of \
                  Kenneweg et al. 2023)",
        state: StateSize {
            vectors: 2,
            scratch: 2,
            per_memory: 0,
        },
        formula: "eta <- grow eta_prev; while F(x - eta d) > F(x) - c eta (g . d) and fewer \
                  than 100 tries: eta <- shrink eta; x <- x - eta d",
    },
    MethodSpec {
        name: "lbfgs",
        params: &[
            number(
                "memory",
                10.0,
                Range::Count { min: 1, max: 1000 },
                "pairs (s, y) kept",
            ),
            number("c", 1e-4, Range::UnitOpen, "sufficient-decrease constant"),
        ],
        class: MethodClass::Global,
        takes_schedule: false,
        summary: "limited-memory BFGS with backtracking (halving) Armijo line search",
        state: StateSize {
            vectors: 0,
            scratch: 3,
            per_memory: 2,
        },
        formula: "d = two-loop recursion on the last `memory` pairs; x <- x - eta d, eta = 1, \
                  1/2, ... until F(x - eta d) <= F(x) - c eta (g . d)",
    },
];

/// A parameter value as written: a number or a bare name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Given<'a> {
    /// `lr = 0.1`.
    Number(f64),
    /// `direction = adam`.
    Name(&'a str),
}

/// A parameter value as written, owned (a checked solve block keeps them).
#[derive(Clone, Debug, PartialEq)]
pub enum GivenValue {
    /// A number.
    Number(f64),
    /// A bare name.
    Name(String),
}

impl GivenValue {
    /// Borrowed, for [`resolve_method`].
    pub fn as_given(&self) -> Given<'_> {
        match self {
            GivenValue::Number(v) => Given::Number(*v),
            GivenValue::Name(n) => Given::Name(n),
        }
    }
}

impl fmt::Display for GivenValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GivenValue::Number(v) => write!(f, "{}", crate::name::short_number(*v)),
            GivenValue::Name(n) => f.write_str(n),
        }
    }
}

/// A resolved parameter value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A number.
    Number(f64),
    /// One of the parameter's choices.
    Choice(&'static str),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(v) => write!(f, "{}", crate::name::short_number(*v)),
            Value::Choice(name) => f.write_str(name),
        }
    }
}

/// A method with every parameter resolved (given or default), checked against its ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodConfig {
    /// The method.
    pub spec: &'static MethodSpec,
    /// One value per parameter of `spec.params`, in that order.
    pub values: Vec<Value>,
}

impl MethodConfig {
    /// The method's name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// Bytes the method keeps per decision variable beyond gradient descent's (for the
    /// memory estimate; see [`StateSize`]).
    pub fn state_bytes_per_variable(&self) -> u64 {
        let state = self.spec.state;
        let memory = self
            .spec
            .params
            .iter()
            .position(|p| p.name == "memory")
            .and_then(|i| match self.values[i] {
                Value::Number(v) => Some(v as u64),
                Value::Choice(_) => None,
            })
            .unwrap_or(0);
        8 * (3 * state.vectors + state.scratch + state.per_memory * memory)
    }

    /// The step size `lr`, for the methods that have one.
    pub fn learning_rate(&self) -> Option<f64> {
        self.spec
            .params
            .iter()
            .position(|p| p.name == "lr")
            .and_then(|i| match self.values[i] {
                Value::Number(v) => Some(v),
                Value::Choice(_) => None,
            })
    }

    /// The method as JSON: `{"name": "adam", "lr": 0.01, ..., "class": "coordinatewise"}`
    /// (numbers as numbers, choices as strings).
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("name".into(), self.spec.name.into());
        for (name, value) in self.parameters() {
            object.insert(
                name.into(),
                match value {
                    Value::Number(v) => serde_json::json!(v),
                    Value::Choice(c) => c.into(),
                },
            );
        }
        object.insert("class".into(), self.spec.class.as_str().into());
        serde_json::Value::Object(object)
    }

    /// A number parameter's value.
    ///
    /// # Panics
    /// If the method has no number parameter of that name (a bug in the caller).
    pub fn number(&self, name: &str) -> f64 {
        match self.value(name) {
            Value::Number(v) => v,
            Value::Choice(c) => panic!("`{name}` is the choice {c}, not a number"),
        }
    }

    /// A choice parameter's value.
    ///
    /// # Panics
    /// If the method has no choice parameter of that name (a bug in the caller).
    pub fn choice(&self, name: &str) -> &'static str {
        match self.value(name) {
            Value::Choice(c) => c,
            Value::Number(v) => panic!("`{name}` is the number {v}, not a choice"),
        }
    }

    fn value(&self, name: &str) -> Value {
        let i = self
            .spec
            .params
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("`{}` has no parameter `{name}`", self.spec.name));
        self.values[i]
    }

    /// Every parameter with its value, in order.
    pub fn parameters(&self) -> impl Iterator<Item = (&'static str, Value)> + '_ {
        self.spec
            .params
            .iter()
            .map(|p| p.name)
            .zip(self.values.iter().copied())
    }

    /// As written, with every parameter: `adam(lr = 0.01, beta1 = 0.9, ...)`.
    pub fn describe(&self) -> String {
        let params: Vec<String> = self
            .parameters()
            .map(|(name, value)| format!("{name} = {value}"))
            .collect();
        format!("{}({})", self.spec.name, params.join(", "))
    }
}

/// Why a method or schedule setting is not valid; the caller adds the place.
#[derive(Clone, Debug, PartialEq)]
pub enum SettingError {
    /// No such method or schedule.
    Unknown {
        /// `optimiser` or `schedule`.
        what: &'static str,
        /// The name written.
        name: String,
        /// The closest known name, if one is close.
        suggestion: Option<&'static str>,
        /// Every known name.
        known: Vec<&'static str>,
    },
    /// No such parameter.
    UnknownParameter {
        /// The method or schedule.
        owner: &'static str,
        /// The parameter written.
        name: String,
        /// The closest parameter, if one is close.
        suggestion: Option<&'static str>,
        /// Every parameter.
        known: Vec<&'static str>,
    },
    /// A parameter given twice.
    Repeated(String),
    /// More positional values than parameters.
    TooMany {
        /// The method or schedule.
        owner: &'static str,
        /// How many it takes.
        takes: usize,
    },
    /// A value outside the parameter's range.
    OutOfRange {
        /// The parameter.
        name: &'static str,
        /// What was given, as written.
        found: String,
        /// What it admits.
        needs: String,
    },
    /// A required parameter is missing.
    Missing {
        /// The method or schedule.
        owner: &'static str,
        /// The parameter.
        name: &'static str,
    },
}

impl SettingError {
    /// The message and a hint.
    pub fn message_and_hint(&self) -> (String, String) {
        match self {
            SettingError::Unknown {
                what,
                name,
                suggestion,
                known,
            } => (
                format!("unknown {what} `{name}`"),
                match suggestion {
                    Some(s) => format!("did you mean `{s}`? the {what}s are {}", known.join(", ")),
                    None => format!("the {what}s are {}", known.join(", ")),
                },
            ),
            SettingError::UnknownParameter {
                owner,
                name,
                suggestion,
                known,
            } => (
                format!("`{owner}` has no parameter `{name}`"),
                match (suggestion, known.is_empty()) {
                    (_, true) => format!("`{owner}` takes no parameters"),
                    (Some(s), _) => {
                        format!(
                            "did you mean `{s}`? the parameters of `{owner}` are {}",
                            known.join(", ")
                        )
                    }
                    (None, _) => format!("the parameters of `{owner}` are {}", known.join(", ")),
                },
            ),
            SettingError::Repeated(name) => (
                format!("parameter `{name}` is given twice"),
                "give each parameter once".into(),
            ),
            SettingError::TooMany { owner, takes } => (
                format!(
                    "`{owner}` takes {takes} parameter{}",
                    if *takes == 1 { "" } else { "s" }
                ),
                "remove the extra values".into(),
            ),
            SettingError::OutOfRange { name, found, needs } => (
                format!("`{name}` must be {needs}, found {found}"),
                format!("give `{name}` {needs}"),
            ),
            SettingError::Missing { owner, name } => (
                format!("`{owner}` needs the parameter `{name}`"),
                format!(
                    "write `{owner}({name} = {})`",
                    if *name == "lr" { "0.01" } else { "..." }
                ),
            ),
        }
    }
}

/// The method called `name`.
pub fn method_spec(name: &str) -> Option<&'static MethodSpec> {
    METHODS.iter().find(|m| m.name == name)
}

/// Resolves a method from its name and named parameters: defaults filled in, every value
/// checked against its range.
pub fn resolve_method(
    name: &str,
    given: &[(&str, Given<'_>)],
) -> Result<MethodConfig, SettingError> {
    let spec = method_spec(name).ok_or_else(|| SettingError::Unknown {
        what: "optimiser",
        name: name.to_string(),
        suggestion: closest(name, METHODS.iter().map(|m| m.name)),
        known: METHODS.iter().map(|m| m.name).collect(),
    })?;
    let values = resolve_params(spec.name, spec.params, given)?;
    Ok(MethodConfig { spec, values })
}

/// [`resolve_method`] with numbers only, the error as one message (tests, examples, library
/// users): `resolve_numeric("momentum", &[("lr", 0.1), ("beta", 0.5)])`.
pub fn resolve_numeric(name: &str, params: &[(&str, f64)]) -> Result<MethodConfig, String> {
    let given: Vec<(&str, Given<'_>)> =
        params.iter().map(|&(p, v)| (p, Given::Number(v))).collect();
    resolve_method(name, &given).map_err(|e| {
        let (message, hint) = e.message_and_hint();
        format!("{message}; {hint}")
    })
}

fn resolve_params(
    owner: &'static str,
    params: &'static [ParamSpec],
    given: &[(&str, Given<'_>)],
) -> Result<Vec<Value>, SettingError> {
    let mut values: Vec<Option<Value>> = vec![None; params.len()];
    for &(name, value) in given {
        let Some(i) = params.iter().position(|p| p.name == name) else {
            return Err(SettingError::UnknownParameter {
                owner,
                name: name.to_string(),
                suggestion: closest(name, params.iter().map(|p| p.name)),
                known: params.iter().map(|p| p.name).collect(),
            });
        };
        if values[i].is_some() {
            return Err(SettingError::Repeated(name.to_string()));
        }
        let spec = &params[i];
        let resolved = match (spec.range, value) {
            (Range::Choice(choices), Given::Name(n)) => {
                choices.iter().find(|c| **c == n).map(|c| Value::Choice(c))
            }
            (range, Given::Number(v)) if range.admits(v) => Some(Value::Number(v)),
            _ => None,
        };
        let Some(resolved) = resolved else {
            return Err(SettingError::OutOfRange {
                name: spec.name,
                found: match value {
                    Given::Number(v) => crate::name::short_number(v),
                    Given::Name(n) => format!("`{n}`"),
                },
                needs: spec.range.describe(),
            });
        };
        values[i] = Some(resolved);
    }
    let lr = params
        .iter()
        .position(|p| p.name == "lr")
        .and_then(|i| values[i]);
    params
        .iter()
        .zip(values)
        .map(|(spec, value)| match (value, spec.default) {
            (Some(v), _) => Ok(v),
            (None, Default::Number(v)) => Ok(Value::Number(v)),
            (None, Default::Choice(c)) => Ok(Value::Choice(c)),
            (None, Default::ReciprocalOfLr) => match lr {
                Some(Value::Number(lr)) => Ok(Value::Number(1.0 / lr)),
                _ => Err(SettingError::Missing { owner, name: "lr" }),
            },
            (None, Default::Required) => Err(SettingError::Missing {
                owner,
                name: spec.name,
            }),
        })
        .collect()
}

/// The closest candidate to a misspelt name (edit distance at most 2, and at most half its
/// length).
fn closest<'c>(name: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    let limit = name.chars().count().div_ceil(2).clamp(1, 2);
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_and_ranges_are_checked() {
        let agd = resolve_method("agd", &[("lr", Given::Number(0.25))]).unwrap();
        assert_eq!(agd.number("gamma0"), 4.0);
        assert_eq!(agd.number("mu"), 0.0);
        let armijo = resolve_method("armijo", &[("direction", Given::Name("adam"))]).unwrap();
        assert_eq!(armijo.choice("direction"), "adam");
        assert_eq!(armijo.choice("groups"), "all");
        assert_eq!(armijo.number("lr"), 1.0);
        for (method, param, value) in [
            ("momentum", "beta", 1.2),
            ("gd", "lr", 0.0),
            ("lbfgs", "memory", 0.0),
            ("lbfgs", "memory", 2.5),
            ("adam", "eps", -1.0),
        ] {
            let error = resolve_method(
                method,
                &[("lr", Given::Number(0.1)), (param, Given::Number(value))],
            );
            assert!(error.is_err(), "{method} {param} {value}");
        }
        assert!(matches!(
            resolve_method("adma", &[]),
            Err(SettingError::Unknown {
                suggestion: Some("adam"),
                ..
            })
        ));
        assert!(matches!(
            resolve_method(
                "adam",
                &[("lr", Given::Number(0.1)), ("beta3", Given::Number(0.1))]
            ),
            Err(SettingError::UnknownParameter {
                suggestion: Some(_),
                ..
            })
        ));
        assert!(matches!(
            resolve_method("gd", &[]),
            Err(SettingError::Missing { name: "lr", .. })
        ));
    }
}
