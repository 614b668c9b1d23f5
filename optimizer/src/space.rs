//! The search space: a finite catalogue of configurations, each with named feature values and a
//! price per hour for the whole cluster, plus the normalised numeric encoding the surrogate sees.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

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

impl Value {
    /// The number, or NaN for a category (callers check the dimension's kind first).
    fn num(&self) -> f64 {
        match self {
            Value::Num(x) => *x,
            Value::Cat(_) => f64::NAN,
        }
    }
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
    #[error("configuration `{config}`: price per hour must be finite and > 0, got {}", crate::Shown(*price))]
    BadPrice { config: String, price: f64 },
    #[error("configuration name `{0}` appears twice")]
    DuplicateName(String),
    #[error("dimension name `{0}` appears twice")]
    DuplicateDimension(String),
    #[error(
        "dimension `{dimension}` has {got} text values; at most {MAX_LEVELS} can be told apart \
         (each is an input of its own): make it a number, or split the catalogue"
    )]
    TooManyLevels { dimension: String, got: usize },
}

/// Most text values (levels) one categorical dimension may have. Each level is an input column
/// of its own, so the encoding holds configurations x levels numbers: ten thousand levels over
/// as many configurations is 800 MB, and a model with that many inputs learns nothing from
/// a few dozen probes. Machine-type lists, the largest real case, run to a few hundred.
pub const MAX_LEVELS: usize = 1000;

/// A finite catalogue of configurations with a precomputed encoding in the unit cube.
/// Deserialising goes through [`Space::new`], so a space read from a file is checked like one
/// built in code.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "SpaceParts")]
pub struct Space {
    dimensions: Vec<Dimension>,
    configs: Vec<Config>,
    #[serde(skip)]
    encoded: Vec<Vec<f64>>,
}

/// How far (in ln, about 1%) a column named as a price may stray from the configuration's price
/// over other columns and still be read as one: a generic CSV without a price column prices a
/// configuration from its runs' cost over runtime, and costs written to four decimals put that
/// a few tenths of a percent off the price per node-hour beside it. A column that close to a
/// price tells the model nothing the price and the other columns do not.
const PRICE_AGREEMENT: f64 = 0.01;

/// What a serialised [`Space`] holds, before it is checked.
#[derive(Deserialize)]
struct SpaceParts {
    dimensions: Vec<Dimension>,
    configs: Vec<Config>,
}

