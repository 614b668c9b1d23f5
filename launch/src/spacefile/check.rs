//! Checking a space file: its prices, runtime limit, machines and dimensions, each error at the
//! line and column it comes from.

use std::ops::Range;
use std::path::{Path, PathBuf};

use optimizer::Value;

use super::read::{DimValue, Locator, RawFile};
use super::{LoadOptions, SpaceFileError, BUILTIN_NAMES};
use crate::prices::{MachinePrice, PriceTable};

/// A dimension as checked: its name, values and where it is in the file.
pub(super) struct Dim {
    pub name: String,
    pub values: Vec<Value>,
    pub span: Option<Range<usize>>,
}

/// The built-in price table, with the space file's and the command line's price files applied.
pub(super) fn prices(
    raw: &RawFile,
    base: &Path,
    options: &LoadOptions,
    loc: &Locator<'_>,
) -> Result<PriceTable, SpaceFileError> {
    let mut prices = PriceTable::builtin();
    if let Some(p) = &raw.prices {
        let p: PathBuf = if p.is_absolute() {
            p.clone()
        } else {
            base.join(p)
        };
        prices
            .apply_file(&p)
            .map_err(|e| loc.at(None, format!("prices: {e}")))?;
    }
    if let Some(p) = &options.prices {
        // A command-line option, not a line of the space file: named as such.
        prices.apply_file(p).map_err(|e| SpaceFileError {
            path: "--prices".into(),
            line: None,
            column: None,
            message: e.to_string(),
        })?;
    }
    Ok(prices)
}

pub(super) fn max_runtime(raw: &RawFile, loc: &Locator<'_>) -> Result<Option<f64>, SpaceFileError> {
    match &raw.max_runtime_s {
        Some(t) => crate::limits::seconds("max_runtime_s", *t.get_ref())
            .map(|_| Some(*t.get_ref()))
            .map_err(|e| loc.at(Some(t.span()), e.to_string())),
        None => Ok(None),
    }
}

/// Machines: named ones from the price table, then inline ones; at least one, none twice.
pub(super) fn machines(
    raw: &RawFile,
    prices: &PriceTable,
    loc: &Locator<'_>,
) -> Result<Vec<(String, MachinePrice)>, SpaceFileError> {
    let cat = &raw.catalogue;
    let mut machines: Vec<(String, MachinePrice)> = Vec::new();
    for m in &cat.machine_types {
        let name = m.get_ref();
        let Some(p) = prices.get(name) else {
            // Families, not all sizes: the full list would drown the message.
            let mut known: Vec<&str> = prices
                .machines
                .keys()
                .map(|k| k.rsplit_once('-').map_or(k.as_str(), |(f, _)| f))
                .collect();
            known.dedup();
            return Err(loc.at(
                Some(m.span()),
                format!(
                    "machine type `{name}` is not in the price table (families: {}-N); \
                     define it with [[catalogue.machine]] or a price file",
                    known.join(", ")
                ),
            ));
        };
        machines.push((name.clone(), p.clone()));
    }
    for m in &cat.machine {
        let span = Some(m.span());
        let m = m.get_ref();
        let problem = crate::prices::machine_problem(m.vcpus, m.memory_gib, m.price_per_hour);
        if let Some(problem) = problem {
            return Err(loc.at(span, format!("machine `{}`: {problem}", m.name)));
        }
        machines.push((
            m.name.clone(),
            MachinePrice {
                vcpus: m.vcpus,
                memory_gib: m.memory_gib,
                price_per_hour: m.price_per_hour,
                source: loc.shown.clone(),
                date: String::new(),
            },
        ));
    }
    if machines.is_empty() {
        return Err(loc.at(
            None,
            "[catalogue] needs at least one machine: machine_types = [...] or [[catalogue.machine]]"
                .into(),
        ));
    }
    for (i, (name, _)) in machines.iter().enumerate() {
        if machines[..i].iter().any(|(n, _)| n == name) {
            return Err(loc.at(None, format!("machine type `{name}` is listed twice")));
        }
    }
    Ok(machines)
}

