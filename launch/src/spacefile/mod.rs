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
use std::path::{Path, PathBuf};

use optimizer::{Space, Value};
use serde::{Deserialize, Serialize};

use crate::prices::PriceTable;

mod check;
mod expand;
mod price;
mod read;

pub use read::line_col;

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
    /// Every backend, in the order help texts list them: the one list of backend names.
    pub const ALL: [BackendKind; 4] = [
        BackendKind::Local,
        BackendKind::Command,
        BackendKind::Spark,
        BackendKind::Dataproc,
    ];

    /// The backend called `name` on the command line.
    pub fn from_name(name: &str) -> Option<BackendKind> {
        BackendKind::ALL.into_iter().find(|b| b.name() == name)
    }

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
    /// USD per hour of one machine of the type, from the price table.
    pub machine_price_per_hour: f64,
    /// Machines (count_unit = machine) or vCPUs (count_unit = vcpu) the configuration occupies.
    pub count: f64,
    /// True USD per hour of the whole configuration, by the backend's rule (for Dataproc the
    /// whole cluster: master and workers, premium and disks). With a cost objective it is also
    /// the space's price, so the model and every probe's cost use the same figure.
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

/// Options that change how a file expands.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub backend: BackendKind,
    /// A price file given on the command line (applied after the space file's own).
    pub prices: Option<PathBuf>,
}

/// Reads and checks a space file.
pub fn load(path: &Path, options: &LoadOptions) -> Result<SearchSpec, SpaceFileError> {
    let text = optimizer::read_regular_string(path).map_err(|e| SpaceFileError {
        path: path.display().to_string(),
        line: None,
        column: None,
        message: e.to_string(),
    })?;
    parse(&text, path, options)
}

/// Parses space-file text; `path` names it in errors and anchors relative paths.
pub fn parse(text: &str, path: &Path, options: &LoadOptions) -> Result<SearchSpec, SpaceFileError> {
    // A file saved with CRLF line ends keeps them inside multi-line strings: every line of a
    // `template = """..."""` would reach the shell with a carriage return on its last argument
    // (`sleep 0.1\r`). Lines and columns are the same either way.
    let text = &text.replace("\r\n", "\n");
    let loc = read::Locator {
        text,
        shown: path.display().to_string(),
    };
    let raw = read::read(&loc)?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let prices = check::prices(&raw, &base, options, &loc)?;
    let max_runtime_s = check::max_runtime(&raw, &loc)?;
    let machines = check::machines(&raw, &prices, &loc)?;
    let dims = check::dimensions(&raw, &loc)?;
    let count_index = check::count_index(&raw, &dims, &loc)?;
    let (space, configs) =
        expand::expand(&raw, &machines, &dims, count_index, &prices, options, &loc)?;

    // Checked here, where the file can be named, rather than by the generator, whose message
    // speaks of its command-line flag.
    if let Some(g) = raw.workload.as_ref().and_then(|w| w.generate.as_ref()) {
        if g.images == 0 {
            return Err(loc.at(None, "workload.generate.images must be at least 1".into()));
        }
    }

    // The command backend's template may only name things a configuration has.
    if let Some(cmd) = &raw.backend.command {
        let known: Vec<&str> = BUILTIN_NAMES
            .iter()
            .copied()
            .chain(dims.iter().map(|d| d.name.as_str()))
            .collect();
        crate::command::check_template(&cmd.get_ref().template, &known).map_err(|e| {
            let at = template_at(loc.text, cmd.span(), &e).unwrap_or(cmd.span());
            loc.at(Some(at), format!("backend.command.template: {e}"))
        })?;
        check_command(cmd.get_ref(), &dims)
            .map_err(|problem| loc.at(Some(cmd.span()), format!("backend.command.{problem}")))?;
    }

    Ok(SearchSpec {
        path: path.to_path_buf(),
        objective: raw.objective,
        max_runtime_s,
        space,
        configs,
        workload: raw.workload,
        backend: BackendSpec {
            command: raw.backend.command.map(toml::Spanned::into_inner),
            local: raw.backend.local,
        },
        prices,
        backend_kind: options.backend,
    })
}

/// Most bytes of a probe's stdout and of its stderr a journal keeps: a journal line per probe
/// is read whole, so a log of hundreds of megabytes would make every reader hold it.
pub const MAX_LOG_BYTES: usize = 1 << 20;

