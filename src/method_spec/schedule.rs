//! Step-size schedules: `eta_k` from the base step size `lr` (docs/language.md, "Step-size
//! schedules"), their registry and their resolution from a solve block or `--schedule`.

use super::{closest, resolve_params, Default, Given, ParamSpec, Range, SettingError, Value};

/// One step-size schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleSpec {
    /// As written: `log`, `cosine`.
    pub name: &'static str,
    /// Its parameters (positional or named).
    pub params: &'static [ParamSpec],
    /// `eta_k` as a formula.
    pub formula: &'static str,
}

const PERIOD: ParamSpec = ParamSpec {
    name: "T",
    default: Default::Required,
    range: Range::Count {
        min: 2,
        max: 1 << 53,
    },
    help: "the period (restarts every T steps)",
};

/// Every schedule (`tau = (k mod T) + 1`).
pub const SCHEDULES: &[ScheduleSpec] = &[
    ScheduleSpec {
        name: "constant",
        params: &[],
        formula: "lr",
    },
    ScheduleSpec {
        name: "log",
        params: &[PERIOD],
        formula: "lr (1 - ln tau / ln T)",
    },
    ScheduleSpec {
        name: "cosine",
        params: &[PERIOD],
        formula: "lr (1 + cos(pi (tau - 1) / T)) / 2",
    },
    ScheduleSpec {
        name: "inv_sqrt",
        params: &[],
        formula: "lr / sqrt(k + 1)",
    },
    ScheduleSpec {
        name: "step",
        params: &[
            ParamSpec {
                name: "every",
                default: Default::Required,
                range: Range::Count {
                    min: 1,
                    max: 1 << 53,
                },
                help: "steps between decays",
            },
            ParamSpec {
                name: "factor",
                default: Default::Required,
                range: Range::Positive,
                help: "the decay factor",
            },
        ],
        formula: "lr factor^floor(k / every)",
    },
];

/// The step size of step `k` (0-based), for `eta_k`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Schedule {
    /// `lr`.
    Constant,
    /// `lr (1 - ln tau / ln T)`, `tau = (k mod T) + 1`.
    Log {
        /// The period.
        period: u64,
    },
    /// `lr (1 + cos(pi (tau - 1) / T)) / 2`.
    Cosine {
        /// The period.
        period: u64,
    },
    /// `lr / sqrt(k + 1)`.
    InvSqrt,
    /// `lr factor^floor(k / every)`.
    Step {
        /// Steps between decays.
        every: u64,
        /// The decay factor.
        factor: f64,
    },
}

impl Schedule {
    /// `eta_k` for base step size `lr`.
    ///
    /// ```
    /// use catopt::method_spec::Schedule;
    /// assert_eq!(Schedule::Log { period: 10 }.step_size(0.5, 0), 0.5);
    /// assert_eq!(Schedule::Step { every: 2, factor: 0.5 }.step_size(1.0, 5), 0.25);
    /// ```
    pub fn step_size(&self, lr: f64, k: u64) -> f64 {
        match *self {
            Schedule::Constant => lr,
            Schedule::Log { period } => {
                let tau = (k % period + 1) as f64;
                lr * (1.0 - tau.ln() / (period as f64).ln())
            }
            Schedule::Cosine { period } => {
                let tau = (k % period + 1) as f64;
                lr * (1.0 + (std::f64::consts::PI * (tau - 1.0) / period as f64).cos()) / 2.0
            }
            Schedule::InvSqrt => lr / ((k + 1) as f64).sqrt(),
            Schedule::Step { every, factor } => {
                let decays = k / every;
                lr * factor.powf(decays as f64)
            }
        }
    }

    /// As written: `log(100)`, `constant`.
    pub fn describe(&self) -> String {
        match *self {
            Schedule::Constant => "constant".into(),
            Schedule::Log { period } => format!("log({period})"),
            Schedule::Cosine { period } => format!("cosine({period})"),
            Schedule::InvSqrt => "inv_sqrt".into(),
            Schedule::Step { every, factor } => format!("step({every}, {factor})"),
        }
    }

