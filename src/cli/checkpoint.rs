//! Checkpoints (`catopt run --checkpoint FILE`, `--resume FILE`), format version 2.
//!
//! ```text
//! catopt-checkpoint 2\n
//! {header: one line of JSON}\n
//! payload: the state vectors named in the header, in order, as little-endian f64
//! fnv1a64 XXXXXXXXXXXXXXXX\n      (FNV-1a 64 of every byte before this line)
//! ```
//!
//! The header records what the state belongs to: the composite's name, its boxes in order
//! (labels and objectives, as runs of consecutive family members), its variables in order
//! (names and shapes, as runs), a hash of both, the method and all its parameters, the
//! step, the previous objective (as bits) and the state's named vectors with their lengths
//! (`values`; `velocity` for momentum; issue 14's methods add theirs). `--resume` refuses
//! any difference and says what differs. [`parse_checkpoint`] never panics on arbitrary
//! bytes (a fuzz target can call it); a single changed byte always fails the checksum.

use crate::lower::Problem;
use crate::method_spec::{MethodConfig, Schedule, Value};
use crate::run::method::Method;

/// A method's own memory entries ([`Method::memory`]), by name.
pub type MethodMemory = Vec<(String, Vec<f64>)>;

/// The names of the state a method keeps: its vectors (`values` first) and scalars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateLayout {
    /// The vectors, `values` first.
    pub vectors: &'static [&'static str],
    /// The scalars.
    pub scalars: &'static [&'static str],
}

impl StateLayout {
    /// The layout of `method`'s state.
    pub fn of(method: &dyn Method) -> StateLayout {
        StateLayout {
            vectors: method.vectors(),
            scalars: method.scalars(),
        }
    }
}
use crate::run::solver::SolverState;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// The format's first line, before the version.
const MAGIC: &str = "catopt-checkpoint ";
/// The version this catopt writes and reads.
pub const VERSION: u32 = 2;
/// The trailer: `fnv1a64 ` + 16 hex digits + `\n`.
const TRAILER_LEN: usize = 8 + 16 + 1;

/// FNV-1a, 64 bits.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A run of consecutive names: `base` (with `first`, `first + 1`, ... when `first` is set),
/// `count` of them, all of the same `kind` (a box's objective, a variable's shape).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The base name.
    pub base: String,
    /// The first member index, for a family.
    pub first: Option<i64>,
    /// How many consecutive names.
    pub count: u64,
    /// The objective (boxes) or the shape (variables).
    pub kind: String,
}

impl Run {
    /// The `k`-th name of the run.
    fn name(&self, k: u64) -> String {
        match self.first {
            Some(first) => format!("{}[{}]", self.base, first.saturating_add(k as i64)),
            None => self.base.clone(),
        }
    }
}

/// Appends one name to a list of runs.
fn push_run(runs: &mut Vec<Run>, base: &str, index: Option<i64>, kind: &str) {
    if let Some(last) = runs.last_mut() {
        let next = last.first.map(|f| f.saturating_add(last.count as i64));
        if last.base == base && last.kind == kind && index.is_some() && index == next {
            last.count += 1;
            return;
        }
    }
    runs.push(Run {
        base: base.to_string(),
        first: index,
        count: 1,
        kind: kind.to_string(),
    });
}

/// The method as written in a checkpoint.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct MethodRecord {
    /// `gd`, `momentum`, `adam`, ...
    pub name: String,
    /// All its number parameters, in order.
    pub parameters: Vec<(String, f64)>,
    /// Its choice parameters (`direction = adam`), in order.
    #[serde(default)]
    pub choices: Vec<(String, String)>,
    /// The step-size schedule, as written (`constant`, `log(100)`).
    #[serde(default = "constant_schedule")]
    pub schedule: String,
}

fn constant_schedule() -> String {
    Schedule::Constant.describe()
}

impl MethodRecord {
    /// The record of a resolved method and schedule.
    pub fn of(method: &MethodConfig, schedule: &Schedule) -> MethodRecord {
        let mut parameters = Vec::new();
        let mut choices = Vec::new();
        for (name, value) in method.parameters() {
            match value {
                Value::Number(v) => parameters.push((name.to_string(), v)),
                Value::Choice(c) => choices.push((name.to_string(), c.to_string())),
            }
        }
        MethodRecord {
            name: method.name().to_string(),
            parameters,
            choices,
            schedule: schedule.describe(),
        }
    }
}