impl TryFrom<SpaceParts> for Space {
    type Error = SpaceError;
    fn try_from(parts: SpaceParts) -> Result<Space, SpaceError> {
        Space::new(parts.dimensions, parts.configs)
    }
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
            if let Kind::Categorical { levels } = &d.kind {
                if levels.len() > MAX_LEVELS {
                    return Err(SpaceError::TooManyLevels {
                        dimension: d.name.clone(),
                        got: levels.len(),
                    });
                }
            }
        }
        // Each categorical dimension's levels, for a lookup that does not scan the list.
        let level_sets: Vec<std::collections::HashSet<&str>> = dimensions
            .iter()
            .map(|d| match &d.kind {
                Kind::Categorical { levels } => levels.iter().map(String::as_str).collect(),
                Kind::Numeric { .. } => std::collections::HashSet::new(),
            })
            .collect();
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
            for ((d, v), level_set) in dimensions.iter().zip(&c.values).zip(&level_sets) {
                let bad = |problem: String| SpaceError::BadValue {
                    config: c.name.clone(),
                    dimension: d.name.clone(),
                    problem,
                };
                match (&d.kind, v) {
                    (Kind::Numeric { log }, Value::Num(x)) => {
                        if !x.is_finite() {
                            return Err(bad(format!(
                                "{} is not a finite number",
                                crate::Shown(*x)
                            )));
                        }
                        if *log && *x <= 0.0 {
                            return Err(bad(format!(
                                "{} must be > 0 on a log scale",
                                crate::Shown(*x)
                            )));
                        }
                    }
                    (Kind::Categorical { levels }, Value::Cat(s)) => {
                        if !level_set.contains(s.as_str()) {
                            return Err(bad(format!("`{s}` is not one of {levels:?}")));
                        }
                    }
                    (Kind::Numeric { .. }, Value::Cat(s)) => {
                        return Err(bad(format!("expected a number, got `{s}`")))
                    }
                    (Kind::Categorical { .. }, Value::Num(x)) => {
                        return Err(bad(format!(
                            "expected a category, got {}",
                            crate::Shown(*x)
                        )))
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
                *log = spans_a_log_scale(&xs);
            }
        }
    }

    fn encode_all(&self) -> Vec<Vec<f64>> {
        self.features(Features::Space)
    }

    /// The surrogate's inputs for every configuration, encoded as `how` says; every column in
    /// [0, 1]. This is the crate's one feature encoder: strategies ask it, never re-encode.
    pub fn features(&self, how: Features) -> Vec<Vec<f64>> {
        self.encode(how).0
    }

    /// What the inputs encoded as `how` are made of and what they leave out, and why: for a
    /// user to see what the model looks at (`search`'s plan, `compare`'s summary).
    pub fn inputs(&self, how: Features) -> Inputs {
        self.encode(how).1
    }

    fn encode(&self, how: Features) -> (Vec<Vec<f64>>, Inputs) {
        let declared = how == Features::Space;
        let d = self.dimensions.len();
        let n = self.configs.len();
        let mut out = vec![Vec::new(); n];
        let ln: Vec<Option<Vec<f64>>> = (0..d).map(|j| self.ln_amount(j)).collect();
        // The dimension behind each column pushed so far (a category's levels all name it).
        let mut source: Vec<usize> = Vec::new();
        let mut left_out: Vec<Option<LeftOut>> = if declared {
            vec![None; d]
        } else {
            self.total_dimensions(self.relabelling_dimensions(), &ln)
        };
        let mut kept = Vec::new();
        // Every amount (positive numeric dimension with 3 or more distinct values).
        let mut amounts: Vec<usize> = Vec::new();
        for (j, dim) in self.dimensions.iter().enumerate() {
            if left_out[j].is_some() {
                continue;
            }
            match &dim.kind {
                Kind::Numeric { log } => {
                    let raw: Vec<f64> = self.configs.iter().map(|c| c.values[j].num()).collect();
                    let use_log = *log || (!declared && spans_a_log_scale(&raw));
                    let t: Vec<f64> = raw
                        .iter()
                        .map(|x| if use_log { x.ln() } else { *x })
                        .collect();
                    if ln[j].is_some() {
                        amounts.push(j);
                    }
                    match push_scaled(&mut out, &t, declared) {
                        Pushed::Column => {
                            source.push(j);
                            kept.push(j);
                        }
                        Pushed::Constant => left_out[j] = Some(LeftOut::Constant),
                        Pushed::CopyOf(c) => left_out[j] = Some(LeftOut::CopyOf(source[c])),
                    }
                }
                Kind::Categorical { levels } => {
                    let used: Vec<&String> = levels
                        .iter()
                        .filter(|l| {
                            declared
                                || self
                                    .configs
                                    .iter()
                                    .any(|c| matches!(&c.values[j], Value::Cat(s) if s == *l))
                        })
                        .collect();
                    if used.len() < 2 {
                        left_out[j] = Some(LeftOut::Constant);
                        continue;
                    }
                    for (row, c) in out.iter_mut().zip(&self.configs) {
                        for l in &used {
                            row.push(match &c.values[j] {
                                Value::Cat(s) if s == *l => 1.0,
                                _ => 0.0,
                            });
                        }
                    }
                    source.extend(std::iter::repeat_n(j, used.len()));
                    kept.push(j);
                }
            }
        }
        // Products of a basis: an amount in the span of earlier ones (and not a product of
        // them, which is left out above) stays an input but multiplies nothing, else its pairs
        // with the others would be powers and cross-terms no job feels. Past eight amounts the
        // pairs alone would swamp the surrogate: the first eight serve.
        let basis = product_basis(&amounts, &ln);
        let mut products = Vec::new();
        if how == Features::Products && basis.len() >= 2 {
            let logs: Vec<Vec<f64>> = basis.iter().filter_map(|&j| ln[j].clone()).collect();
            for mask in product_subsets(basis.len()) {
                if let Pushed::Column = push_scaled(&mut out, &log_product(&logs, mask), false) {
                    products.push(in_mask(&basis, mask));
                }
            }
        }
        if !declared {
            self.name_kept_reasons(&mut left_out);
        }
        // A catalogue where nothing varies: give the surrogate one constant input.
        if !declared && out.first().is_some_and(|r| r.is_empty()) {
            for row in &mut out {
                row.push(0.5);
            }
        }
        let inputs = Inputs {
            names: self.dimensions.iter().map(|d| d.name.clone()).collect(),
            one_hot: (0..d)
                .map(|j| match self.dimensions[j].kind {
                    Kind::Categorical { .. } => source.iter().filter(|&&s| s == j).count(),
                    Kind::Numeric { .. } => 0,
                })
                .collect(),
            kept,
            products,
            left_out: left_out
                .into_iter()
                .enumerate()
                .filter_map(|(j, why)| why.map(|why| (j, why)))
                .collect(),
        };
        (out, inputs)
    }

    /// Restates each reason for leaving a dimension out in dimensions that stay, where a rule
    /// named one that a later rule left out too: a total whose factors include another total
    /// names that one's factors instead, and a category that relabels a constant or a total
    /// names only the dimensions that stay, when those alone tell its levels apart. The
    /// reasons stay true (a total is its factors' product; a category determined by a set is
    /// determined by any subset that still tells its levels apart); the inputs do not change.
    fn name_kept_reasons(&self, left_out: &mut [Option<LeftOut>]) {
        let factors = |j: usize| match &left_out[j] {
            Some(LeftOut::ProductOf(by)) => Some(by.clone()),
            _ => None,
        };
        let mut restated: Vec<(usize, LeftOut)> = Vec::new();
        for (j, why) in left_out.iter().enumerate() {
            match why {
                Some(LeftOut::ProductOf(by)) => {
                    // A total is left out only beside those not left out when it is checked, so
                    // the chain of totals it names ends.
                    let mut by = by.clone();
                    while let Some(k) = by.iter().position(|&f| factors(f).is_some()) {
                        let inner = factors(by.remove(k)).unwrap_or_default();
                        by.extend(inner);
                    }
                    by.sort_unstable();
                    restated.push((j, LeftOut::ProductOf(by)));
                }
                Some(LeftOut::Relabels(by)) => {
                    let staying: Vec<usize> = by
                        .iter()
                        .copied()
                        .filter(|&o| left_out[o].is_none())
                        .collect();
                    if !staying.is_empty() && self.determined_by(j, &staying) {
                        restated.push((j, LeftOut::Relabels(staying)));
                    }
                }
                _ => {}
            }
        }
        for (j, why) in restated {
            left_out[j] = Some(why);
        }
    }

    /// Dimensions that only relabel others, which the surrogate's inputs leave out.
    ///
    /// A category goes when other dimensions (not left out) take one value per level of it and
    /// those values tell every two levels apart (`vm_type` beside `vcpus` and `memory_gib`,
    /// `size` beside `vcpus`). One-hot, such a dimension adds a column per level and says
    /// nothing the others do not, and with a few dozen observations every extra length-scale
    /// is one more to get wrong; so the inputs do not depend on how a catalogue is spelled. A
    /// dimension that is merely a function of others stays (`family` beside `vcpus` and
    /// `memory_gib`: the grouping it names is not an axis of theirs).
    ///
    /// A number goes only when it is a price the other dimensions determine
    /// ([`Space::is_a_price`]: its name says so, and it is the configuration's price per hour
    /// over a product of other numbers, up to a constant factor) and no two configurations
    /// that the others leave alike differ in it (two machine types may cost the same). A price
    /// per node-hour, which a generic CSV carries to be priced, is one, and so is a cluster's
    /// price beside it. `bo` knows the price already (it models cost over price), and as an
    /// amount it would add products (price x nodes, price x vCPUs, ...). The name is read
    /// because numbers cannot say what they mean: in one family priced per vCPU, vCPUs are
    /// the price per node-hour up to a factor, and they must stay an axis. Other numbers keep
    /// an order and a scale that a relabelling would lose (memory beside a family and vCPUs).
    ///
    /// Numbers are checked first, then categories, each kind from the last declared to the
    /// first, so of two categories that relabel each other the first declared stays.
    fn relabelling_dimensions(&self) -> Vec<Option<LeftOut>> {
        let d = self.dimensions.len();
        let mut dropped: Vec<Option<LeftOut>> = vec![None; d];
        let categorical = |j: usize| matches!(self.dimensions[j].kind, Kind::Categorical { .. });
        let ln_price: Option<Vec<f64>> = self
            .configs
            .iter()
            .all(|c| c.price_per_hour > 0.0)
            .then(|| self.configs.iter().map(|c| c.price_per_hour.ln()).collect());
        // Prices first: a price that stayed would tell machine types apart and so make their
        // name look like a relabelling of it, leaving the price (a worse input) in its place.
        let order: Vec<usize> = (0..d)
            .rev()
            .filter(|&j| !categorical(j))
            .chain((0..d).rev().filter(|&j| categorical(j)))
            .collect();
        for j in order {
            // A number goes only if it is a price, and then only if the others determine it.
            if !categorical(j) {
                let Some(price) = &ln_price else {
                    continue;
                };
                if !self.is_a_price(j, price, &dropped) {
                    continue;
                }
                // A price goes if the other dimensions tell apart every two configurations it
                // tells apart (it need not tell machine types apart: two may cost the same).
                let kept: Vec<usize> = (0..d).filter(|&o| o != j && dropped[o].is_none()).collect();
                if self.determined_by(j, &kept) {
                    dropped[j] = Some(LeftOut::Price);
                }
                continue;
            }
            if distinct_values(self.configs.iter().map(|c| &c.values[j])) < 2 {
                continue;
            }
            // The other dimensions that take one value per level of `j`, and whose values
            // tell every two levels apart.
            let fixed: Vec<usize> = (0..d)
                .filter(|&o| o != j && dropped[o].is_none() && self.determined_by(o, &[j]))
                .collect();
            if !fixed.is_empty() && self.determined_by(j, &fixed) {
                dropped[j] = Some(LeftOut::Relabels(fixed));
            }
        }
        dropped
    }

    /// Whether number `j` is a price: its name says so (`price` or `cost` in it, as in a
    /// generic CSV's `price_per_node_hour`) and its values are the configuration's price per
    /// hour (`ln_price`, its logs) over the product of some other positive numbers not left
    /// out (none, nodes, nodes and vCPUs, ...; the first eight that vary), up to a constant
    /// factor (a currency, or hours against seconds) and within [`PRICE_AGREEMENT`].
    fn is_a_price(&self, j: usize, ln_price: &[f64], dropped: &[Option<LeftOut>]) -> bool {
        let name = self.dimensions[j].name.to_lowercase();
        if !(name.contains("price") || name.contains("cost")) {
            return false;
        }
        let logs = |o: usize| -> Option<Vec<f64>> {
            let raw: Vec<f64> = self.configs.iter().map(|c| c.values[o].num()).collect();
            raw.iter()
                .all(|x| *x > 0.0)
                .then(|| raw.iter().map(|x| x.ln()).collect())
        };
        let Some(col) = logs(j) else {
            return false;
        };
        let numeric = |o: usize| matches!(self.dimensions[o].kind, Kind::Numeric { .. });
        let others: Vec<Vec<f64>> = (0..self.dimensions.len())
            .filter(|&o| o != j && dropped[o].is_none() && numeric(o))
            .filter_map(logs)
            .filter(|l| min_max(l).is_some())
            .take(8)
            .collect();
        (0u32..1 << others.len()).any(|mask| {
            let per = if mask == 0 {
                vec![0.0; col.len()]
            } else {
                log_product(&others, mask)
            };
            let (lo, hi) = (0..col.len())
                .map(|i| col[i] + per[i] - ln_price[i])
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                });
            hi - lo < PRICE_AGREEMENT
        })
    }

    /// Whether every two configurations alike in the dimensions `by` are alike in `j`.
    fn determined_by(&self, j: usize, by: &[usize]) -> bool {
        let mut seen: HashMap<Vec<Key>, Key> = HashMap::with_capacity(self.configs.len());
        self.configs.iter().all(|c| {
            let at = by.iter().map(|&o| Key::of(&c.values[o])).collect();
            *seen.entry(at).or_insert_with(|| Key::of(&c.values[j])) == Key::of(&c.values[j])
        })
    }

    /// `skip` and, besides, the amounts that are a product of two or more others (their logs
    /// a sum, up to a constant and a scale): cluster totals declared beside nodes and per-node
    /// amounts. The products' encoding forms them again from their factors (the same column),
    /// and the initial design spreads over the catalogue's own axes, not over their products;
    /// so a catalogue that lists its totals gets the inputs of one that does not. Checked from
    /// the last declared to the first, against those not left out. A total goes only if the
    /// products of what stays form it again: when they do not (its factors went too, or the
    /// products are only pairs and it is a product of three), the first declared of those
    /// lost stays and the rest are checked again, until every total left out is formed again.
    fn total_dimensions(
        &self,
        skip: Vec<Option<LeftOut>>,
        ln: &[Option<Vec<f64>>],
    ) -> Vec<Option<LeftOut>> {
        let d = self.dimensions.len();
        let mut kept = vec![false; d];
        loop {
            let dropped = self.totals_once(skip.clone(), &kept, ln);
            let amounts: Vec<usize> = (0..d)
                .filter(|&o| dropped[o].is_none() && ln[o].is_some())
                .collect();
            let basis: Vec<Vec<f64>> = product_basis(&amounts, ln)
                .into_iter()
                .filter_map(|o| ln[o].clone())
                .collect();
            let products: Vec<Vec<f64>> = product_subsets(basis.len())
                .into_iter()
                .filter_map(|mask| min_max(&log_product(&basis, mask)))
                .collect();
            let formed = |j: usize| {
                let col = ln[j].as_deref().and_then(min_max);
                col.is_some_and(|col| products.iter().any(|p| same_column(p, &col)))
            };
            let lost = (0..d).find(|&j| {
                matches!(dropped[j], Some(LeftOut::ProductOf(_))) && skip[j].is_none() && !formed(j)
            });
            match lost {
                Some(j) => kept[j] = true,
                None => return dropped,
            }
        }
    }

    /// One pass of [`Space::total_dimensions`], leaving `kept` in.
    fn totals_once(
        &self,
        mut skip: Vec<Option<LeftOut>>,
        kept: &[bool],
        ln: &[Option<Vec<f64>>],
    ) -> Vec<Option<LeftOut>> {
        let d = self.dimensions.len();
        for j in (0..d).rev().filter(|&j| !kept[j]) {
            let Some(col) = skip[j].is_none().then_some(ln[j].as_ref()).flatten() else {
                continue;
            };
            let Some(col) = min_max(col) else {
                continue;
            };
            let others: Vec<usize> = (0..d)
                .filter(|&o| o != j && skip[o].is_none() && ln[o].is_some())
                .take(8)
                .collect();
            let logs: Vec<Vec<f64>> = others.iter().filter_map(|&o| ln[o].clone()).collect();
            let factors = product_subsets(others.len()).into_iter().find(|&mask| {
                min_max(&log_product(&logs, mask)).is_some_and(|sum| same_column(&sum, &col))
            });
            if let Some(mask) = factors {
                skip[j] = Some(LeftOut::ProductOf(in_mask(&others, mask)));
            }
        }
        skip
    }

    /// The logs of dimension `j`'s values if it is an amount: a number, positive, with three
    /// or more distinct values.
    fn ln_amount(&self, j: usize) -> Option<Vec<f64>> {
        if matches!(self.dimensions[j].kind, Kind::Categorical { .. }) {
            return None;
        }
        let raw: Vec<f64> = self.configs.iter().map(|c| c.values[j].num()).collect();
        (raw.iter().all(|x| *x > 0.0) && distinct(&raw) >= 3)
            .then(|| raw.iter().map(|x| x.ln()).collect())
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

/// How configurations are turned into the surrogate's inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Features {
    /// As the catalogue declares it: numeric dimensions min-max scaled (after a log where
    /// declared), constant ones at 0.5, categorical ones one-hot over their declared levels.
    Space,
    /// Numeric dimensions on a log scale when declared so or when their positive values span a
    /// ratio of 4 or more; constant dimensions, copies, unused levels, dimensions that only
    /// relabel others (`vm_type`, or a price per node-hour, beside `vcpus` and `memory_gib`)
    /// and amounts that are products of others which [`Features::Products`] forms again
    /// (`total_vcpus` beside `nodes` and `vcpus`) dropped. [`Space::inputs`] says which.
    LogAuto,
    /// [`Features::LogAuto`] plus the products of the amounts (numeric dimensions with only
    /// positive values and at least three of them): nodes x vCPUs per node is the cluster's
    /// cores, nodes x vCPUs x memory per vCPU its memory. A job whose data fits in the cluster's
    /// memory runs in another regime, and that cliff, diagonal across the per-node axes, is a
    /// one-dimensional step along a product, which a length-scale per input cannot follow.
    /// A declared total (nodes x vCPUs per node beside both) is formed again as one of the
    /// products, and products are taken over a basis of the amounts' logs, so nothing is
    /// multiplied twice. (Of more than eight such amounts, the first eight.)
    Products,
}

