//! Named values as JSON: the `values` object of `catopt run --format json`, `--output` and
//! `--init` files.
//!
//! A scalar is a number, a vector an array, a matrix an array of rows. The members of a
//! junction family `x[0]`, `x[1]`, ... are gathered into one array `x` when their indices
//! are exactly 0..n, and into an object keyed by index otherwise. Non-finite numbers (which
//! JSON cannot hold) are written as `null`.

use crate::lower::NamedVariable;
use crate::shape::Shape;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The JSON value of one variable at `state`.
pub fn variable_value(variable: &NamedVariable<'_>, state: &[f64]) -> Value {
    let number = |g: usize| {
        serde_json::Number::from_f64(state[g])
            .map(Value::Number)
            .unwrap_or(Value::Null)
    };
    match variable.shape() {
        Shape::Scalar => number(variable.coordinates()[0]),
        Shape::Vector(_) => {
            Value::Array(variable.coordinates().iter().map(|&g| number(g)).collect())
        }
        Shape::Matrix(_, cols) => Value::Array(
            variable
                .coordinates()
                .chunks(cols.max(1))
                .map(|row| Value::Array(row.iter().map(|&g| number(g)).collect()))
                .collect(),
        ),
    }
}

/// The `values` object as a serialisable view: every variable by name, a family's members
/// gathered (module doc), written variable by variable, so that a million-member family
/// never exists as a JSON tree.
pub struct ValuesView<'a, 'b> {
    /// The variables to write.
    pub variables: &'a [NamedVariable<'b>],
    /// The global coordinates.
    pub state: &'a [f64],
}

impl Serialize for ValuesView<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // By name, in the order of serde_json's (sorted) maps; a family's members by index.
        let mut groups: BTreeMap<Arc<str>, Vec<(Option<i64>, u32)>> = BTreeMap::new();
        for (v, variable) in self.variables.iter().enumerate() {
            let name = variable.name();
            groups
                .entry(name.base)
                .or_default()
                .push((name.index, v as u32));
        }
        let mut map = serializer.serialize_map(Some(groups.len()))?;
        for (base, mut members) in groups {
            let value_of = |v: u32| variable_value(&self.variables[v as usize], self.state);
            // A family's members win over plain names, and of several variables with the
            // same plain name (labels repeated across loops), the last.
            if members.iter().all(|&(i, _)| i.is_none()) {
                let &(_, last) = members.last().expect("a group has a member");
                map.serialize_entry(&*base, &value_of(last))?;
                continue;
            }
            members.retain(|&(i, _)| i.is_some());
            members.sort_by_key(|&(i, _)| i);
            let dense = members
                .iter()
                .enumerate()
                .all(|(k, &(i, _))| i == Some(k as i64));
            if dense {
                map.serialize_entry(&*base, &Members(&members, &value_of))?;
            } else {
                let object: Map<String, Value> = members
                    .iter()
                    .map(|&(i, v)| (i.unwrap_or_default().to_string(), value_of(v)))
                    .collect();
                map.serialize_entry(&*base, &object)?;
            }
        }
        map.end()
    }
}

/// A dense family's members as a JSON array, made one member at a time.
struct Members<'a, F: Fn(u32) -> Value>(&'a [(Option<i64>, u32)], &'a F);

impl<F: Fn(u32) -> Value> Serialize for Members<'_, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for &(_, v) in self.0 {
            seq.serialize_element(&(self.1)(v))?;
        }
        seq.end()
    }
}

/// A JSON object of small `fields` plus a `values` entry written from a [`ValuesView`], in
/// serde_json's sorted key order, as if `values` were one more entry of `fields`.
pub struct WithValues<'a, 'b> {
    /// The other fields (without `values`).
    pub fields: &'a Map<String, Value>,
    /// The values.
    pub values: ValuesView<'a, 'b>,
}

impl Serialize for WithValues<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len() + 1))?;
        let mut written = false;
        for (key, value) in self.fields {
            if !written && key.as_str() > "values" {
                map.serialize_entry("values", &self.values)?;
                written = true;
            }
            map.serialize_entry(key, value)?;
        }
        if !written {
            map.serialize_entry("values", &self.values)?;
        }
        map.end()
    }
}