    /// Whether this is the default (constant) schedule.
    pub fn is_constant(&self) -> bool {
        matches!(self, Schedule::Constant)
    }
}

/// Resolves a schedule from its name and parameters (named, or positional in order).
pub fn resolve_schedule(
    name: &str,
    given: &[(Option<&str>, Given<'_>)],
) -> Result<Schedule, SettingError> {
    let spec = SCHEDULES
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| SettingError::Unknown {
            what: "schedule",
            name: name.to_string(),
            suggestion: closest(name, SCHEDULES.iter().map(|s| s.name)),
            known: SCHEDULES.iter().map(|s| s.name).collect(),
        })?;
    let mut named: Vec<(&str, Given<'_>)> = Vec::with_capacity(given.len());
    for (position, (param, value)) in given.iter().enumerate() {
        let param = match param {
            Some(p) => p,
            None => match spec.params.get(position) {
                Some(p) => p.name,
                None => {
                    return Err(SettingError::TooMany {
                        owner: spec.name,
                        takes: spec.params.len(),
                    })
                }
            },
        };
        named.push((param, *value));
    }
    let values = resolve_params(spec.name, spec.params, &named)?;
    let count = |i: usize| match values[i] {
        Value::Number(v) => v as u64,
        Value::Choice(_) => unreachable!("schedules take numbers"),
    };
    Ok(match spec.name {
        "constant" => Schedule::Constant,
        "log" => Schedule::Log { period: count(0) },
        "cosine" => Schedule::Cosine { period: count(0) },
        "inv_sqrt" => Schedule::InvSqrt,
        "step" => Schedule::Step {
            every: count(0),
            factor: match values[1] {
                Value::Number(v) => v,
                Value::Choice(_) => unreachable!("schedules take numbers"),
            },
        },
        other => unreachable!("schedule {other} has no constructor"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_formulas() {
        let log = resolve_schedule("log", &[(None, Given::Number(4.0))]).unwrap();
        assert_eq!(log, Schedule::Log { period: 4 });
        // tau = 1, 2, 3, 4, then restart.
        let etas: Vec<f64> = (0..5).map(|k| log.step_size(1.0, k)).collect();
        assert_eq!(etas[0], 1.0);
        assert_eq!(etas[3], 0.0);
        assert_eq!(etas[4], 1.0);
        assert!((etas[1] - (1.0 - 2f64.ln() / 4f64.ln())).abs() < 1e-15);
        let cosine = Schedule::Cosine { period: 4 };
        assert_eq!(cosine.step_size(2.0, 0), 2.0);
        assert!((cosine.step_size(2.0, 2) - 1.0).abs() < 1e-15);
        assert_eq!(Schedule::InvSqrt.step_size(1.0, 3), 0.5);
        let step = resolve_schedule(
            "step",
            &[
                (Some("factor"), Given::Number(0.1)),
                (Some("every"), Given::Number(10.0)),
            ],
        )
        .unwrap();
        assert_eq!(step.step_size(1.0, 9), 1.0);
        assert!((step.step_size(1.0, 25) - 0.01).abs() < 1e-17);
        assert!(resolve_schedule("log", &[(None, Given::Number(1.0))]).is_err());
        assert!(resolve_schedule("log", &[]).is_err());
        assert!(resolve_schedule("inv_sqrt", &[(None, Given::Number(1.0))]).is_err());
        assert!(matches!(
            resolve_schedule("cosin", &[]),
            Err(SettingError::Unknown {
                suggestion: Some("cosine"),
                ..
            })
        ));
    }

    #[test]
    fn the_log_schedule_has_the_papers_unit_values() {
        // Issue 15's check (Shamaee et al.): T = 100, lr = 0.1: eta at t = 1, 10, 100 is
        // 0.1, 0.05, 0, and the step after t = 100 restarts at lr.
        let log = Schedule::Log { period: 100 };
        let eta = |t: u64| log.step_size(0.1, t - 1);
        assert_eq!(eta(1), 0.1);
        assert!((eta(10) - 0.05).abs() < 1e-17, "{}", eta(10));
        assert_eq!(eta(100), 0.0);
        assert_eq!(eta(101), 0.1);
    }
}
