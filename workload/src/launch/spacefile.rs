//! The search-space file (TOML): objective, runtime limit, the catalogue (machine types x
//! dimensions, expanded to an `optimizer::Space`), the workload to run and backend settings.
//! Unknown keys are errors, and every error names the file, line and column.
//!
//! ```toml
//! objective = "cost"            # or "runtime"
//! max_runtime_s = 600           # optional: slower configurations are not acceptable
//! prices = "my-prices.toml"     # optional: overrides/extends the built-in price table
//!
//! [catalogue]
//! machine_types = ["e2-standard-2", "n2-standard-4"]   # looked up in the price table
//! count = "workers"             # dimension multiplying the machine price (cluster size)
//! count_unit = "machine"        # or "vcpu": price = price per vCPU-hour x count
//!
//! [[catalogue.machine]]         # a machine not in the price table
//! name = "big-box"
//! vcpus = 16
//! memory_gib = 64
//! price_per_hour = 0.70
//!
//! [catalogue.dimensions]        # every combination is a configuration
//! workers = [2, 4, 8]
//! partitions = [16, 64]
//!
//! [backend.command]
//! template = "./job.sh --workers {workers} --machine {machine_type} --partitions {partitions}"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use optimizer::{Config, Dimension, Kind, Space, Value};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use toml::Spanned;

use super::prices::{MachinePrice, PriceTable};

/// What the search minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Price x runtime of each configuration (CherryPick's objective).
    #[default]
    Cost,
    /// Runtime alone. The strategy then sees every configuration at the catalogue's highest price,
    /// so cost ranks like runtime and spend limits stay an upper bound; each probe's true cost is
    /// kept in its metrics as `true_cost_usd`.
    Runtime,
}

/// Which engine runs the probes (chosen on the command line; it changes prices for Dataproc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    Local,
    Command,
    Spark,
    Dataproc,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Command => "command",
            BackendKind::Spark => "spark",
            BackendKind::Dataproc => "dataproc",
        }
    }
}

/// How a configuration's price is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CountUnit {
    /// `count` machines of the type: price = machine price x count.
    #[default]
    Machine,
    /// `count` vCPUs of the type: price = machine price / machine vCPUs x count.
    Vcpu,
}

/// The workload the local backend runs (and that other backends may hand to their job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Folder of `<class>/*.jpg` (relative paths are relative to the space file).
    pub dataset: PathBuf,
    /// Make a synthetic dataset there first if the folder is missing or empty.
    #[serde(default)]
    pub generate: Option<GenerateSpec>,
    /// What each probe runs, in order: `preprocess` and/or `read-speed`.
    pub tasks: Vec<Task>,
    /// Where probes write their output (default: a folder beside the journal).
    #[serde(default)]
    pub scratch: Option<PathBuf>,
    /// Fixed parameters of the workload (for example `size = 192`, `quality = 95`); a dimension
    /// of the same name overrides them per configuration.
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
}

/// Synthetic dataset to generate when the dataset folder is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateSpec {
    pub images: usize,
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_seed() -> u64 {
    1
}

/// A step of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    Preprocess,
    ReadSpeed,
}

/// A fixed workload parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

/// Backend settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSpec {
    #[serde(default)]
    pub command: Option<CommandSpec>,
    #[serde(default)]
    pub local: Option<LocalSpec>,
}

/// The command backend: a shell command template run once per probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// Run with `sh -c`; `{name}` is replaced by the configuration's value of `name` (any
    /// dimension, or `machine_type`, `vcpus`, `memory_gib`, `count`, `price_per_hour`, `config`);
    /// `{{` and `}}` are literal braces.
    pub template: String,
    /// Working directory (relative to the space file); default: the space file's folder.
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Bytes of stdout and of stderr kept in the journal per probe (the tail).
    #[serde(default = "default_log_bytes")]
    pub log_bytes: usize,
}

fn default_log_bytes() -> usize {
    4096
}