/// What the command backend's section must hold besides a well-formed template: a command, an
/// environment a process can be given, and one variable per dimension. The problem names the
/// key under `backend.command`.
fn check_command(cmd: &CommandSpec, dims: &[check::Dim]) -> Result<(), String> {
    if cmd.template.trim().is_empty() {
        return Err("template is blank: it is the command each probe runs".into());
    }
    for (k, v) in &cmd.env {
        if k.is_empty() || k.contains(['=', '\0']) {
            return Err(format!(
                "env: `{}` cannot name an environment variable (empty, or holding `=` or NUL)",
                k.escape_debug()
            ));
        }
        if v.contains('\0') {
            return Err(format!(
                "env.{}: the value holds a NUL character, which no environment can carry",
                k.escape_debug()
            ));
        }
    }
    if cmd.log_bytes > MAX_LOG_BYTES {
        return Err(format!(
            "log_bytes: {} is more than a journal keeps per probe (at most {MAX_LOG_BYTES})",
            cmd.log_bytes
        ));
    }
    let mut names: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    // (Dimension names are letters, digits, `_` and `-`: each can be a variable's name.)
    for d in dims {
        let var = crate::command::env_name(&d.name);
        if let Some(other) = names.insert(var.clone(), &d.name) {
            return Err(format!(
                "dimensions `{other}` and `{}` would both reach the job as {var}: rename one",
                d.name
            ));
        }
    }
    Ok(())
}