/// The largest integer every f64 above it cannot tell from its neighbours: 2^53.
const MAX_EXACT_INT: u64 = 1 << 53;

/// Dimensions: each a non-empty list of distinct finite numbers or of texts, under a usable name.
pub(super) fn dimensions(raw: &RawFile, loc: &Locator<'_>) -> Result<Vec<Dim>, SpaceFileError> {
    let mut dims = Vec::new();
    for (name, values) in &raw.catalogue.dimensions.0 {
        let span = Some(values.span());
        let err = |message: String| loc.at(span.clone(), message);
        if BUILTIN_NAMES.contains(&name.as_str()) {
            return Err(err(format!(
                "dimension name `{name}` is reserved (built-in names: {BUILTIN_NAMES:?})"
            )));
        }
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(err(format!(
                "dimension name `{name}`: use letters, digits, `_` or `-`"
            )));
        }
        let vs = values.get_ref();
        if vs.is_empty() {
            return Err(err(format!("dimension `{name}` has no values")));
        }
        let numeric = vs.iter().all(|v| !matches!(v, DimValue::Text(_)));
        let text = vs.iter().all(|v| matches!(v, DimValue::Text(_)));
        if !numeric && !text {
            return Err(err(format!(
                "dimension `{name}` mixes numbers and text; use one kind"
            )));
        }
        // Values are kept as f64: an integer past 2^53 would silently become another one.
        if let Some(DimValue::Int(i)) = vs
            .iter()
            .find(|v| matches!(v, DimValue::Int(i) if i.unsigned_abs() > MAX_EXACT_INT))
        {
            return Err(err(format!(
                "dimension `{name}`: {i} cannot be kept exactly (integers up to 2^53 = \
                 {MAX_EXACT_INT})"
            )));
        }
        let converted: Vec<Value> = vs
            .iter()
            .map(|v| match v {
                DimValue::Int(i) => Value::Num(*i as f64),
                DimValue::Float(f) => Value::Num(*f),
                DimValue::Text(s) => Value::Cat(s.clone()),
            })
            .collect();
        // Each value once (hashed: a long list is refused by the catalogue's size after this,
        // and comparing every pair of it would take minutes first). 0 and -0 are one value.
        let mut seen = std::collections::HashSet::new();
        for v in &converted {
            if let Value::Num(x) = v {
                if !x.is_finite() {
                    return Err(err(format!("dimension `{name}`: {x} is not finite")));
                }
            }
            let key = match v {
                Value::Num(x) if *x == 0.0 => Ok(0u64),
                Value::Num(x) => Ok(x.to_bits()),
                Value::Cat(c) => Err(c.as_str()),
            };
            if !seen.insert(key) {
                let shown = match v {
                    Value::Num(x) => optimizer::Shown(*x).to_string(),
                    Value::Cat(c) => c.clone(),
                };
                return Err(err(format!("dimension `{name}` lists {shown} twice")));
            }
        }
        dims.push(Dim {
            name: name.clone(),
            values: converted,
            span,
        });
    }
    Ok(dims)
}

/// The dimension `count` names (positive numbers only), if any.
pub(super) fn count_index(
    raw: &RawFile,
    dims: &[Dim],
    loc: &Locator<'_>,
) -> Result<Option<usize>, SpaceFileError> {
    let Some(c) = &raw.catalogue.count else {
        return Ok(None);
    };
    let Some(i) = dims.iter().position(|d| d.name == *c.get_ref()) else {
        return Err(loc.at(
            Some(c.span()),
            format!(
                "count = `{}` names no dimension of [catalogue.dimensions]",
                c.get_ref()
            ),
        ));
    };
    // Machines and vCPUs come whole: `workers = 1.5` is no cluster (and no price).
    if dims[i]
        .values
        .iter()
        .any(|v| !matches!(v, Value::Num(x) if *x > 0.0 && x.fract() == 0.0))
    {
        return Err(loc.at(
            dims[i].span.clone(),
            format!(
                "dimension `{}` is the count: its values must be whole numbers > 0",
                c.get_ref()
            ),
        ));
    }
    Ok(Some(i))
}