/// A named state vector and its length.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct VectorRecord {
    /// `values`, `velocity`, ...
    pub name: String,
    /// Its length.
    pub len: u64,
}

/// The header line.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Header {
    /// The composite.
    pub composite: String,
    /// FNV-1a of the composite's name, boxes and variables (as JSON).
    pub program_hash: String,
    /// The boxes in order (kind: objective).
    pub boxes: Vec<Run>,
    /// The variables in order (kind: shape).
    pub variables: Vec<Run>,
    /// The method and its parameters.
    pub method: MethodRecord,
    /// Updates done.
    pub step: u64,
    /// The previous objective's bits (for `rel_tolerance`), if any.
    pub previous_objective_bits: Option<u64>,
    /// The state vectors in the payload, in order.
    pub vectors: Vec<VectorRecord>,
    /// The method's scalars (agd's gamma, a line search's last step), as bits.
    #[serde(default)]
    pub scalars: Vec<(String, u64)>,
    /// The method's own memory (lbfgs's pairs) in the payload after the state vectors, in
    /// order.
    #[serde(default)]
    pub memory: Vec<VectorRecord>,
}

/// A checkpoint read from bytes: its header and its vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedCheckpoint {
    /// The header.
    pub header: Header,
    /// The vectors, in the header's order.
    pub vectors: Vec<Vec<f64>>,
    /// The method's memory entries, in the header's order.
    pub memory: Vec<(String, Vec<f64>)>,
}

/// What a problem and a method look like in a checkpoint (everything but the state).
pub struct Fingerprint {
    composite: String,
    boxes: Vec<Run>,
    variables: Vec<Run>,
    method: MethodRecord,
    variable_count: usize,
}

impl Fingerprint {
    /// The fingerprint of `problem` solved by `method` (as recorded).
    pub fn of(problem: &Problem, method: MethodRecord) -> Fingerprint {
        let mut boxes = Vec::new();
        for b in 0..problem.diagram.box_count() {
            let name = problem.diagram.box_name(b);
            let kind = &problem.box_types[problem.box_type_of[b] as usize].name;
            push_run(&mut boxes, &name.base, name.index, kind);
        }
        let mut variables = Vec::new();
        for v in problem.all_variables() {
            let name = v.name();
            push_run(
                &mut variables,
                &name.base,
                name.index,
                &v.shape().to_string(),
            );
        }
        Fingerprint {
            composite: problem.name.clone(),
            boxes,
            variables,
            method,
            variable_count: problem.variable_count(),
        }
    }

    fn program_hash(&self) -> String {
        let text = serde_json::to_string(&(&self.composite, &self.boxes, &self.variables))
            .unwrap_or_default();
        format!("{:016x}", fnv1a64(text.as_bytes()))
    }

    /// The most bytes a checkpoint of this problem can take: 8 per number of the state, the
    /// header's runs (at most 1 KiB each) and 1 MiB for the rest. `--resume` reads no more.
    pub fn size_limit(&self) -> u64 {
        let vectors = crate::run::method::MAX_VECTORS as u64;
        (1 << 20)
            + 8 * vectors * self.variable_count as u64
            + 1024 * (self.boxes.len() + self.variables.len()) as u64
    }
}