/// Parses JSON like `serde_json::from_slice`, but refuses an object with a duplicate key
/// (serde_json keeps the last one silently: `{"b": 1, "b": 2}` would set `b` to 2).
pub fn parse_json_strict(bytes: &[u8]) -> Result<Value, String> {
    struct Strict(Value);
    impl<'de> serde::Deserialize<'de> for Strict {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
            d.deserialize_any(StrictVisitor).map(Strict)
        }
    }
    struct StrictVisitor;
    impl<'de> serde::de::Visitor<'de> for StrictVisitor {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_string()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(Strict(item)) = seq.next_element()? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut object = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let Strict(value) = map.next_value()?;
                if object.insert(key.clone(), value).is_some() {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate key `{key}` (each name may be given once)"
                    )));
                }
            }
            Ok(Value::Object(object))
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let Strict(value) =
        serde::Deserialize::deserialize(&mut deserializer).map_err(|e| e.to_string())?;
    deserializer.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// The message for a name that several variables share (duplicate box labels).
fn ambiguous(name: &str) -> String {
    format!(
        "`{name}` names several variables of this composite (boxes with the same label); \
         give the boxes distinct labels"
    )
}

/// Reads values from a `values` object (as written by `--output`) into `state`. Every
/// name in the object must be a known variable with the right shape; variables not in the
/// object keep their values. Returns how many variables were set.
pub fn apply_values(
    variables: &[NamedVariable<'_>],
    values: &Map<String, Value>,
    state: &mut [f64],
) -> Result<usize, String> {
    let mut by_name: BTreeMap<String, Vec<&NamedVariable<'_>>> = BTreeMap::new();
    for v in variables {
        by_name
            .entry(v.name().base.to_string())
            .or_default()
            .push(v);
    }
    let mut set = 0;
    for (name, value) in values {
        let Some(candidates) = by_name.get(name) else {
            let known: Vec<&str> = by_name.keys().map(String::as_str).take(12).collect();
            let hint = match crate::check::closest(name, by_name.keys().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`? "),
                None => String::new(),
            };
            return Err(format!(
                "`{name}` is not a variable of this composite; {hint}(known: {}{})",
                known.join(", "),
                if by_name.len() > known.len() {
                    ", ..."
                } else {
                    ""
                }
            ));
        };
        let is_family = candidates.iter().any(|v| v.name().index.is_some());
        if is_family {
            let members: Vec<(i64, &Value)> = match value {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as i64, v))
                    .collect(),
                Value::Object(items) => {
                    let mut members = Vec::new();
                    for (k, v) in items {
                        let i: i64 = k
                            .parse()
                            .map_err(|_| format!("`{name}`: member key `{k}` is not an index"))?;
                        members.push((i, v));
                    }
                    members
                }
                _ => {
                    return Err(format!(
                        "`{name}` is a family: expected an array of its members"
                    ))
                }
            };
            for (index, member_value) in members {
                let mut matching = candidates.iter().filter(|v| v.name().index == Some(index));
                let Some(variable) = matching.next() else {
                    return Err(format!("`{name}[{index}]` is not a member of the family"));
                };
                if matching.next().is_some() {
                    return Err(ambiguous(&format!("{name}[{index}]")));
                }
                write_value(variable, member_value, state)
                    .map_err(|e| format!("`{name}[{index}]`: {e}"))?;
                set += 1;
            }
        } else {
            if candidates.len() > 1 {
                return Err(ambiguous(name));
            }
            write_value(candidates[0], value, state).map_err(|e| format!("`{name}`: {e}"))?;
            set += 1;
        }
    }
    Ok(set)
}

fn write_value(
    variable: &NamedVariable<'_>,
    value: &Value,
    state: &mut [f64],
) -> Result<(), String> {
    let mut flat = Vec::with_capacity(variable.coordinates().len());
    flatten_json(value, &mut flat)?;
    if flat.len() != variable.coordinates().len() {
        return Err(format!(
            "expected {} ({}), found {}",
            crate::name::counted(variable.coordinates().len(), "number"),
            variable.shape(),
            flat.len()
        ));
    }
    for (&g, v) in variable.coordinates().iter().zip(flat) {
        state[g] = v;
    }
    Ok(())
}

fn flatten_json(value: &Value, out: &mut Vec<f64>) -> Result<(), String> {
    match value {
        Value::Number(n) => {
            let v = n.as_f64().ok_or("a number out of range")?;
            out.push(v);
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|item| flatten_json(item, out)),
        Value::Null => Err("null (a non-finite value) cannot be used as a starting point".into()),
        other => Err(format!("expected numbers, found {other}")),
    }
}

/// Human-readable lines `name = value` for the summary: long vectors, matrices and
/// families are shortened to their first `max_entries` entries and a count. Families are
/// gathered from consecutive members: members with consecutive increasing indices print as
/// `x[1..=3] = [a, b, c] (3 members)`, any others (`x[1]`, `x[3]`, `x[5]`) with each
/// member's index, `x[1] = a, x[3] = b, x[5] = c (3 members)`, so no value is read as
/// another member's.
pub fn values_text(variables: &[NamedVariable<'_>], state: &[f64], max_entries: usize) -> String {
    let entry = |v: &NamedVariable<'_>| -> String {
        let shown: Vec<String> = v
            .coordinates()
            .iter()
            .take(max_entries)
            .map(|&g| format_number(state[g]))
            .collect();
        match v.shape() {
            Shape::Scalar => shown[0].clone(),
            shape if v.coordinates().len() > max_entries => {
                format!("[{}, ...] ({shape}, row-major)", shown.join(", "))
            }
            Shape::Vector(_) => format!("[{}]", shown.join(", ")),
            Shape::Matrix(_, cols) => {
                let rows: Vec<String> = shown.chunks(cols.max(1)).map(|r| r.join(", ")).collect();
                format!("[{}]", rows.join("; "))
            }
        }
    };
    let mut out = String::new();
    let mut i = 0;
    while i < variables.len() {
        let v = &variables[i];
        if v.name().index.is_none() {
            out.push_str(&format!("  {} = {}\n", v.name(), entry(v)));
            i += 1;
            continue;
        }
        let mut j = i;
        while j < variables.len()
            && variables[j].name().base == v.name().base
            && variables[j].name().index.is_some()
        {
            j += 1;
        }
        let members = &variables[i..j];
        let more = if members.len() > max_entries {
            ", ..."
        } else {
            ""
        };
        let first = members[0].name().index.unwrap_or(0);
        let last = members[members.len() - 1].name().index.unwrap_or(0);
        let consecutive = members
            .iter()
            .enumerate()
            .all(|(k, m)| m.name().index == first.checked_add(k as i64));
        if consecutive {
            let shown: Vec<String> = members.iter().take(max_entries).map(entry).collect();
            out.push_str(&format!(
                "  {}[{first}..={last}] = [{}{more}] ({} members)\n",
                v.name().base,
                shown.join(", "),
                members.len()
            ));
        } else {
            let shown: Vec<String> = members
                .iter()
                .take(max_entries)
                .map(|m| format!("{} = {}", m.name(), entry(m)))
                .collect();
            let count = if members.len() > max_entries {
                format!(
                    "{} members, the last {}",
                    members.len(),
                    members[members.len() - 1].name()
                )
            } else {
                format!("{} members", members.len())
            };
            out.push_str(&format!("  {}{more} ({count})\n", shown.join(", ")));
        }
        i = j;
    }
    out
}

/// Plain notation for ordinary magnitudes, scientific for very large or small ones.
pub fn format_number(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 {
        // Never `-0`: a gradient norm or a value that is zero reads as zero.
        "0".to_string()
    } else if !value.is_finite() {
        format!("{value} (non-finite)")
    } else if magnitude != 0.0 && !(1e-5..1e7).contains(&magnitude) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::lower_text;

    #[test]
    fn a_sparse_or_unordered_family_shows_each_members_index() {
        let text = "
            objective f(a: real; k: real) { minimize (a - k)^2; }
            composite c() {
                f(x[1]; 0); f(x[3]; 1); f(x[5]; 2);
                g: f(y[2]; 7); h: f(y[1]; 8);
                for i in 0..3 { d: f(z[i]; 4); }
            }";
        let (_, problem) = lower_text(text, None).unwrap();
        let state: Vec<f64> = (0..problem.variable_count()).map(|k| k as f64).collect();
        let shown = values_text(&problem.top_level_variables(), &state, 8);
        assert!(
            shown.contains("  x[1] = 0, x[3] = 1, x[5] = 2 (3 members)\n"),
            "{shown}"
        );
        assert!(
            shown.contains("  y[2] = 3, y[1] = 4 (2 members)\n"),
            "{shown}"
        );
        assert!(
            shown.contains("  z[0..=2] = [5, 6, 7] (3 members)\n"),
            "{shown}"
        );
        let cut = values_text(&problem.top_level_variables(), &state, 2);
        assert!(
            cut.contains("  x[1] = 0, x[3] = 1, ... (3 members, the last x[5])\n"),
            "{cut}"
        );
    }

    #[test]
    fn zero_never_prints_as_minus_zero() {
        // A gradient norm or value of -0.0 printed as `-0` (issue 13).
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(-1.5), "-1.5");
    }

    /// The reference: the `values` object built as a JSON tree, the obvious way (what
    /// catopt did before the view), which the view must reproduce byte for byte.
    fn values_object(variables: &[NamedVariable<'_>], state: &[f64]) -> Map<String, Value> {
        let mut out = Map::new();
        let mut families: BTreeMap<String, Vec<(i64, Value)>> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for variable in variables {
            let value = variable_value(variable, state);
            match variable.name().index {
                None => {
                    order.push(variable.name().base.to_string());
                    out.insert(variable.name().base.to_string(), value);
                }
                Some(index) => {
                    let base = variable.name().base.to_string();
                    let members = families.entry(base.clone()).or_default();
                    if members.is_empty() {
                        order.push(base);
                    }
                    members.push((index, value));
                }
            }
        }
        for (base, mut members) in families {
            members.sort_by_key(|(i, _)| *i);
            let dense = members.iter().enumerate().all(|(k, (i, _))| *i == k as i64);
            let value = if dense {
                Value::Array(members.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(
                    members
                        .into_iter()
                        .map(|(i, v)| (i.to_string(), v))
                        .collect(),
                )
            };
            out.insert(base, value);
        }
        // Keep declaration order (serde_json's Map is sorted unless preserve_order; rebuild).
        let mut ordered = Map::new();
        for name in order {
            if let Some(v) = out.remove(&name) {
                ordered.insert(name, v);
            }
        }
        ordered
    }

    #[test]
    fn the_streamed_view_writes_what_values_object_builds() {
        let text = "
            objective f(a: real, b: real[2]) { var m: real[2, 2] = 0.5; minimize (a - 1)^2 + sumsq(m @ b); }
            composite c() where (w: real[2] = 0.3) {
                for i in 0..12 { f(x[i], w); }
                for i in 3..14 { again: f(y[i], w); }
                last: f(z, w);
            }
            solve c { method = gd(lr = 0.1); init x = -1.5; }";
        let (_, problem) = lower_text(text, None).unwrap();
        let state: Vec<f64> = (0..problem.variable_count())
            .map(|k| {
                if k == 5 {
                    f64::NAN
                } else {
                    k as f64 * 0.25 - 3.0
                }
            })
            .collect();
        for variables in [problem.top_level_variables(), problem.all_variables()] {
            let built =
                serde_json::to_string_pretty(&Value::Object(values_object(&variables, &state)))
                    .unwrap();
            let streamed = serde_json::to_string_pretty(&ValuesView {
                variables: &variables,
                state: &state,
            })
            .unwrap();
            assert_eq!(streamed, built);
            let mut fields = Map::new();
            fields.insert("composite".into(), Value::from("c"));
            fields.insert("variables".into(), Value::from(3));
            let mut whole = fields.clone();
            whole.insert(
                "values".into(),
                Value::Object(values_object(&variables, &state)),
            );
            let with = WithValues {
                fields: &fields,
                values: ValuesView {
                    variables: &variables,
                    state: &state,
                },
            };
            assert_eq!(
                serde_json::to_string_pretty(&with).unwrap(),
                serde_json::to_string_pretty(&Value::Object(whole)).unwrap()
            );
        }
    }
}