/// Why the model's inputs leave a dimension out (indices are dimensions of the same space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftOut {
    /// One value (a category: one level used) over the whole catalogue.
    Constant,
    /// Scaled, the same column as this dimension's.
    CopyOf(usize),
    /// A category whose levels these dimensions tell apart, each taking one value per level.
    Relabels(Vec<usize>),
    /// A price that the other dimensions determine; the model knows the price already.
    Price,
    /// The product of these amounts, which the products' encoding forms again (or, without
    /// products, which a catalogue that does not declare it would not have).
    ProductOf(Vec<usize>),
}

/// What a catalogue's inputs to the model are made of, as [`Space::inputs`] tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// The space's dimension names, which the indices below refer to.
    pub names: Vec<String>,
    /// Per dimension, how many one-hot columns it has (0 for a number or one left out).
    pub one_hot: Vec<usize>,
    /// Dimensions that are inputs, in declared order.
    pub kept: Vec<usize>,
    /// The products that are inputs, each as its factors.
    pub products: Vec<Vec<usize>>,
    /// Dimensions left out, and why.
    pub left_out: Vec<(usize, LeftOut)>,
}

impl std::fmt::Display for Inputs {
    /// One line: `nodes, vcpus, memory_gib; products: nodes x vcpus, ...; left out: vm_type
    /// (relabels vcpus, memory_gib), ...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |js: &[usize], sep: &str| {
            js.iter()
                .map(|&j| self.names[j].as_str())
                .collect::<Vec<_>>()
                .join(sep)
        };
        let kept: Vec<String> = self
            .kept
            .iter()
            .map(|&j| match self.one_hot[j] {
                0 => self.names[j].clone(),
                k => format!("{} (one-hot, {k} levels)", self.names[j]),
            })
            .collect();
        if kept.is_empty() {
            write!(f, "none (nothing varies)")?;
        } else {
            write!(f, "{}", kept.join(", "))?;
        }
        if !self.products.is_empty() {
            let products: Vec<String> = self.products.iter().map(|p| names(p, " x ")).collect();
            write!(f, "; products: {}", products.join(", "))?;
        }
        if !self.left_out.is_empty() {
            let left: Vec<String> = self
                .left_out
                .iter()
                .map(|(j, why)| {
                    let why = match why {
                        LeftOut::Constant => "constant".to_string(),
                        LeftOut::CopyOf(o) => format!("the same column as {}", self.names[*o]),
                        LeftOut::Relabels(by) => format!("relabels {}", names(by, ", ")),
                        LeftOut::Price => "a price the other columns determine".to_string(),
                        LeftOut::ProductOf(by) => names(by, " x "),
                    };
                    format!("{} ({why})", self.names[*j])
                })
                .collect();
            write!(f, "; left out: {}", left.join(", "))?;
        }
        Ok(())
    }
}