/// The local backend's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSpec {
    /// Runs of each configuration per probe; the probe's runtime is their median.
    #[serde(default)]
    pub repeat: Option<usize>,
}

/// What one configuration is, beyond its feature values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigInfo {
    pub machine_type: String,
    pub vcpus: u32,
    pub memory_gib: f64,
    /// Machines (count_unit = machine) or vCPUs (count_unit = vcpu) the configuration occupies.
    pub count: f64,
    /// True USD per hour of the whole configuration (premium included for Dataproc).
    pub price_per_hour: f64,
    /// Value of every dimension of the file, by name.
    pub params: BTreeMap<String, Value>,
}

/// A loaded, checked search-space file.
#[derive(Debug, Clone)]
pub struct SearchSpec {
    pub path: PathBuf,
    pub objective: Objective,
    pub max_runtime_s: Option<f64>,
    /// The catalogue the strategy searches (prices as the objective needs them).
    pub space: Space,
    /// Per configuration, in the same order as `space`.
    pub configs: Vec<ConfigInfo>,
    pub workload: Option<WorkloadSpec>,
    pub backend: BackendSpec,
    pub prices: PriceTable,
    pub backend_kind: BackendKind,
}

impl SearchSpec {
    /// Folder relative paths in the file are resolved against.
    pub fn base_dir(&self) -> &Path {
        self.path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }
    /// Resolves a path from the file against its folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir().join(p)
        }
    }
}

/// A space file is wrong; shown as `file:line:column: message`.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {message}", location(*.line, *.column))]
pub struct SpaceFileError {
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// Names every configuration has besides its dimensions (usable in command templates).
pub const BUILTIN_NAMES: &[&str] = &[
    "machine_type",
    "vcpus",
    "memory_gib",
    "count",
    "price_per_hour",
    "config",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    objective: Objective,
    #[serde(default)]
    max_runtime_s: Option<Spanned<f64>>,
    #[serde(default)]
    prices: Option<PathBuf>,
    catalogue: RawCatalogue,
    #[serde(default)]
    workload: Option<WorkloadSpec>,
    #[serde(default)]
    backend: RawBackend,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    #[serde(default)]
    command: Option<Spanned<CommandSpec>>,
    #[serde(default)]
    local: Option<LocalSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[serde(default)]
    machine_types: Vec<Spanned<String>>,
    #[serde(default)]
    machine: Vec<Spanned<RawMachine>>,
    #[serde(default)]
    count: Option<Spanned<String>>,
    #[serde(default)]
    count_unit: CountUnit,
    #[serde(default)]
    dimensions: OrderedDims,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    name: String,
    vcpus: u32,
    memory_gib: f64,
    price_per_hour: f64,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum DimValue {
    Int(i64),
    Float(f64),
    Text(String),
}

/// The dimensions table in file order (their order names configurations).
#[derive(Default)]
struct OrderedDims(Vec<(String, Spanned<Vec<DimValue>>)>);

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

/// Options that change how a file expands.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub backend: BackendKind,
    /// A price file given on the command line (applied after the space file's own).
    pub prices: Option<PathBuf>,
}

/// Reads and checks a space file.
pub fn load(path: &Path, options: &LoadOptions) -> Result<SearchSpec, SpaceFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| SpaceFileError {
        path: path.display().to_string(),
        line: None,
        column: None,
        message: e.to_string(),
    })?;
    parse(&text, path, options)
}