/// The bytes of a checkpoint of `state`.
pub fn checkpoint_bytes(
    fingerprint: &Fingerprint,
    method: StateLayout,
    state: &SolverState,
    memory: &[(String, Vec<f64>)],
) -> Vec<u8> {
    let n = state.values.len();
    let vectors: Vec<(&str, &[f64])> = method
        .vectors
        .iter()
        .zip(std::iter::once(&state.values).chain(&state.vectors))
        .map(|(&name, v)| (name, v.as_slice()))
        .collect();
    let header = Header {
        composite: fingerprint.composite.clone(),
        program_hash: fingerprint.program_hash(),
        boxes: fingerprint.boxes.clone(),
        variables: fingerprint.variables.clone(),
        method: fingerprint.method.clone(),
        step: state.step,
        previous_objective_bits: state.previous_objective.map(f64::to_bits),
        vectors: vectors
            .iter()
            .map(|(name, v)| VectorRecord {
                name: (*name).into(),
                len: v.len() as u64,
            })
            .collect(),
        scalars: method
            .scalars
            .iter()
            .zip(&state.scalars)
            .map(|(&name, v)| (name.to_string(), v.to_bits()))
            .collect(),
        memory: memory
            .iter()
            .map(|(name, v)| VectorRecord {
                name: name.clone(),
                len: v.len() as u64,
            })
            .collect(),
    };
    let mut bytes = format!("{MAGIC}{VERSION}\n").into_bytes();
    bytes.extend(serde_json::to_vec(&header).unwrap_or_default());
    bytes.push(b'\n');
    bytes.reserve(8 * n * vectors.len() + TRAILER_LEN);
    for vector in vectors
        .iter()
        .map(|(_, v)| *v)
        .chain(memory.iter().map(|(_, v)| &v[..]))
    {
        for v in vector.iter() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    let hash = fnv1a64(&bytes);
    bytes.extend(format!("fnv1a64 {hash:016x}\n").into_bytes());
    bytes
}

/// Reads a checkpoint's bytes. Never panics; any damage is an error.
pub fn parse_checkpoint(bytes: &[u8]) -> Result<ParsedCheckpoint, String> {
    let Some(rest) = bytes.strip_prefix(MAGIC.as_bytes()) else {
        return Err(if bytes.first() == Some(&b'{') {
            "it is a version-1 checkpoint, which does not record the program it belongs to; \
             version 1 cannot be resumed safely: start again and write a new one with --checkpoint"
                .into()
        } else {
            "it is not a catopt checkpoint (it does not start with `catopt-checkpoint`)".into()
        });
    };
    let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let version = std::str::from_utf8(&rest[..line_end.min(12)])
        .ok()
        .and_then(|v| v.parse::<u32>().ok());
    if version != Some(VERSION) || line_end > 12 {
        return Err(format!(
            "unsupported checkpoint version `{}`; this catopt reads version {VERSION}",
            String::from_utf8_lossy(&rest[..line_end.min(12)])
        ));
    }
    if bytes.len() < MAGIC.len() + line_end + 1 + TRAILER_LEN {
        return Err("the checkpoint is truncated".into());
    }
    let (body, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let expected = format!("fnv1a64 {:016x}\n", fnv1a64(body));
    if trailer != expected.as_bytes() {
        return Err(if trailer.starts_with(b"fnv1a64 ") {
            "checksum mismatch: the checkpoint is damaged (or truncated)".into()
        } else {
            "the checkpoint is truncated (no checksum line at its end)".into()
        });
    }
    let rest = &body[MAGIC.len() + line_end + 1..];
    let header_end = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("the checkpoint has no header line")?;
    let header: Header = serde_json::from_slice(&rest[..header_end])
        .map_err(|e| format!("the checkpoint's header is not valid: {e}"))?;
    let payload = &rest[header_end + 1..];
    let mut total: u64 = 0;
    for v in header.vectors.iter().chain(&header.memory) {
        total = total
            .checked_add(v.len)
            .ok_or("the checkpoint's vector lengths overflow")?;
    }
    if total.checked_mul(8) != Some(payload.len() as u64) {
        return Err(format!(
            "the checkpoint's payload has {} bytes, its header announces {} numbers",
            payload.len(),
            total
        ));
    }
    let mut numbers = payload
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
    let vectors = header
        .vectors
        .iter()
        .map(|v| numbers.by_ref().take(v.len as usize).collect())
        .collect();
    let memory = header
        .memory
        .iter()
        .map(|v| {
            (
                v.name.clone(),
                numbers.by_ref().take(v.len as usize).collect(),
            )
        })
        .collect();
    Ok(ParsedCheckpoint {
        header,
        vectors,
        memory,
    })
}

/// Names the first difference between two lists of runs (boxes or variables).
fn first_difference(what: &str, kind: &str, saved: &[Run], current: &[Run]) -> String {
    let plural = if what == "box" { "boxes" } else { "variables" };
    let expand = |runs: &[Run]| -> Vec<(String, String)> {
        runs.iter()
            .flat_map(|r| (0..r.count).map(move |k| (r.name(k), r.kind.clone())))
            .collect()
    };
    let (a, b) = (expand(saved), expand(current));
    let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) else {
        return format!("{what} differ");
    };
    let show = |list: &[(String, String)]| {
        let shown: Vec<String> = list[i.min(list.len())..list.len().min(i + 2)]
            .iter()
            .map(|(name, k)| format!("{name} ({kind} {k})"))
            .collect();
        if shown.is_empty() {
            "nothing".to_string()
        } else {
            shown.join(", ")
        }
    };
    let positions = if i + 1 < a.len().max(b.len()) {
        format!("positions {}, {}", i + 1, i + 2)
    } else {
        format!("position {}", i + 1)
    };
    format!(
        "{what} order differs: the checkpoint has {} at {positions}; the file has {} \
         (the checkpoint has {} {plural}, the file {})",
        show(&a),
        show(&b),
        a.len(),
        b.len()
    )
}

/// Checks a parsed checkpoint against the problem and method of this run and returns its
/// state, or says what differs.
pub fn validate(
    checkpoint: ParsedCheckpoint,
    fingerprint: &Fingerprint,
    method: StateLayout,
) -> Result<SolverState, String> {
    let header = &checkpoint.header;
    if header.composite != fingerprint.composite {
        return Err(format!(
            "composite differs: the checkpoint is for `{}`, this run solves `{}`",
            header.composite, fingerprint.composite
        ));
    }
    if header.boxes != fingerprint.boxes {
        return Err(first_difference(
            "box",
            "objective",
            &header.boxes,
            &fingerprint.boxes,
        ));
    }
    if header.variables != fingerprint.variables {
        return Err(first_difference(
            "variable",
            "shape",
            &header.variables,
            &fingerprint.variables,
        ));
    }
    if header.program_hash != fingerprint.program_hash() {
        return Err("program hash differs: the checkpoint is for another program".into());
    }
    let saved = &header.method;
    let current = &fingerprint.method;
    if saved.name != current.name {
        return Err(format!(
            "method differs: the checkpoint was written by {}, this run uses {}",
            saved.name, current.name
        ));
    }
    for (name, value) in &current.parameters {
        match saved.parameters.iter().find(|(n, _)| n == name) {
            Some((_, old)) if old.to_bits() == value.to_bits() => {}
            Some((_, old)) => {
                return Err(format!(
                    "method parameter {name}: checkpoint {old}, this run {value}"
                ))
            }
            None => {
                return Err(format!(
                    "method parameter {name} is missing from the checkpoint"
                ))
            }
        }
    }
    if saved.parameters.len() != current.parameters.len() {
        return Err("the checkpoint's method has other parameters than this run's".into());
    }
    if saved.choices != current.choices {
        let show = |c: &[(String, String)]| {
            c.iter()
                .map(|(n, v)| format!("{n} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(format!(
            "method parameters differ: checkpoint {}, this run {}",
            show(&saved.choices),
            show(&current.choices)
        ));
    }
    if saved.schedule != current.schedule {
        return Err(format!(
            "schedule differs: checkpoint {}, this run {}",
            saved.schedule, current.schedule
        ));
    }
    let names = method.vectors;
    let n = fingerprint.variable_count as u64;
    let listed: Vec<&str> = header.vectors.iter().map(|v| v.name.as_str()).collect();
    if listed != names {
        return Err(format!(
            "the checkpoint holds the vectors [{}], {} needs [{}]",
            listed.join(", "),
            saved.name,
            names.join(", ")
        ));
    }
    if let Some(v) = header.vectors.iter().find(|v| v.len != n) {
        return Err(format!(
            "the checkpoint's {} has {} numbers, the problem has {n} variables",
            v.name, v.len
        ));
    }
    let scalar_names: Vec<&str> = header.scalars.iter().map(|(n, _)| n.as_str()).collect();
    if scalar_names != method.scalars {
        return Err(format!(
            "the checkpoint holds the scalars [{}], {} needs [{}]",
            scalar_names.join(", "),
            saved.name,
            method.scalars.join(", ")
        ));
    }
    let mut state = SolverState::new(Vec::new());
    state.step = header.step;
    state.previous_objective = header.previous_objective_bits.map(f64::from_bits);
    state.scalars = header
        .scalars
        .iter()
        .map(|(_, b)| f64::from_bits(*b))
        .collect();
    if let Some((name, _)) = header
        .scalars
        .iter()
        .find(|(_, b)| !f64::from_bits(*b).is_finite())
    {
        return Err(format!("the checkpoint's scalar {name} is not finite"));
    }
    for (k, (name, vector)) in names.iter().zip(checkpoint.vectors).enumerate() {
        if let Some(j) = vector.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "the checkpoint's {name} has a non-finite number at {j}"
            ));
        }
        // `values` comes first (`Method::vectors`).
        if k == 0 {
            state.values = vector;
        } else {
            state.vectors.push(vector);
        }
    }
    Ok(state)
}