/// What [`push_scaled`] did with a column.
enum Pushed {
    Column,
    /// Left out: constant.
    Constant,
    /// Left out: the same as the column at this index.
    CopyOf(usize),
}

/// Appends `t` min-max scaled to [0, 1] as one column; a constant column is 0.5 when
/// `keep_constant`, else left out (and so is a copy of a column already there).
fn push_scaled(out: &mut [Vec<f64>], t: &[f64], keep_constant: bool) -> Pushed {
    if let Some(col) = min_max(t) {
        let width = out.first().map_or(0, Vec::len);
        let copy_of = (0..width).find(|&c| {
            !keep_constant
                && out
                    .iter()
                    .zip(&col)
                    .all(|(row, v)| (row[c] - v).abs() < 1e-12)
        });
        if let Some(c) = copy_of {
            return Pushed::CopyOf(c);
        }
        for (row, v) in out.iter_mut().zip(col) {
            row.push(v);
        }
        Pushed::Column
    } else if keep_constant {
        for row in out.iter_mut() {
            row.push(0.5);
        }
        Pushed::Column
    } else {
        Pushed::Constant
    }
}

/// `t` min-max scaled to [0, 1]; `None` when it is constant.
fn min_max(t: &[f64]) -> Option<Vec<f64>> {
    let lo = t.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    // (Values are finite: `Space::new` checks them.)
    if hi <= lo {
        return None;
    }
    if (hi - lo).is_finite() {
        Some(t.iter().map(|v| (v - lo) / (hi - lo)).collect())
    } else {
        // A span past the largest double (-1e308 to 1e308): halved first, else every column
        // value is 0 or NaN and the model has nothing to fit.
        let (lo, hi) = (lo / 2.0, hi / 2.0);
        Some(t.iter().map(|v| (v / 2.0 - lo) / (hi - lo)).collect())
    }
}

/// Of the amounts `amounts` (dimension indices; `ln` their logs by dimension), those whose
/// products the products' encoding forms: a basis of their logs' span, chosen in order, of at
/// most eight.
fn product_basis(amounts: &[usize], ln: &[Option<Vec<f64>>]) -> Vec<usize> {
    let logs: Vec<Vec<f64>> = amounts.iter().filter_map(|&j| ln[j].clone()).collect();
    let mut basis: Vec<usize> = log_independent(&logs)
        .into_iter()
        .map(|k| amounts[k])
        .collect();
    basis.truncate(8);
    basis
}

/// Whether two scaled columns are the same.
fn same_column(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
}

/// The subsets of `k` amounts (bit masks) whose products the products' encoding forms: every
/// subset of two or more when there are few, else the pairs and the product of all (which for
/// nodes, vCPUs and memory per vCPU is total memory).
fn product_subsets(k: usize) -> Vec<u32> {
    if k <= 4 {
        (1u32..(1 << k)).filter(|m| m.count_ones() >= 2).collect()
    } else {
        let mut v: Vec<u32> = (0..k)
            .flat_map(|a| ((a + 1)..k).map(move |b| (1u32 << a) | (1u32 << b)))
            .collect();
        v.push((1u32 << k) - 1);
        v
    }
}

/// The entries of `items` that `mask` picks.
fn in_mask(items: &[usize], mask: u32) -> Vec<usize> {
    items
        .iter()
        .enumerate()
        .filter(|(b, _)| mask & (1 << b) != 0)
        .map(|(_, &j)| j)
        .collect()
}