/// Parses space-file text; `path` names it in errors and anchors relative paths.
pub fn parse(text: &str, path: &Path, options: &LoadOptions) -> Result<SearchSpec, SpaceFileError> {
    let shown = path.display().to_string();
    let at = |span: Option<std::ops::Range<usize>>, message: String| {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        SpaceFileError {
            path: shown.clone(),
            line,
            column,
            message,
        }
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        // toml's message repeats the location in a multi-line snippet: keep its first line of
        // explanation and give the location our way.
        let message = e.message().trim().to_string();
        at(e.span(), message)
    })?;

    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut prices = PriceTable::builtin();
    if let Some(p) = &raw.prices {
        let p = if p.is_absolute() {
            p.clone()
        } else {
            base.join(p)
        };
        prices
            .apply_file(&p)
            .map_err(|e| at(None, format!("prices: {e}")))?;
    }
    if let Some(p) = &options.prices {
        prices.apply_file(p).map_err(|e| at(None, e.to_string()))?;
    }

    if let Some(t) = &raw.max_runtime_s {
        if !(t.get_ref().is_finite() && *t.get_ref() > 0.0) {
            return Err(at(
                Some(t.span()),
                "max_runtime_s must be a positive number of seconds".into(),
            ));
        }
    }

    // Machines: named ones from the price table, then inline ones.
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
            return Err(at(
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
        if m.vcpus == 0 {
            return Err(at(
                span,
                format!("machine `{}`: vcpus must be >= 1", m.name),
            ));
        }
        if !(m.memory_gib.is_finite() && m.memory_gib > 0.0) {
            return Err(at(
                span,
                format!("machine `{}`: memory_gib must be > 0", m.name),
            ));
        }
        if !(m.price_per_hour.is_finite() && m.price_per_hour > 0.0) {
            return Err(at(
                span,
                format!("machine `{}`: price_per_hour must be > 0", m.name),
            ));
        }
        machines.push((
            m.name.clone(),
            MachinePrice {
                vcpus: m.vcpus,
                memory_gib: m.memory_gib,
                price_per_hour: m.price_per_hour,
                source: shown.clone(),
                date: String::new(),
            },
        ));
    }
    if machines.is_empty() {
        return Err(at(
            None,
            "[catalogue] needs at least one machine: machine_types = [...] or [[catalogue.machine]]"
                .into(),
        ));
    }
    for (i, (name, _)) in machines.iter().enumerate() {
        if machines[..i].iter().any(|(n, _)| n == name) {
            return Err(at(None, format!("machine type `{name}` is listed twice")));
        }
    }

    // Dimensions: each a non-empty list of numbers or of texts.
    let mut dims: Vec<(String, Vec<Value>, Option<std::ops::Range<usize>>)> = Vec::new();
    for (name, values) in &cat.dimensions.0 {
        let span = Some(values.span());
        if BUILTIN_NAMES.contains(&name.as_str()) {
            return Err(at(
                span,
                format!("dimension name `{name}` is reserved (built-in names: {BUILTIN_NAMES:?})"),
            ));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(at(
                span,
                format!("dimension name `{name}`: use letters, digits, `_` or `-`"),
            ));
        }
        let vs = values.get_ref();
        if vs.is_empty() {
            return Err(at(span, format!("dimension `{name}` has no values")));
        }
        let numeric = vs.iter().all(|v| !matches!(v, DimValue::Text(_)));
        let text = vs.iter().all(|v| matches!(v, DimValue::Text(_)));
        if !numeric && !text {
            return Err(at(
                span,
                format!("dimension `{name}` mixes numbers and text; use one kind"),
            ));
        }
        let converted: Vec<Value> = vs
            .iter()
            .map(|v| match v {
                DimValue::Int(i) => Value::Num(*i as f64),
                DimValue::Float(f) => Value::Num(*f),
                DimValue::Text(s) => Value::Cat(s.clone()),
            })
            .collect();
        for (i, v) in converted.iter().enumerate() {
            if let Value::Num(x) = v {
                if !x.is_finite() {
                    return Err(at(span, format!("dimension `{name}`: {x} is not finite")));
                }
            }
            if converted[..i].contains(v) {
                return Err(at(span, format!("dimension `{name}` lists {v} twice")));
            }
        }
        dims.push((name.clone(), converted, span));
    }

    let count_index = match &cat.count {
        None => None,
        Some(c) => {
            let Some(i) = dims.iter().position(|(n, _, _)| n == c.get_ref()) else {
                return Err(at(
                    Some(c.span()),
                    format!(
                        "count = `{}` names no dimension of [catalogue.dimensions]",
                        c.get_ref()
                    ),
                ));
            };
            if dims[i]
                .1
                .iter()
                .any(|v| !matches!(v, Value::Num(x) if *x > 0.0))
            {
                return Err(at(
                    dims[i].2.clone(),
                    format!(
                        "dimension `{}` is the count: its values must be numbers > 0",
                        c.get_ref()
                    ),
                ));
            }
            Some(i)
        }
    };

    // Expand machine x dimension values, machine outermost, dimensions in file order.
    let single_machine = machines.len() == 1;
    let mut infos = Vec::new();
    let mut combos: Vec<Vec<usize>> = vec![Vec::new()];
    for (_, values, _) in &dims {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                (0..values.len()).map(move |j| {
                    let mut c = c.clone();
                    c.push(j);
                    c
                })
            })
            .collect();
    }
    const MAX_CONFIGS: usize = 100_000;
    if machines.len().saturating_mul(combos.len()) > MAX_CONFIGS {
        return Err(at(
            None,
            format!(
                "the catalogue has {} configurations; more than {MAX_CONFIGS} is surely a mistake",
                machines.len() * combos.len()
            ),
        ));
    }
    let mut names = Vec::new();
    for (mname, m) in &machines {
        for combo in &combos {
            let params: BTreeMap<String, Value> = dims
                .iter()
                .zip(combo)
                .map(|((n, vs, _), &j)| (n.clone(), vs[j].clone()))
                .collect();
            let count = match count_index {
                Some(i) => match &dims[i].1[combo[i]] {
                    Value::Num(x) => *x,
                    Value::Cat(_) => unreachable!("checked numeric above"),
                },
                None => 1.0,
            };
            let (mut price, vcpus_used) = match cat.count_unit {
                CountUnit::Machine => (m.price_per_hour * count, f64::from(m.vcpus) * count),
                CountUnit::Vcpu => (m.price_per_vcpu_hour() * count, count),
            };
            if options.backend == BackendKind::Dataproc {
                price += prices.dataproc_premium_per_vcpu_hour * vcpus_used;
            }
            let mut parts: Vec<String> = Vec::new();
            if !single_machine || dims.is_empty() {
                parts.push(mname.clone());
            }
            for ((n, vs, _), &j) in dims.iter().zip(combo) {
                parts.push(format!("{n}={}", vs[j]));
            }
            names.push(parts.join("/"));
            infos.push(ConfigInfo {
                machine_type: mname.clone(),
                vcpus: m.vcpus,
                memory_gib: m.memory_gib,
                count,
                price_per_hour: price,
                params,
            });
        }
    }

    // Features the surrogate sees: machine shape (when it varies), then the dimensions.
    let mut dimensions = Vec::new();
    let vary_vcpus = infos.iter().any(|i| i.vcpus != infos[0].vcpus);
    let vary_mem = infos.iter().any(|i| {
        i.memory_gib / f64::from(i.vcpus) != infos[0].memory_gib / f64::from(infos[0].vcpus)
    });
    if vary_vcpus {
        dimensions.push(Dimension {
            name: "vcpus".into(),
            kind: Kind::Numeric { log: false },
        });
    }
    if vary_mem {
        dimensions.push(Dimension {
            name: "memory_per_vcpu_gib".into(),
            kind: Kind::Numeric { log: false },
        });
    }
    for (n, vs, _) in &dims {
        let kind = if vs.iter().all(|v| matches!(v, Value::Num(_))) {
            Kind::Numeric { log: false }
        } else {
            Kind::Categorical {
                levels: vs.iter().map(|v| v.to_string()).collect(),
            }
        };
        dimensions.push(Dimension {
            name: n.clone(),
            kind,
        });
    }
    let max_price = infos
        .iter()
        .map(|i| i.price_per_hour)
        .fold(0.0f64, f64::max);
    let configs: Vec<Config> = infos
        .iter()
        .zip(names)
        .map(|(info, name)| {
            let mut values = Vec::new();
            if vary_vcpus {
                values.push(Value::Num(f64::from(info.vcpus)));
            }
            if vary_mem {
                values.push(Value::Num(info.memory_gib / f64::from(info.vcpus)));
            }
            for (n, _, _) in &dims {
                values.push(info.params[n].clone());
            }
            Config {
                name,
                values,
                price_per_hour: match raw.objective {
                    Objective::Cost => info.price_per_hour,
                    Objective::Runtime => max_price,
                },
            }
        })
        .collect();
    Space::auto_log(&mut dimensions, &configs);
    let space = Space::new(dimensions, configs).map_err(|e| at(None, e.to_string()))?;

    // The command template may only name things a configuration has.
    if let Some(cmd) = &raw.backend.command {
        let known: Vec<&str> = BUILTIN_NAMES
            .iter()
            .copied()
            .chain(dims.iter().map(|(n, _, _)| n.as_str()))
            .collect();
        if let Err(e) = placeholders(&cmd.get_ref().template).and_then(|ps| {
            match ps.iter().find(|p| !known.contains(&p.as_str())) {
                Some(p) => Err(format!(
                    "unknown placeholder {{{p}}} (known: {})",
                    known.join(", ")
                )),
                None => Ok(()),
            }
        }) {
            return Err(at(
                Some(cmd.span()),
                format!("backend.command.template: {e}"),
            ));
        }
    }

    Ok(SearchSpec {
        path: path.to_path_buf(),
        objective: raw.objective,
        max_runtime_s: raw.max_runtime_s.map(|t| *t.get_ref()),
        space,
        configs: infos,
        workload: raw.workload,
        backend: BackendSpec {
            command: raw.backend.command.map(Spanned::into_inner),
            local: raw.backend.local,
        },
        prices,
        backend_kind: options.backend,
    })
}

