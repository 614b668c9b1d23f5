//! The search space: a finite catalogue of configurations, each with named feature values and a
//! price per hour for the whole cluster, plus the normalised numeric encoding the surrogate sees.

use serde::{Deserialize, Serialize};

/// Index of a configuration in its [`Space`].
pub type ConfigId = usize;

/// How one feature of a configuration is represented.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Kind {
    /// A number; `log` encodes it on a log scale (sizes that span orders of magnitude).
    Numeric { log: bool },
    /// One of a fixed set of levels, one-hot encoded.
    Categorical { levels: Vec<String> },
}

/// A named feature of every configuration in a space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dimension {
    pub name: String,
    pub kind: Kind,
}

/// The value of one dimension for one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Num(f64),
    Cat(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Num(x) if x.fract() == 0.0 && x.abs() < 1e15 => write!(f, "{}", *x as i64),
            Value::Num(x) => write!(f, "{x}"),
            Value::Cat(s) => f.write_str(s),
        }
    }
}

/// One candidate configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Identifier unique within the space (for example `10_c4.large`).
    pub name: String,
    /// One value per dimension, in the order of [`Space::dimensions`].
    pub values: Vec<Value>,
    /// Price of everything the configuration occupies, in USD per hour.
    pub price_per_hour: f64,
}

/// Errors building a space.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpaceError {
    #[error("the catalogue is empty: a search space needs at least one configuration")]
    Empty,
    #[error("configuration `{config}` has {got} values but the space has {want} dimensions")]
    Arity {
        config: String,
        got: usize,
        want: usize,
    },
    #[error("configuration `{config}`, dimension `{dimension}`: {problem}")]
    BadValue {
        config: String,
        dimension: String,
        problem: String,
    },
    #[error("configuration `{config}`: price per hour must be finite and > 0, got {price}")]
    BadPrice { config: String, price: f64 },
    #[error("configuration name `{0}` appears twice")]
    DuplicateName(String),
    #[error("dimension name `{0}` appears twice")]
    DuplicateDimension(String),
}

/// A finite catalogue of configurations with a precomputed encoding in the unit cube.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Space {
    dimensions: Vec<Dimension>,
    configs: Vec<Config>,
    #[serde(skip)]
    encoded: Vec<Vec<f64>>,
}

impl Space {
    /// Checks the catalogue and computes the encoding. Numeric dimensions are min-max scaled to
    /// [0, 1] (after a log when `log` is set); categorical ones are one-hot.
    pub fn new(dimensions: Vec<Dimension>, configs: Vec<Config>) -> Result<Space, SpaceError> {
        if configs.is_empty() {
            return Err(SpaceError::Empty);
        }
        let mut seen = std::collections::HashSet::new();
        for d in &dimensions {
            if !seen.insert(d.name.as_str()) {
                return Err(SpaceError::DuplicateDimension(d.name.clone()));
            }
        }
        let mut names = std::collections::HashSet::new();
        for c in &configs {
            if !names.insert(c.name.as_str()) {
                return Err(SpaceError::DuplicateName(c.name.clone()));
            }
            if c.values.len() != dimensions.len() {
                return Err(SpaceError::Arity {
                    config: c.name.clone(),
                    got: c.values.len(),
                    want: dimensions.len(),
                });
            }
            if !(c.price_per_hour.is_finite() && c.price_per_hour > 0.0) {
                return Err(SpaceError::BadPrice {
                    config: c.name.clone(),
                    price: c.price_per_hour,
                });
            }
            for (d, v) in dimensions.iter().zip(&c.values) {
                let bad = |problem: String| SpaceError::BadValue {
                    config: c.name.clone(),
                    dimension: d.name.clone(),
                    problem,
                };
                match (&d.kind, v) {
                    (Kind::Numeric { log }, Value::Num(x)) => {
                        if !x.is_finite() {
                            return Err(bad(format!("{x} is not a finite number")));
                        }
                        if *log && *x <= 0.0 {
                            return Err(bad(format!("{x} must be > 0 on a log scale")));
                        }
                    }
                    (Kind::Categorical { levels }, Value::Cat(s)) => {
                        if !levels.contains(s) {
                            return Err(bad(format!("`{s}` is not one of {levels:?}")));
                        }
                    }
                    (Kind::Numeric { .. }, Value::Cat(s)) => {
                        return Err(bad(format!("expected a number, got `{s}`")))
                    }
                    (Kind::Categorical { .. }, Value::Num(x)) => {
                        return Err(bad(format!("expected a category, got {x}")))
                    }
                }
            }
        }
        let mut space = Space {
            dimensions,
            configs,
            encoded: Vec::new(),
        };
        space.encoded = space.encode_all();
        Ok(space)
    }

    /// Chooses `log` for numeric dimensions whose positive values span a ratio of 4 or more.
    pub fn auto_log(dimensions: &mut [Dimension], configs: &[Config]) {
        for (j, d) in dimensions.iter_mut().enumerate() {
            if let Kind::Numeric { log } = &mut d.kind {
                let xs: Vec<f64> = configs
                    .iter()
                    .filter_map(|c| match c.values.get(j) {
                        Some(Value::Num(x)) => Some(*x),
                        _ => None,
                    })
                    .collect();
                let min = xs.iter().cloned().fold(f64::INFINITY, f64::min);
                let max = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                *log = min > 0.0 && max / min >= 4.0;
            }
        }
    }