/// The log of the product of the amounts in `mask`, from their logs.
fn log_product(ln_amounts: &[Vec<f64>], mask: u32) -> Vec<f64> {
    let n = ln_amounts.first().map_or(0, Vec::len);
    (0..n)
        .map(|i| {
            ln_amounts
                .iter()
                .enumerate()
                .filter(|(b, _)| mask & (1 << b) != 0)
                .map(|(_, c)| c[i])
                .sum()
        })
        .collect()
}

/// Whether positive values span a ratio of 4 or more: the rule that puts a dimension on a log
/// scale, for [`Space::auto_log`] and [`Features::LogAuto`] alike.
fn spans_a_log_scale(xs: &[f64]) -> bool {
    let min = xs.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    min > 0.0 && max / min >= 4.0
}

/// The indices of the columns (logs of amounts) that are not, up to a constant, a linear
/// combination of earlier ones: a basis of their span chosen in order, by Gram-Schmidt on the
/// centred columns.
fn log_independent(columns: &[Vec<f64>]) -> Vec<usize> {
    let centred = |c: &[f64]| {
        let mean = c.iter().sum::<f64>() / c.len().max(1) as f64;
        c.iter().map(|v| v - mean).collect::<Vec<f64>>()
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let mut kept = Vec::new();
    for (k, column) in columns.iter().enumerate() {
        let mut r = centred(column);
        let norm = dot(&r, &r).sqrt();
        for q in &basis {
            let along = dot(&r, q);
            for (x, y) in r.iter_mut().zip(q) {
                *x -= along * y;
            }
        }
        let rest = dot(&r, &r).sqrt();
        if rest > 1e-9 * norm {
            basis.push(r.iter().map(|x| x / rest).collect());
            kept.push(k);
        }
    }
    kept
}

/// A value as a hash key: equal keys for equal values (a dimension's numbers are finite).
#[derive(PartialEq, Eq, Hash)]
enum Key<'a> {
    Num(u64),
    Cat(&'a str),
}

impl<'a> Key<'a> {
    fn of(v: &'a Value) -> Self {
        match v {
            // + 0.0 makes -0.0 the same key as 0.0.
            Value::Num(x) => Key::Num((x + 0.0).to_bits()),
            Value::Cat(s) => Key::Cat(s),
        }
    }
}

fn distinct_values<'a>(values: impl Iterator<Item = &'a Value>) -> usize {
    values.map(Key::of).collect::<HashSet<_>>().len()
}