/// Reads at most `limit` bytes of a regular file: `what` names the flag in messages.
/// Devices, FIFOs and larger files are refused before anything big is read.
pub fn read_bounded(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>, String> {
    let fail = |problem: String, help: &str| {
        format!(
            "cannot read {what} {}: {problem}\n  help: {help}",
            path.display()
        )
    };
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string(), "check the path"))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(e.to_string(), "check the path"))?;
    if !meta.is_file() {
        return Err(fail(
            "it is not a regular file".into(),
            "give a file written by catopt",
        ));
    }
    let too_big = || {
        fail(
            format!("it is larger than {limit} bytes, the most this problem's file can need"),
            "is it the right file for this problem?",
        )
    };
    if meta.len() > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string(), "check the file"))?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

/// Reads and validates `--resume FILE`.
pub fn read_checkpoint(
    path: &Path,
    problem: &Problem,
    method: StateLayout,
    record: MethodRecord,
    memory_bytes_per_variable: u64,
) -> Result<(SolverState, MethodMemory), String> {
    let fingerprint = Fingerprint::of(problem, record);
    let limit = fingerprint.size_limit().saturating_add(
        memory_bytes_per_variable.saturating_mul(fingerprint.variable_count as u64),
    );
    let bytes = read_bounded(path, "--resume checkpoint", limit)?;
    let refuse = |message: String| {
        format!(
            "cannot resume from {}: {message}\n  help: resume with the file, composite and \
             method settings that wrote the checkpoint, or start without --resume",
            path.display()
        )
    };
    let mut parsed = parse_checkpoint(&bytes).map_err(refuse)?;
    let memory = std::mem::take(&mut parsed.memory);
    let state = validate(parsed, &fingerprint, method).map_err(refuse)?;
    Ok((state, memory))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PROBLEM: &str =
        "objective f(x: real) { var w: real[2] = 1; minimize (x - 1)^2 + dot(w, w); }
objective g(x: real) { minimize (x + 2)^2; }
composite c() { for i in 0..3 { f(a[i]); } g(b); h: f(b); }
";

    /// A method as a checkpoint sees it.
    struct Recorded {
        record: MethodRecord,
        layout: StateLayout,
    }

    fn recorded(name: &str, params: &[(&str, f64)], schedule: Schedule) -> Recorded {
        let given: Vec<_> = params
            .iter()
            .map(|&(p, v)| (p, crate::method_spec::Given::Number(v)))
            .collect();
        let config = crate::method_spec::resolve_method(name, &given).unwrap();
        let built = crate::run::method::build(&config, schedule).unwrap();
        Recorded {
            record: MethodRecord::of(&config, &schedule),
            layout: StateLayout::of(&*built),
        }
    }

    fn fingerprint(problem: &Problem, method: &Recorded) -> Fingerprint {
        Fingerprint::of(problem, method.record.clone())
    }

    fn sample() -> (Problem, Recorded, SolverState) {
        let (_, problem) = crate::lower::lower_text(PROBLEM, None).unwrap();
        let n = problem.variable_count();
        let method = recorded(
            "momentum",
            &[("lr", 0.1), ("beta", 0.5)],
            Schedule::Constant,
        );
        let mut state = SolverState::new((0..n).map(|i| i as f64 * 0.37 - 1.0).collect());
        state.vectors = vec![(0..n).map(|i| 1.0 / (i as f64 + 3.0)).collect()];
        state.step = 42;
        state.previous_objective = Some(3.25);
        (problem, method, state)
    }

    fn resume(bytes: &[u8], problem: &Problem, method: &Recorded) -> Result<SolverState, String> {
        validate(
            parse_checkpoint(bytes)?,
            &fingerprint(problem, method),
            method.layout,
        )
    }

    fn same(a: &SolverState, b: &SolverState) -> bool {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        a.step == b.step
            && bits(&a.values) == bits(&b.values)
            && a.vectors.len() == b.vectors.len()
            && a.vectors
                .iter()
                .zip(&b.vectors)
                .all(|(x, y)| bits(x) == bits(y))
            && bits(&a.scalars) == bits(&b.scalars)
            && a.previous_objective.map(f64::to_bits) == b.previous_objective.map(f64::to_bits)
    }

    #[test]
    fn a_checkpoint_round_trips_exactly() {
        let (problem, method, state) = sample();
        let bytes = checkpoint_bytes(&fingerprint(&problem, &method), method.layout, &state, &[]);
        let back = resume(&bytes, &problem, &method).unwrap();
        assert!(same(&back, &state));
        assert!(bytes.len() as u64 <= fingerprint(&problem, &method).size_limit());
    }

    #[test]
    fn runs_compress_families() {
        let (problem, method, _) = sample();
        let fingerprint = fingerprint(&problem, &method);
        assert_eq!(fingerprint.boxes.len(), 3, "{:?}", fingerprint.boxes);
    }

    #[test]
    fn a_short_velocity_with_a_valid_checksum_is_refused() {
        let (problem, method, mut state) = sample();
        state.vectors[0].pop();
        let bytes = checkpoint_bytes(&fingerprint(&problem, &method), method.layout, &state, &[]);
        let error = resume(&bytes, &problem, &method).unwrap_err();
        assert!(error.contains("velocity"), "{error}");
        state.vectors[0].clear();
        let bytes = checkpoint_bytes(&fingerprint(&problem, &method), method.layout, &state, &[]);
        assert!(resume(&bytes, &problem, &method).is_err());
    }

    #[test]
    fn another_method_or_parameter_is_named() {
        let (problem, method, state) = sample();
        let bytes = checkpoint_bytes(&fingerprint(&problem, &method), method.layout, &state, &[]);
        let other = recorded(
            "momentum",
            &[("lr", 0.2), ("beta", 0.5)],
            Schedule::Constant,
        );
        let error = resume(&bytes, &problem, &other).unwrap_err();
        assert_eq!(error, "method parameter lr: checkpoint 0.1, this run 0.2");
        let gd = recorded("gd", &[("lr", 0.1)], Schedule::Constant);
        let error = resume(&bytes, &problem, &gd).unwrap_err();
        assert!(error.contains("method differs"), "{error}");
        let scheduled = recorded(
            "momentum",
            &[("lr", 0.1), ("beta", 0.5)],
            Schedule::Log { period: 10 },
        );
        let error = resume(&bytes, &problem, &scheduled).unwrap_err();
        assert_eq!(
            error,
            "schedule differs: checkpoint constant, this run log(10)"
        );
    }

    #[test]
    fn swapped_boxes_are_named() {
        let (problem, method, state) = sample();
        let bytes = checkpoint_bytes(&fingerprint(&problem, &method), method.layout, &state, &[]);
        let (_, swapped) =
            crate::lower::lower_text(&PROBLEM.replace("g(b); h: f(b);", "h: f(b); g(b);"), None)
                .unwrap();
        let error = resume(&bytes, &swapped, &method).unwrap_err();
        assert!(error.starts_with("box order differs"), "{error}");
        assert!(
            error.contains("g (objective g), h (objective f) at positions 4, 5"),
            "{error}"
        );
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        for bytes in [
            &b""[..],
            b"catopt-checkpoint 2\n",
            b"catopt-checkpoint 99999999999999999999\n",
            b"{\"format\":\"catopt-checkpoint\",\"version\":1}",
            b"catopt-checkpoint 2\n{}\nfnv1a64 0000000000000000\n",
        ] {
            assert!(parse_checkpoint(bytes).is_err());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Every edit of a valid checkpoint is refused or gives back exactly the original state.
        #[test]
        fn edited_checkpoints_never_resume_a_different_state(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in prop::option::of(any::<prop::sample::Index>()),
        ) {
            let (problem, method, state) = sample();
            let mut bytes = checkpoint_bytes(&fingerprint(&problem, &method), method.layout, &state, &[]);
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            if let Ok(back) = resume(&bytes, &problem, &method) {
                prop_assert!(same(&back, &state));
            }
        }

        /// Arbitrary bytes never make the reader panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let mut with_magic = b"catopt-checkpoint 2\n".to_vec();
            with_magic.extend(&bytes);
            let _ = parse_checkpoint(&bytes);
            let _ = parse_checkpoint(&with_magic);
        }
    }
}