/// Placeholder names in a template (`{name}`; `{{`/`}}` escape braces).
pub fn placeholders(template: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    render_with(template, |name| {
        out.push(name.to_string());
        Some(String::new())
    })?;
    Ok(out)
}

/// Replaces every `{name}` in `template` with `lookup(name)`; an unknown name is an error.
pub fn render_with(
    template: &str,
    mut lookup: impl FnMut(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let rest = &template[i + 1..];
                let Some(end) = rest.find('}') else {
                    return Err(format!(
                        "`{{` at byte {i} is never closed (write `{{{{` for a brace)"
                    ));
                };
                let name = &rest[..end];
                let value =
                    lookup(name).ok_or_else(|| format!("unknown placeholder {{{name}}}"))?;
                out.push_str(&value);
                for _ in 0..=end {
                    chars.next();
                }
            }
            '}' => {
                return Err(format!(
                    "`}}` at byte {i} has no `{{` (write `}}}}` for a brace)"
                ))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary_compat(offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}
impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while i > 0 && !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LoadOptions {
        LoadOptions {
            backend: BackendKind::Command,
            prices: None,
        }
    }

    fn parse_str(text: &str) -> Result<SearchSpec, SpaceFileError> {
        parse(text, Path::new("space.toml"), &opts())
    }

    const GOOD: &str = r#"
objective = "cost"
max_runtime_s = 300

[catalogue]
machine_types = ["e2-standard-2", "n2-standard-4"]
count = "workers"

[catalogue.dimensions]
workers = [2, 4, 8]
partitions = [16, 64]
codec = ["lz4", "zstd"]

[backend.command]
template = "job --w {workers} --m {machine_type} --p {partitions} --c {codec}"
"#;

    #[test]
    fn expands_the_cartesian_product_with_prices() {
        let s = parse_str(GOOD).unwrap();
        assert_eq!(s.space.len(), 2 * 3 * 2 * 2);
        assert_eq!(s.max_runtime_s, Some(300.0));
        let first = s.space.config(0);
        assert_eq!(
            first.name,
            "e2-standard-2/workers=2/partitions=16/codec=lz4"
        );
        assert!((first.price_per_hour - 2.0 * 0.067006).abs() < 1e-12);
        let id = s
            .space
            .find("n2-standard-4/workers=8/partitions=64/codec=zstd")
            .unwrap();
        assert!((s.configs[id].price_per_hour - 8.0 * 0.194236).abs() < 1e-12);
        let names: Vec<&str> = s
            .space
            .dimensions()
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(names, ["vcpus", "workers", "partitions", "codec"]);
        assert!(matches!(
            s.space.dimensions()[1].kind,
            Kind::Numeric { log: true }
        ));
    }

    #[test]
    fn dataproc_adds_the_premium_and_runtime_objective_flattens_prices() {
        let s = parse(
            GOOD,
            Path::new("s.toml"),
            &LoadOptions {
                backend: BackendKind::Dataproc,
                prices: None,
            },
        )
        .unwrap();
        // 2 machines x 2 vCPUs x $0.010 on top of 2 x e2-standard-2.
        assert!((s.configs[0].price_per_hour - (2.0 * 0.067006 + 0.04)).abs() < 1e-12);
        let s = parse_str(&GOOD.replace("\"cost\"", "\"runtime\"")).unwrap();
        let p0 = s.space.config(0).price_per_hour;
        assert!(s.space.configs().iter().all(|c| c.price_per_hour == p0));
        assert!(s.configs[0].price_per_hour < p0);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_line_and_column() {
        let err = parse_str(&GOOD.replace("count = ", "cuont = ")).unwrap_err();
        assert_eq!((err.line, err.column), (Some(7), Some(1)), "{err}");
        assert!(err.to_string().starts_with("space.toml:7:1:"), "{err}");
        assert!(err.to_string().contains("cuont"), "{err}");

        let err = parse_str(&GOOD.replace("\"n2-standard-4\"", "\"n9-mega\"")).unwrap_err();
        assert_eq!((err.line, err.column), (Some(6), Some(35)), "{err}");
        assert!(err.message.contains("n9-mega"), "{err}");

        let err = parse_str(&GOOD.replace("[16, 64]", "[16, \"x\"]")).unwrap_err();
        assert_eq!(err.line, Some(11), "{err}");
        assert!(err.message.contains("mixes"), "{err}");

        let err = parse_str(&GOOD.replace("{codec}", "{colour}")).unwrap_err();
        assert!(err.message.contains("{colour}"), "{err}");
        assert_eq!(err.line, Some(14), "{err}");

        let err =
            parse_str(&GOOD.replace("max_runtime_s = 300", "max_runtime_s = -1")).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");

        let err =
            parse_str("objective = \"speed\"\n[catalogue]\nmachine_types=[\"e2-standard-2\"]\n")
                .unwrap_err();
        assert_eq!(err.line, Some(1), "{err}");

        let err = parse_str("[catalogue]\n").unwrap_err();
        assert!(err.message.contains("at least one machine"), "{err}");
    }

    #[test]
    fn vcpu_counting_and_inline_machines() {
        let s = parse_str(
            r#"
[catalogue]
count = "threads"
count_unit = "vcpu"
[[catalogue.machine]]
name = "local"
vcpus = 4
memory_gib = 16
price_per_hour = 0.2
[catalogue.dimensions]
threads = [1, 2]
"#,
        )
        .unwrap();
        assert_eq!(s.space.config(1).name, "threads=2");
        assert!((s.space.config(1).price_per_hour - 0.1).abs() < 1e-12);
    }

    #[test]
    fn templates_render_and_escape() {
        let r = render_with("a {x} {{y}} }}", |n| (n == "x").then(|| "1".to_string())).unwrap();
        assert_eq!(r, "a 1 {y} }");
        assert!(render_with("{z}", |_| None).is_err());
        assert!(render_with("{open", |_| Some(String::new())).is_err());
        assert_eq!(placeholders("{a}-{b}").unwrap(), ["a", "b"]);
    }
}
