//! Reading a space file: the TOML as written (with the spans errors point at), and the error type
//! that names file, line and column.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::{CommandSpec, CountUnit, LocalSpec, Objective, SpaceFileError, WorkloadSpec};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub objective: Objective,
    #[serde(default)]
    pub max_runtime_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub prices: Option<PathBuf>,
    pub catalogue: RawCatalogue,
    #[serde(default)]
    pub workload: Option<WorkloadSpec>,
    #[serde(default)]
    pub backend: RawBackend,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackend {
    #[serde(default)]
    pub command: Option<Spanned<CommandSpec>>,
    #[serde(default)]
    pub local: Option<LocalSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCatalogue {
    #[serde(default)]
    pub machine_types: Vec<Spanned<String>>,
    #[serde(default)]
    pub machine: Vec<Spanned<RawMachine>>,
    #[serde(default)]
    pub count: Option<Spanned<String>>,
    #[serde(default)]
    pub count_unit: CountUnit,
    #[serde(default)]
    pub dimensions: OrderedDims,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMachine {
    pub name: String,
    pub vcpus: u32,
    pub memory_gib: f64,
    pub price_per_hour: f64,
}

#[derive(Debug, Clone)]
pub(super) enum DimValue {
    Int(i64),
    Float(f64),
    Text(String),
}

/// By hand rather than `untagged`, whose error for `[true]` or `[[1]]` named the enum ("data
/// did not match any variant of untagged enum DimValue") instead of what a value may be.
impl<'de> Deserialize<'de> for DimValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DimValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a dimension value: a number or a text")
            }
            fn visit_i64<E: serde::de::Error>(self, x: i64) -> Result<DimValue, E> {
                Ok(DimValue::Int(x))
            }
            fn visit_u64<E: serde::de::Error>(self, x: u64) -> Result<DimValue, E> {
                Ok(i64::try_from(x).map_or(DimValue::Float(x as f64), DimValue::Int))
            }
            fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<DimValue, E> {
                Ok(DimValue::Float(x))
            }
            fn visit_str<E: serde::de::Error>(self, x: &str) -> Result<DimValue, E> {
                Ok(DimValue::Text(x.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The dimensions table in file order (their order names configurations).
#[derive(Default)]
pub(super) struct OrderedDims(pub Vec<(String, Spanned<Vec<DimValue>>)>);

impl<'de> Deserialize<'de> for OrderedDims {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedDims;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of dimension name = [values]")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedDims, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Spanned<Vec<DimValue>>>()? {
                    out.push((k, v));
                }
                Ok(OrderedDims(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Makes errors that point into one file's text.
pub(super) struct Locator<'a> {
    pub text: &'a str,
    pub shown: String,
}

impl Locator<'_> {
    /// An error at `span` (or at the file as a whole).
    pub fn at(&self, span: Option<Range<usize>>, message: String) -> SpaceFileError {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(self.text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        SpaceFileError {
            path: self.shown.clone(),
            line,
            column,
            message,
        }
    }
}

/// Parses the TOML into the raw file, every error located.
pub(super) fn read(loc: &Locator<'_>) -> Result<RawFile, SpaceFileError> {
    toml::from_str(loc.text).map_err(|e| {
        // toml's message repeats the location in a multi-line snippet: keep its first line of
        // explanation and give the location our way.
        let message = e.message().trim().to_string();
        loc.at(e.span(), message)
    })
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