/// Where in the file a template error is: the unknown placeholder, or else the `template` key,
/// looked for within the `[backend.command]` table's span (toml gives spans of tables, not of
/// their string values).
fn template_at(
    text: &str,
    table: std::ops::Range<usize>,
    error: &crate::template::TemplateError,
) -> Option<std::ops::Range<usize>> {
    // A `[backend.command]` header's span is the header alone: its keys follow, up to the
    // next header.
    let from = text.get(table.start..)?;
    let end = match from.find('\n') {
        Some(first) if from.starts_with('[') => {
            from[first..].find("\n[").map_or(from.len(), |p| first + p)
        }
        _ => table.len(),
    };
    let within = from.get(..end)?;
    let key = within.match_indices("template").find_map(|(i, _)| {
        let before = within[..i].chars().next_back();
        let after = within[i + "template".len()..].trim_start();
        let word_start = before.is_none_or(|c| c.is_whitespace() || c == '{' || c == ',');
        // Not in a comment: nothing but a table's opening comes before it on its line.
        let line = &within[within[..i].rfind('\n').map_or(0, |n| n + 1)..i];
        (word_start && after.starts_with('=') && !line.contains('#')).then_some(i)
    })?;
    let at = match error {
        // The placeholder itself, not an escaped `{{name}}` before it.
        crate::template::TemplateError::NotKnown { name, .. } => within[key..]
            .match_indices(&format!("{{{name}}}"))
            .find(|&(p, _)| !within[..key + p].ends_with('{'))
            .map_or(key, |(p, _)| key + p),
        _ => key,
    };
    Some(table.start + at..table.start + at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use optimizer::Kind;

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
    fn a_crlf_file_gives_templates_without_carriage_returns() {
        let text = "[catalogue]\r\nmachine_types = [\"e2-standard-2\"]\r\ncount = \"workers\"\r\n\
                    [catalogue.dimensions]\r\nworkers = [1, 2]\r\n[backend.command]\r\n\
                    template = \"\"\"\r\nsleep 0.1\r\necho {workers}\r\n\"\"\"\r\n";
        let options = LoadOptions {
            backend: BackendKind::Command,
            prices: None,
        };
        let spec = parse(text, Path::new("crlf.toml"), &options).unwrap();
        let template = &spec.backend.command.unwrap().template;
        assert_eq!(template, "sleep 0.1\necho {workers}\n");
    }

    #[test]
    fn a_template_error_names_the_line_of_the_placeholder() {
        let text = GOOD.replace(
            "template = \"job --w {workers} --m {machine_type} --p {partitions} --c {codec}\"",
            "env = { A = \"1\" }\ntemplate = \"\"\"\njob --w {workers}\n  --c {colour}\n\"\"\"",
        );
        let err = parse_str(&text).unwrap_err();
        assert_eq!((err.line, err.column), (Some(18), Some(7)), "{err}");
        assert!(
            err.to_string().contains("unknown placeholder {colour}"),
            "{err}"
        );
        // Past a commented-out template and an escaped `{{colour}}`.
        let text = GOOD.replace(
            "template = \"job --w {workers} --m {machine_type} --p {partitions} --c {codec}\"",
            "# template = \"{colour}\"\ntemplate = \"{{colour}} {colour}\"",
        );
        let err = parse_str(&text).unwrap_err();
        assert_eq!((err.line, err.column), (Some(16), Some(24)), "{err}");
        // An inline table: the template key.
        let text = GOOD.replace(
            "[backend.command]\ntemplate = \"job --w {workers} --m {machine_type} --p {partitions} --c {codec}\"",
            "[backend]\ncommand = { template = \"job {\" }",
        );
        let err = parse_str(&text).unwrap_err();
        assert_eq!((err.line, err.column), (Some(15), Some(13)), "{err}");
        assert!(err.to_string().contains("never closed"), "{err}");
    }

    #[test]
    fn a_dimension_value_that_is_no_number_or_text_is_named_so() {
        for values in ["[true, false]", "[[1]]", "[{ a = 1 }]"] {
            let text = GOOD.replace("[\"lz4\", \"zstd\"]", values);
            let err = parse_str(&text).unwrap_err();
            assert!(
                err.to_string()
                    .contains("expected a dimension value: a number or a text"),
                "{values}: {err}"
            );
            assert_eq!(err.line, Some(12), "{err}");
        }
        let spec = parse_str(&GOOD.replace("[16, 64]", "[16, 64.5]")).unwrap();
        assert_eq!(spec.space.len(), 2 * 3 * 2 * 2);
    }

    #[test]
    fn a_dimension_name_no_template_can_use_is_refused_where_it_stands() {
        for (name, want) in [
            ("\"\"", "dimension name ``: use letters, digits"),
            ("\"a b\"", "dimension name `a b`: use letters, digits"),
            ("vcpus", "dimension name `vcpus` is reserved"),
        ] {
            let text = GOOD.replace("codec = [", &format!("{name} = ["));
            let err = parse_str(&text).unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
            assert_eq!(err.line, Some(12), "{err}");
        }
    }

    #[test]
    fn a_huge_catalogue_is_refused_before_it_is_built() {
        // 2 machines x 200^6 = 1.28e14 configurations: built first, it would exhaust memory.
        let values: Vec<String> = (1..=200).map(|v| v.to_string()).collect();
        let dims: String = (0..6)
            .map(|i| format!("d{i} = [{}]\n", values.join(", ")))
            .collect();
        let text = format!(
            "[catalogue]\nmachine_types = [\"e2-standard-2\", \"n2-standard-4\"]\n\
             [catalogue.dimensions]\n{dims}[backend.command]\ntemplate = \"job\"\n"
        );
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(
            err.contains("the catalogue has 128000000000000 configurations"),
            "{err}"
        );
        assert!(
            err.contains("more than 100000 is surely a mistake"),
            "{err}"
        );
        // One long dimension: its values are checked once each, then the size refuses it.
        let long: Vec<String> = (1..=300_000).map(|v| v.to_string()).collect();
        let text = format!(
            "[catalogue]\nmachine_types = [\"e2-standard-2\", \"n2-standard-4\"]\n\
             [catalogue.dimensions]\nd = [{}]\n[backend.command]\ntemplate = \"job\"\n",
            long.join(", ")
        );
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("has 600000 configurations"), "{err}");
        // A count no cluster has prices a configuration past what a journal can sum.
        let err = parse_str(&GOOD.replace("[2, 4, 8]", "[2, 4, 1e40]")).unwrap_err();
        assert!(
            err.message.contains(
                "configuration `e2-standard-2/workers=10000000000000000000000000000000000000000"
            ) && err
                .message
                .contains("USD per hour, more than any cluster (at most 1e9)"),
            "{err}"
        );
        let err = parse_str(&GOOD.replace("[2, 4, 8]", "[0, 4, -0.0]")).unwrap_err();
        assert!(err.message.contains("lists -0 twice"), "{err}");
        // Within the limit it is built.
        let small = GOOD.replace("workers = [2, 4, 8]", "workers = [2, 4, 8, 16]");
        assert_eq!(parse_str(&small).unwrap().space.len(), 2 * 4 * 2 * 2);
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
        // A master and 2 workers of e2-standard-2, 6 vCPUs x $0.010 premium, 3 x 50 GB disks.
        let cluster = 3.0 * 0.067006 + 6.0 * 0.010 + 3.0 * 50.0 * 0.040 / 730.0;
        assert!((s.configs[0].price_per_hour - cluster).abs() < 1e-12);
        assert_eq!(
            s.space.config(0).price_per_hour,
            s.configs[0].price_per_hour
        );
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

        // A value far from one is echoed in exponent form, not in 300 digits.
        let err = parse_str(&GOOD.replace("[16, 64]", "[1e300, 1e300]")).unwrap_err();
        assert!(err.message.contains("lists 1e300 twice"), "{err}");

        let err = parse_str(&GOOD.replace("{codec}", "{colour}")).unwrap_err();
        assert!(err.message.contains("{colour}"), "{err}");
        assert_eq!((err.line, err.column), (Some(15), Some(71)), "{err}");

        let err =
            parse_str(&GOOD.replace("max_runtime_s = 300", "max_runtime_s = -1")).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");

        let err =
            parse_str("objective = \"speed\"\n[catalogue]\nmachine_types=[\"e2-standard-2\"]\n")
                .unwrap_err();
        assert_eq!(err.line, Some(1), "{err}");

        let err = parse_str("[catalogue]\n").unwrap_err();
        assert!(err.message.contains("at least one machine"), "{err}");

        let err = parse_str(&format!(
            "{GOOD}[workload]\ndataset = \"d\"\ntasks = [\"preprocess\"]\ngenerate = {{ images = 0 }}\n"
        ))
        .unwrap_err();
        assert!(
            err.to_string().starts_with("space.toml:")
                && err
                    .message
                    .contains("workload.generate.images must be at least 1"),
            "{err}"
        );
    }

    /// Integers are not rounded through f64 on the way in, and counts are whole.
    #[test]
    fn integers_are_exact_and_counts_whole() {
        let err = parse_str(&GOOD.replace("[16, 64]", "[16, 9007199254740993]")).unwrap_err();
        assert_eq!(err.line, Some(11), "{err}");
        assert!(
            err.message.contains("partitions") && err.message.contains("9007199254740993"),
            "{err}"
        );
        // 2^53 itself is exact and kept.
        let s = parse_str(&GOOD.replace("[16, 64]", "[16, 9007199254740992]")).unwrap();
        assert!(s
            .configs
            .iter()
            .any(|c| c.params["partitions"].to_string() == "9007199254740992"));

        let err = parse_str(&GOOD.replace("[2, 4, 8]", "[1.5, 4, 8]")).unwrap_err();
        assert_eq!(err.line, Some(10), "{err}");
        assert!(
            err.message.contains("workers") && err.message.contains("whole"),
            "{err}"
        );
    }

    /// A command section no probe could run is refused when the file is read, naming the key:
    /// else every probe fails (or "completes" doing nothing) and the journal, which keeps the
    /// section, cannot be resumed once it is put right.
    #[test]
    fn a_command_section_no_probe_can_run_is_refused() {
        let template =
            "template = \"job --w {workers} --m {machine_type} --p {partitions} --c {codec}\"";
        for (edit, want) in [
            (
                "template = \"  \"".to_string(),
                "backend.command.template is blank",
            ),
            (
                format!("{template}\nenv = {{ A = \"x\\u0000y\" }}"),
                "backend.command.env.A: the value holds a NUL",
            ),
            (
                format!("{template}\nenv = {{ \"A=B\" = \"x\" }}"),
                "backend.command.env: `A=B` cannot name",
            ),
            (
                format!("{template}\nlog_bytes = 1000000000000"),
                "backend.command.log_bytes: 1000000000000 is more than",
            ),
        ] {
            let err = parse_str(&GOOD.replace(template, &edit)).unwrap_err();
            assert_eq!(err.line, Some(14), "{err}");
            assert!(err.message.starts_with(want), "{err}");
        }
        let err = parse_str(&GOOD.replace("codec = ", "Workers = [1]\ncodec = ")).unwrap_err();
        assert!(
            err.message.contains(
                "dimensions `Workers` and `workers` would both reach the job as \
                 CHERRYPICK_WORKERS"
            ) || err.message.contains(
                "dimensions `workers` and `Workers` would both reach the job as \
                 CHERRYPICK_WORKERS"
            ),
            "{err}"
        );
    }

    /// A time limit too long for a `Duration` is an error at its line, not a panic later.
    #[test]
    fn a_time_limit_longer_than_a_year_is_an_error_at_its_line() {
        let err =
            parse_str(&GOOD.replace("max_runtime_s = 300", "max_runtime_s = 1e20")).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.message.contains("max_runtime_s"), "{err}");
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
    fn dataproc_counts_whole_machines_of_at_least_two_workers() {
        let dataproc = LoadOptions {
            backend: BackendKind::Dataproc,
            prices: None,
        };
        let err = parse(
            &GOOD.replace("[2, 4, 8]", "[1, 4]"),
            Path::new("s.toml"),
            &dataproc,
        )
        .unwrap_err();
        assert!(err.message.contains("workers >= 2"), "{err}");
        let err = parse(
            &GOOD.replace(
                "count = \"workers\"",
                "count = \"workers\"\ncount_unit = \"vcpu\"",
            ),
            Path::new("s.toml"),
            &dataproc,
        )
        .unwrap_err();
        assert!(err.message.contains("count_unit"), "{err}");
    }

    #[test]
    fn backend_names_come_from_one_list() {
        for b in BackendKind::ALL {
            assert_eq!(BackendKind::from_name(b.name()), Some(b));
        }
        assert_eq!(BackendKind::from_name("yarn"), None);
    }
}