fn distinct(xs: &[f64]) -> usize {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A number on a linear scale named `name`.
    fn number(name: &str) -> Dimension {
        Dimension {
            name: name.into(),
            kind: Kind::Numeric { log: false },
        }
    }

    /// A category named `name` with these levels.
    fn category(name: &str, levels: &[&str]) -> Dimension {
        Dimension {
            name: name.into(),
            kind: Kind::Categorical {
                levels: levels.iter().map(|l| l.to_string()).collect(),
            },
        }
    }

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
    fn product_features_add_cluster_totals_for_any_loader() {
        // Scout-like shape: nodes x vCPUs per node x memory per vCPU, all amounts.
        let dims: Vec<Dimension> = ["nodes", "vcpus", "ram_per_vcpu"]
            .iter()
            .map(|n| Dimension {
                name: n.to_string(),
                kind: Kind::Numeric { log: false },
            })
            .collect();
        let mut configs = vec![];
        for nodes in [4.0, 8.0, 16.0] {
            for vcpus in [2.0, 4.0, 8.0] {
                for ram in [1.875, 4.0, 7.625] {
                    configs.push(Config {
                        name: format!("{nodes}-{vcpus}-{ram}"),
                        values: vec![Value::Num(nodes), Value::Num(vcpus), Value::Num(ram)],
                        price_per_hour: nodes * vcpus * 0.05,
                    });
                }
            }
        }
        let s = Space::new(dims, configs).unwrap();
        let plain = s.features(Features::LogAuto);
        let prod = s.features(Features::Products);
        assert_eq!(plain[0].len(), 3);
        // nodes*vcpus, nodes*ram, vcpus*ram and nodes*vcpus*ram.
        assert_eq!(prod[0].len(), 7);
        let total_ram = |c: &Config| c.values.iter().map(|v| v.num()).product::<f64>();
        let (lo, hi) = (4.0 * 2.0 * 1.875f64, 16.0 * 8.0 * 7.625f64);
        for (i, c) in s.configs().iter().enumerate() {
            let want = (total_ram(c).ln() - lo.ln()) / (hi.ln() - lo.ln());
            assert!(
                (prod[i][6] - want).abs() < 1e-12,
                "{}: {}",
                c.name,
                prod[i][6]
            );
            assert!(prod[i].iter().all(|v| (0.0..=1.0).contains(v)));
        }
        // Declared encoding is untouched by the choice.
        assert_eq!(s.features(Features::Space)[5], s.encoded(5));
    }

    /// A Scout-like catalogue (3 families x 3 sizes x 3 cluster sizes) with the columns named.
    fn spelled(columns: &[&str]) -> Space {
        // Scout's AWS prices: c4.large and m4.large cost the same.
        let types = [
            ("c4.large", "c4", "large", 2.0, 3.75, 0.1),
            ("c4.xlarge", "c4", "xlarge", 4.0, 7.5, 0.199),
            ("c4.2xlarge", "c4", "2xlarge", 8.0, 15.0, 0.398),
            ("m4.large", "m4", "large", 2.0, 8.0, 0.1),
            ("m4.xlarge", "m4", "xlarge", 4.0, 16.0, 0.2),
            ("m4.2xlarge", "m4", "2xlarge", 8.0, 32.0, 0.4),
            ("r4.large", "r4", "large", 2.0, 15.25, 0.133),
            ("r4.xlarge", "r4", "xlarge", 4.0, 30.5, 0.266),
            ("r4.2xlarge", "r4", "2xlarge", 8.0, 61.0, 0.532),
        ];
        let mut configs = vec![];
        // A later price list in which no two types cost the same, when a column asks for it.
        let later = columns.contains(&"later_price_per_node_hour");
        for (k, (vm, family, size, vcpus, mem, price)) in types.into_iter().enumerate() {
            let price = if later && vm == "m4.large" {
                0.105
            } else {
                price
            };
            for nodes in [4.0, 8.0, 16.0] {
                let value = |c: &str| match c {
                    "vm_type" => Value::Cat(vm.into()),
                    "family" => Value::Cat(family.into()),
                    "size" => Value::Cat(size.into()),
                    "nodes" => Value::Num(nodes),
                    "vcpus" => Value::Num(vcpus),
                    "memory_gib" => Value::Num(mem),
                    "total_vcpus" => Value::Num(nodes * vcpus),
                    "total_memory_gib" => Value::Num(nodes * mem),
                    "memory_per_vcpu" => Value::Num(mem / vcpus),
                    "price_per_node_hour" | "later_price_per_node_hour" => Value::Num(price),
                    // Two more amounts of a node, unrelated to its shape.
                    "disk_gb" => Value::Num([50.0, 400.0, 100.0][k % 3] * (1 + k / 3) as f64),
                    "network_gbps" => Value::Num([1.0, 10.0, 5.0][k / 3]),
                    // The same everywhere.
                    "region" => Value::Cat("us-east-1".into()),
                    other => panic!("no column {other}"),
                };
                configs.push(Config {
                    name: format!("{nodes}_{vm}"),
                    values: columns.iter().map(|c| value(c)).collect(),
                    price_per_hour: nodes * price,
                });
            }
        }
        let mut dims: Vec<Dimension> = columns
            .iter()
            .enumerate()
            .map(|(j, c)| Dimension {
                name: c.to_string(),
                kind: match &configs[0].values[j] {
                    Value::Num(_) => Kind::Numeric { log: false },
                    Value::Cat(_) => {
                        let mut levels: Vec<String> =
                            configs.iter().map(|k| k.values[j].to_string()).collect();
                        levels.dedup();
                        levels.sort();
                        levels.dedup();
                        Kind::Categorical { levels }
                    }
                },
            })
            .collect();
        Space::auto_log(&mut dims, &configs);
        Space::new(dims, configs).unwrap()
    }

    /// The columns of a feature matrix, each as its values over the configurations, sorted.
    fn columns(x: &[Vec<f64>]) -> Vec<Vec<u64>> {
        let mut cols: Vec<Vec<u64>> = (0..x[0].len())
            .map(|c| x.iter().map(|r| (r[c] * 1e9).round() as u64).collect())
            .collect();
        cols.sort();
        cols
    }

    #[test]
    fn the_inputs_do_not_depend_on_how_a_catalogue_is_spelled() {
        let plain = spelled(&["nodes", "vcpus", "memory_gib"]);
        // The same catalogue with the type's name and size beside its shape (they relabel it)
        // and the cluster totals (products the model forms itself): the same inputs.
        let verbose = spelled(&[
            "vm_type",
            "size",
            "nodes",
            "vcpus",
            "memory_gib",
            "total_vcpus",
            "total_memory_gib",
        ]);
        // Totals first: the same.
        let totals_first = spelled(&["total_memory_gib", "nodes", "vcpus", "memory_gib"]);
        for how in [Features::LogAuto, Features::Products] {
            let p = plain.features(how);
            assert!(p.iter().flatten().all(|x| (0.0..=1.0).contains(x)));
            assert_eq!(p, verbose.features(how), "{how:?}");
            assert_eq!(p, totals_first.features(how), "{how:?}");
        }
        // nodes, vcpus, memory, four products.
        assert_eq!(plain.features(Features::Products)[0].len(), 7);
        assert_eq!(plain.features(Features::LogAuto)[0].len(), 3);
        // A price per node-hour is the cluster's price over its nodes, and vcpus and memory
        // determine it: a generic CSV that carries it to be priced gets the inputs of one
        // without it, wherever it is declared.
        for priced in [
            spelled(&["nodes", "price_per_node_hour", "vcpus", "memory_gib"]),
            spelled(&["price_per_node_hour", "nodes", "vcpus", "memory_gib"]),
            spelled(&["nodes", "vcpus", "memory_gib", "price_per_node_hour"]),
        ] {
            for how in [Features::LogAuto, Features::Products] {
                assert_eq!(
                    columns(&plain.features(how)),
                    columns(&priced.features(how))
                );
            }
        }
        // A number that relabels others but is no price stays: memory is told apart by family
        // and vCPUs. The type's name goes (it relabels family, vCPUs and memory): 3 one-hot
        // family columns, then nodes, vcpus, memory.
        let named = spelled(&["vm_type", "family", "nodes", "vcpus", "memory_gib"]);
        assert_eq!(named.features(Features::LogAuto)[0].len(), 3 + 3);
        // A price the other columns do not determine stays: two-vCPU types differ in it.
        let price_tells = spelled(&["nodes", "vcpus", "price_per_node_hour"]);
        assert_eq!(price_tells.features(Features::LogAuto)[0].len(), 3);
        // Memory per node beside vCPUs and memory per vCPU is their product: formed again.
        let per_vcpu = spelled(&["nodes", "vcpus", "memory_per_vcpu"]);
        let both = spelled(&["nodes", "vcpus", "memory_gib", "memory_per_vcpu"]);
        for how in [Features::LogAuto, Features::Products] {
            assert_eq!(per_vcpu.features(how), both.features(how), "{how:?}");
        }
        // With a total and a ratio declared besides, memory per node and total vCPUs are both
        // products of the rest (vCPUs x memory per vCPU, nodes x vCPUs): 7 columns.
        let ratio = spelled(&[
            "nodes",
            "memory_gib",
            "vcpus",
            "total_vcpus",
            "memory_per_vcpu",
        ]);
        assert_eq!(ratio.features(Features::Products)[0].len(), 7);
        // The declared encoding keeps every column as declared: 9 + 3 one-hot, 5 numeric.
        assert_eq!(verbose.encoded_dim(), 17);
        // A price that tells every two types apart does not make the type's name look like a
        // relabelling of it and stay in its place: the name stays, the price goes, wherever
        // either is declared.
        let named = spelled(&["vm_type", "nodes"]);
        for priced in [
            spelled(&["vm_type", "nodes", "later_price_per_node_hour"]),
            spelled(&["later_price_per_node_hour", "nodes", "vm_type"]),
        ] {
            for how in [Features::LogAuto, Features::Products] {
                assert_eq!(
                    columns(&named.features(how)),
                    columns(&priced.features(how))
                );
            }
        }
    }

    /// A catalogue of machine types `(name, vcpus, memory_gib, price per node-hour)` x `nodes`
    /// with the columns named (`cluster_price` is the price per hour).
    fn shaped(types: &[(&str, f64, f64, f64)], nodes: &[f64], columns: &[&str]) -> Space {
        let mut configs = vec![];
        for &(vm, vcpus, mem, price) in types {
            for &n in nodes {
                let value = |c: &str| match c {
                    "vm_type" => Value::Cat(vm.into()),
                    "nodes" => Value::Num(n),
                    "vcpus" => Value::Num(vcpus),
                    "memory_gib" => Value::Num(mem),
                    "price_per_node_hour" => Value::Num(price),
                    "cluster_price" => Value::Num(n * price),
                    other => panic!("no column {other}"),
                };
                configs.push(Config {
                    name: format!("{n}_{vm}"),
                    values: columns.iter().map(|c| value(c)).collect(),
                    price_per_hour: n * price,
                });
            }
        }
        let dims: Vec<Dimension> = columns
            .iter()
            .map(|c| Dimension {
                name: c.to_string(),
                kind: if *c == "vm_type" {
                    Kind::Categorical {
                        levels: types.iter().map(|t| t.0.to_string()).collect(),
                    }
                } else {
                    Kind::Numeric { log: false }
                },
            })
            .collect();
        Space::new(dims, configs).unwrap()
    }

    #[test]
    fn only_a_column_that_says_it_is_a_price_is_read_as_one() {
        let nodes = [2.0, 4.0, 8.0, 16.0];
        let three = [
            ("a", 2.0, 4.0, 0.085),
            ("b", 4.0, 16.0, 0.192),
            ("c", 8.0, 32.0, 0.504),
        ];
        let inputs = |types: &[(&str, f64, f64, f64)], columns: &[&str]| {
            shaped(types, &nodes, columns)
                .inputs(Features::Products)
                .to_string()
        };
        // With three types, the logs of any two per-node amounts and the price span every
        // function of the type: memory (or vCPUs) is no price for that, whatever the order.
        let plain = "nodes, vcpus, memory_gib; products: nodes x vcpus, nodes x memory_gib, \
                     vcpus x memory_gib, nodes x vcpus x memory_gib";
        assert_eq!(inputs(&three, &["nodes", "vcpus", "memory_gib"]), plain);
        assert!(inputs(&three, &["nodes", "memory_gib", "vcpus"])
            .starts_with("nodes, memory_gib, vcpus; products: nodes x memory_gib, nodes x vcpus"));
        // ... and the price per node-hour is one, as is the cluster's price beside it.
        assert_eq!(
            inputs(
                &three,
                &["nodes", "vcpus", "memory_gib", "price_per_node_hour"]
            ),
            format!("{plain}; left out: price_per_node_hour (a price the other columns determine)")
        );
        assert!(inputs(
            &three,
            &[
                "nodes",
                "price_per_node_hour",
                "cluster_price",
                "vcpus",
                "memory_gib"
            ]
        )
        .ends_with(
            "left out: price_per_node_hour (a price the other columns determine), \
             cluster_price (a price the other columns determine)"
        ));
        // One family priced per vCPU: vCPUs stay an amount beside the type's name, which
        // they relabel.
        let family = [
            ("s", 2.0, 8.0, 0.1),
            ("m", 4.0, 16.0, 0.2),
            ("l", 8.0, 32.0, 0.4),
        ];
        assert_eq!(
            inputs(&family, &["vm_type", "nodes", "vcpus"]),
            "nodes, vcpus; products: nodes x vcpus; left out: vm_type (relabels vcpus)"
        );
        // A price worked out from rounded costs and runtimes is still the price beside it:
        // within 0.4% here, one config in two off each way.
        let exact = shaped(
            &three,
            &nodes,
            &["nodes", "vcpus", "memory_gib", "price_per_node_hour"],
        );
        let mut configs = exact.configs.clone();
        for (i, c) in configs.iter_mut().enumerate() {
            c.price_per_hour *= if i % 2 == 0 { 1.004 } else { 0.996 };
        }
        let rounded = Space::new(exact.dimensions.clone(), configs.clone()).unwrap();
        assert_eq!(
            rounded.inputs(Features::Products).to_string(),
            format!("{plain}; left out: price_per_node_hour (a price the other columns determine)")
        );
        // A percent or more off, it is a column of its own.
        for (i, c) in configs.iter_mut().enumerate() {
            c.price_per_hour *= if i % 2 == 0 { 1.01 } else { 0.99 };
        }
        let apart = Space::new(exact.dimensions.clone(), configs).unwrap();
        assert!(!apart
            .inputs(Features::Products)
            .to_string()
            .contains("left out: price_per_node_hour"));
        // A price of two values still goes before the type's name, which then stays.
        let two = [("x", 2.0, 8.0, 0.1), ("y", 4.0, 8.0, 0.2)];
        assert_eq!(
            inputs(&two, &["vm_type", "nodes", "price_per_node_hour"]),
            "vm_type (one-hot, 2 levels), nodes; left out: price_per_node_hour (a price the \
             other columns determine)"
        );
    }

    #[test]
    fn a_declared_total_is_left_out_only_where_the_products_form_it_again() {
        let ln = |s: &Space, name: &str| {
            let j = s.dimension_index(name).unwrap();
            min_max(&s.ln_amount(j).unwrap()).unwrap()
        };
        let has = |s: &Space, col: &[f64]| {
            let x = s.features(Features::Products);
            (0..x[0].len()).any(|c| same_column(&x.iter().map(|r| r[c]).collect::<Vec<_>>(), col))
        };
        // Five amounts besides it, so the products are the pairs and the product of all:
        // total memory (nodes x vCPUs x memory per vCPU) is none of them, and memory per node,
        // a product of two, goes. The total stays an input of its own.
        let s = spelled(&[
            "nodes",
            "vcpus",
            "memory_per_vcpu",
            "memory_gib",
            "disk_gb",
            "network_gbps",
            "total_memory_gib",
        ]);
        let inputs = s.inputs(Features::Products);
        assert_eq!(inputs.left_out, [(3, LeftOut::ProductOf(vec![1, 2]))]);
        assert_eq!(inputs.kept, [0, 1, 2, 4, 5, 6]);
        assert!(has(&s, &ln(&s, "total_memory_gib")));
        assert!(has(&s, &ln(&s, "memory_gib")));
        // With fewer amounts every subset is formed and the total goes.
        let s = spelled(&["nodes", "vcpus", "memory_gib", "total_memory_gib"]);
        let inputs = s.inputs(Features::Products);
        assert_eq!(inputs.left_out, [(3, LeftOut::ProductOf(vec![0, 2]))]);
        assert!(has(&s, &ln(&s, "total_memory_gib")));
    }

    #[test]
    fn a_reason_for_leaving_a_column_out_names_columns_that_stay() {
        let why = |s: &Space, name: &str| {
            let j = s.dimension_index(name).unwrap();
            let inputs = s.inputs(Features::Products);
            let (_, why) = inputs
                .left_out
                .iter()
                .find(|(o, _)| *o == j)
                .unwrap()
                .clone();
            let by = match &why {
                LeftOut::Relabels(by) | LeftOut::ProductOf(by) => by.clone(),
                _ => vec![],
            };
            for o in by {
                assert!(
                    inputs.kept.contains(&o),
                    "{name}: {why:?} names a column left out"
                );
            }
            why
        };
        // A constant takes one value per machine type too, but tells none apart.
        let s = spelled(&["vm_type", "region", "vcpus", "memory_gib", "nodes"]);
        assert_eq!(why(&s, "vm_type"), LeftOut::Relabels(vec![2, 3]));
        // Memory per node goes as vCPUs x memory per vCPU, which tell the types apart alone.
        let s = spelled(&["vm_type", "vcpus", "memory_per_vcpu", "memory_gib", "nodes"]);
        assert_eq!(why(&s, "memory_gib"), LeftOut::ProductOf(vec![1, 2]));
        assert_eq!(why(&s, "vm_type"), LeftOut::Relabels(vec![1, 2]));
        // Total memory is first found as total vCPUs x memory per vCPU; total vCPUs goes too,
        // so the reason is told in its factors.
        let s = spelled(&[
            "total_vcpus",
            "memory_per_vcpu",
            "nodes",
            "vcpus",
            "total_memory_gib",
        ]);
        assert_eq!(why(&s, "total_vcpus"), LeftOut::ProductOf(vec![2, 3]));
        assert_eq!(
            why(&s, "total_memory_gib"),
            LeftOut::ProductOf(vec![1, 2, 3])
        );
        assert_eq!(
            s.inputs(Features::Products).to_string(),
            "memory_per_vcpu, nodes, vcpus; products: memory_per_vcpu x nodes, \
             memory_per_vcpu x vcpus, nodes x vcpus, memory_per_vcpu x nodes x vcpus; left out: \
             total_vcpus (nodes x vcpus), total_memory_gib (memory_per_vcpu x nodes x vcpus)"
        );
    }

    #[test]
    fn the_inputs_say_what_they_are_made_of_and_what_they_leave_out() {
        let s = spelled(&[
            "vm_type",
            "size",
            "nodes",
            "vcpus",
            "memory_gib",
            "total_vcpus",
            "price_per_node_hour",
        ]);
        assert_eq!(
            s.inputs(Features::Products).to_string(),
            "nodes, vcpus, memory_gib; products: nodes x vcpus, nodes x memory_gib, \
             vcpus x memory_gib, nodes x vcpus x memory_gib; left out: vm_type (relabels vcpus, \
             memory_gib), size (relabels vcpus), total_vcpus (nodes x vcpus), \
             price_per_node_hour (a price the other columns determine)"
        );
        // The same without products; as declared, everything is an input.
        assert!(s
            .inputs(Features::LogAuto)
            .to_string()
            .starts_with("nodes, vcpus, memory_gib; left out: vm_type"));
        assert_eq!(
            s.inputs(Features::Space).to_string(),
            "vm_type (one-hot, 9 levels), size (one-hot, 3 levels), nodes, vcpus, memory_gib, \
             total_vcpus, price_per_node_hour"
        );
        // A number that does not vary and a copy of another column are left out too.
        let dims = vec![
            number("a"),
            number("twice_a"),
            category("zone", &["x", "y"]),
        ];
        let configs: Vec<Config> = (1..=3)
            .map(|t| Config {
                name: format!("{t}"),
                values: vec![
                    Value::Num(t as f64),
                    Value::Num(2.0 * t as f64),
                    Value::Cat("x".into()),
                ],
                price_per_hour: 1.0,
            })
            .collect();
        let s = Space::new(dims, configs).unwrap();
        assert_eq!(
            s.inputs(Features::Products).to_string(),
            "a; left out: twice_a (the same column as a), zone (constant)"
        );
    }

    #[test]
    fn a_grouping_that_is_not_a_relabelling_stays() {
        // `family` is a function of vcpus and memory but groups several shapes: it stays.
        let with_family = spelled(&["family", "nodes", "vcpus", "memory_gib"]);
        assert_eq!(with_family.features(Features::LogAuto)[0].len(), 3 + 3);
        // Family and size together name a type: `vm_type` relabels the pair and goes; each of
        // them groups several types and stays.
        let both = spelled(&["family", "size", "vm_type"]);
        let x = both.features(Features::LogAuto);
        assert_eq!(
            x[0].len(),
            3 + 3,
            "family and size one-hot, vm_type relabels them"
        );
        let only_type = spelled(&["vm_type", "nodes"]);
        assert_eq!(only_type.features(Features::LogAuto)[0].len(), 9 + 1);
        // A category told apart only by a column that differs for every configuration is not
        // a relabelling of it: `threads` takes several values per level of `codec`.
        let dims = vec![number("threads"), category("codec", &["a", "b"])];
        let configs: Vec<Config> = (1..=6)
            .map(|t| Config {
                name: format!("{t}"),
                values: vec![
                    Value::Num(t as f64),
                    Value::Cat(if t % 2 == 0 { "a" } else { "b" }.into()),
                ],
                price_per_hour: 1.0,
            })
            .collect();
        let s = Space::new(dims, configs).unwrap();
        assert_eq!(s.features(Features::Products)[0].len(), 1 + 2);
    }

    #[test]
    fn log_independence_keeps_a_basis_in_order() {
        let a = vec![0.0, 1.0, 2.0, 3.0];
        let b = vec![0.0, 1.0, 0.0, 1.0];
        let sum: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let ratio: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - 2.0 * y + 5.0).collect();
        let c = vec![1.0, 0.0, 0.0, 2.0];
        assert_eq!(log_independent(&[a, b, sum, ratio, c]), [0, 1, 4]);
    }

    #[test]
    fn a_deserialised_space_is_checked_like_a_built_one() {
        let good = Space::new(dims(), vec![cfg("a", 4.0, "c4"), cfg("b", 8.0, "m4")]).unwrap();
        let json = serde_json::to_string(&good).unwrap();
        let back: Space = serde_json::from_str(&json).unwrap();
        assert_eq!(back.encoded(1), good.encoded(1));
        assert!(json.contains("[8.0,\"m4\"]"), "{json}");
        let bad = json.replace("[8.0,\"m4\"]", "[8.0,\"x9\"]");
        let err = serde_json::from_str::<Space>(&bad).unwrap_err().to_string();
        assert!(err.contains("x9"), "{err}");
        let empty = r#"{"dimensions":[],"configs":[]}"#;
        assert!(serde_json::from_str::<Space>(empty).is_err());
    }

    /// Values spanning more than the largest double still encode into [0, 1] (the span
    /// overflowed to inf, and every encoded value was 0 or NaN).
    #[test]
    fn a_span_past_the_largest_double_still_encodes() {
        let d = vec![Dimension {
            name: "x".into(),
            kind: Kind::Numeric { log: false },
        }];
        let configs = [-1e308, 0.0, 1e308]
            .iter()
            .enumerate()
            .map(|(i, &x)| Config {
                name: format!("c{i}"),
                values: vec![Value::Num(x)],
                price_per_hour: 1.0,
            })
            .collect();
        let space = Space::new(d, configs).unwrap();
        let col: Vec<f64> = (0..3).map(|i| space.encoded(i)[0]).collect();
        assert_eq!(col, [0.0, 0.5, 1.0]);
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
        // One level past the cap is refused before anything is encoded; the cap itself is fine.
        for (levels, ok) in [(MAX_LEVELS, true), (MAX_LEVELS + 1, false)] {
            let mut d = dims();
            d[1].kind = Kind::Categorical {
                levels: (0..levels).map(|i| format!("t{i}")).collect(),
            };
            let configs = (0..levels)
                .map(|i| cfg(&format!("c{i}"), 4.0, &format!("t{i}")))
                .collect();
            match Space::new(d, configs) {
                Ok(space) => assert!(ok && space.encoded_dim() >= MAX_LEVELS),
                Err(err) => {
                    assert!(!ok);
                    assert_eq!(
                        err.to_string(),
                        "dimension `family` has 1001 text values; at most 1000 can be told \
                         apart (each is an input of its own): make it a number, or split the \
                         catalogue"
                    );
                }
            }
        }
    }
}