    fn encode_all(&self) -> Vec<Vec<f64>> {
        let n = self.configs.len();
        let mut out = vec![Vec::new(); n];
        for (j, d) in self.dimensions.iter().enumerate() {
            match &d.kind {
                Kind::Numeric { log } => {
                    let t = |v: &Value| match v {
                        Value::Num(x) if *log => x.ln(),
                        Value::Num(x) => *x,
                        Value::Cat(_) => unreachable!("checked in Space::new"),
                    };
                    let xs: Vec<f64> = self.configs.iter().map(|c| t(&c.values[j])).collect();
                    let min = xs.iter().cloned().fold(f64::INFINITY, f64::min);
                    let max = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let span = max - min;
                    // A constant dimension carries no information: encode it as 0.5 everywhere.
                    for (row, x) in out.iter_mut().zip(xs) {
                        row.push(if span > 0.0 { (x - min) / span } else { 0.5 });
                    }
                }
                Kind::Categorical { levels } => {
                    if levels.len() < 2 {
                        continue;
                    }
                    for (row, c) in out.iter_mut().zip(&self.configs) {
                        let Value::Cat(s) = &c.values[j] else {
                            unreachable!("checked in Space::new")
                        };
                        row.extend(levels.iter().map(|l| if l == s { 1.0 } else { 0.0 }));
                    }
                }
            }
        }
        out
    }

    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }
    pub fn configs(&self) -> &[Config] {
        &self.configs
    }
    pub fn config(&self, id: ConfigId) -> &Config {
        &self.configs[id]
    }
    pub fn len(&self) -> usize {
        self.configs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }
    /// The normalised feature vector the surrogate sees for configuration `id`.
    pub fn encoded(&self, id: ConfigId) -> &[f64] {
        &self.encoded[id]
    }
    /// Width of the encoded feature vectors.
    pub fn encoded_dim(&self) -> usize {
        self.encoded.first().map_or(0, Vec::len)
    }
    /// Looks a configuration up by name.
    pub fn find(&self, name: &str) -> Option<ConfigId> {
        self.configs.iter().position(|c| c.name == name)
    }
    /// Index of a dimension by name.
    pub fn dimension_index(&self, name: &str) -> Option<usize> {
        self.dimensions.iter().position(|d| d.name == name)
    }
    /// Renders a configuration as `name (dim=value, ...)`.
    pub fn describe(&self, id: ConfigId) -> String {
        let c = &self.configs[id];
        let parts: Vec<String> = self
            .dimensions
            .iter()
            .zip(&c.values)
            .map(|(d, v)| format!("{}={}", d.name, v))
            .collect();
        format!("{} ({})", c.name, parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims() -> Vec<Dimension> {
        vec![
            Dimension {
                name: "nodes".into(),
                kind: Kind::Numeric { log: true },
            },
            Dimension {
                name: "family".into(),
                kind: Kind::Categorical {
                    levels: vec!["c4".into(), "m4".into()],
                },
            },
        ]
    }

    fn cfg(name: &str, nodes: f64, fam: &str) -> Config {
        Config {
            name: name.into(),
            values: vec![Value::Num(nodes), Value::Cat(fam.into())],
            price_per_hour: nodes * 0.1,
        }
    }

    #[test]
    fn encodes_log_numeric_and_one_hot() {
        let s = Space::new(
            dims(),
            vec![
                cfg("a", 4.0, "c4"),
                cfg("b", 16.0, "m4"),
                cfg("c", 8.0, "c4"),
            ],
        )
        .unwrap();
        assert_eq!(s.encoded_dim(), 3);
        assert_eq!(s.encoded(0), &[0.0, 1.0, 0.0]);
        assert_eq!(s.encoded(1), &[1.0, 0.0, 1.0]);
        assert!(
            (s.encoded(2)[0] - 0.5).abs() < 1e-12,
            "8 is halfway between 4 and 16 in log"
        );
    }

    #[test]
    fn rejects_bad_catalogues_with_named_fields() {
        assert_eq!(Space::new(dims(), vec![]).unwrap_err(), SpaceError::Empty);
        let err = Space::new(dims(), vec![cfg("a", 4.0, "r4")]).unwrap_err();
        assert!(
            err.to_string().contains("`a`") && err.to_string().contains("family"),
            "{err}"
        );
        let err = Space::new(dims(), vec![cfg("a", 4.0, "c4"), cfg("a", 8.0, "c4")]).unwrap_err();
        assert_eq!(err, SpaceError::DuplicateName("a".into()));
        let mut c = cfg("z", 0.0, "c4");
        c.price_per_hour = 1.0;
        assert!(matches!(
            Space::new(dims(), vec![c]),
            Err(SpaceError::BadValue { .. })
        ));
    }
}
