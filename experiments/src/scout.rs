//! Loader for the Scout multi-node dataset (`dataset/osr_multiple_nodes/*/report.json`, AWS):
//! workload keys, the AWS prices and machine sizes of DESIGN 4, and the 2-hour charge of failures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use optimizer::{Config, Dimension, Kind, Outcome, Space, Value};
use serde_json::Value as Json;

use crate::dataset::{list_dir, read_file, DataError, Dataset, Workload, MAX_AMOUNT, MIN_AMOUNT};

/// Scout's per-run time limit: failed runs are charged as having run this long.
pub const FAILED_RUNTIME_S: f64 = 7200.0;

/// One AWS instance type of the Scout catalogue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VmType {
    pub name: &'static str,
    /// USD per node-hour (on-demand, as used by bbo-arena and karasu).
    pub price_per_hour: f64,
    pub vcpus: f64,
    pub ram_gib: f64,
}

/// The nine instance types of the Scout multi-node set.
pub const VM_TYPES: &[VmType] = &[
    vm("c4.large", 0.10, 2.0, 3.75),
    vm("c4.xlarge", 0.199, 4.0, 7.5),
    vm("c4.2xlarge", 0.398, 8.0, 15.0),
    vm("m4.large", 0.10, 2.0, 8.0),
    vm("m4.xlarge", 0.20, 4.0, 16.0),
    vm("m4.2xlarge", 0.40, 8.0, 32.0),
    vm("r4.large", 0.133, 2.0, 15.25),
    vm("r4.xlarge", 0.266, 4.0, 30.5),
    vm("r4.2xlarge", 0.532, 8.0, 61.0),
];

const fn vm(name: &'static str, price_per_hour: f64, vcpus: f64, ram_gib: f64) -> VmType {
    VmType {
        name,
        price_per_hour,
        vcpus,
        ram_gib,
    }
}

/// Parsed run folder name `<N>_<vmtype>_<app>_<framework>_<datasize>_<rep>`.
#[derive(Debug, Clone, PartialEq)]
struct RunId {
    nodes: u32,
    vm: VmType,
    workload: String,
}

fn parse_run_id(name: &str) -> Result<RunId, String> {
    let parts: Vec<&str> = name.split('_').collect();
    if parts.len() < 6 {
        return Err(format!(
            "folder name `{name}` does not match <N>_<vmtype>_<app>_<framework>_<datasize>_<rep>"
        ));
    }
    let nodes: u32 = parts[0].parse().ok().filter(|&n| n > 0).ok_or_else(|| {
        format!(
            "folder name `{name}`: node count `{}` is not a positive integer",
            parts[0]
        )
    })?;
    let vm = *VM_TYPES
        .iter()
        .find(|v| v.name == parts[1])
        .ok_or_else(|| format!("folder name `{name}`: unknown instance type `{}`", parts[1]))?;
    let n = parts.len();
    let app = parts[2..n - 3].join("_");
    let (framework, datasize) = (parts[n - 3], parts[n - 2]);
    Ok(RunId {
        nodes,
        vm,
        workload: format!("{framework}_{app}_{datasize}"),
    })
}

/// Reads `completed` and `elapsed_time` from one report.json.
fn parse_report(path: &Path) -> Result<(bool, f64), DataError> {
    let text = read_file(path)?;
    let json: Json = serde_json::from_str(&text).map_err(|e| DataError::Field {
        path: path.to_path_buf(),
        line: e.line() as u64,
        field: "(json)".into(),
        problem: e.to_string(),
    })?;
    let field = |name: &str, problem: &str| DataError::JsonField {
        path: path.to_path_buf(),
        field: name.into(),
        problem: problem.into(),
    };
    let completed = match json.get("completed") {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Json::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(field("completed", "expected true or false")),
        None => return Err(field("completed", "missing")),
    };
    let elapsed = match json.get("elapsed_time") {
        Some(Json::Number(n)) => n.as_f64(),
        Some(Json::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
        None => return Err(field("elapsed_time", "missing")),
    }
    .filter(|x| x.is_finite() && *x >= 0.0)
    .ok_or_else(|| field("elapsed_time", "expected a non-negative number of seconds"))?;
    if completed && elapsed <= 0.0 {
        return Err(field(
            "elapsed_time",
            "a completed run needs a positive runtime",
        ));
    }
    // A failed run is charged the 2-hour limit whatever it says, so only a completed one's
    // runtime reaches a cost.
    if completed && !(MIN_AMOUNT..=MAX_AMOUNT).contains(&elapsed) {
        return Err(field(
            "elapsed_time",
            "outside what a recorded run can hold (1e-15 to 1e15 seconds)",
        ));
    }
    Ok((completed, elapsed))
}

/// Loads every workload under `dir/dataset/osr_multiple_nodes`.
pub fn load(dir: &Path) -> Result<Dataset, DataError> {
    let root = dir.join("dataset").join("osr_multiple_nodes");
    // workload -> config name -> (nodes, vm, runs)
    type Runs = BTreeMap<String, BTreeMap<(u32, usize), Vec<Outcome>>>;
    let mut by_workload: Runs = BTreeMap::new();
    for run_dir in list_dir(&root)? {
        if !run_dir.is_dir() {
            continue;
        }
        let name = run_dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = parse_run_id(&name).map_err(|problem| DataError::File {
            path: run_dir.clone(),
            problem,
        })?;
        let report = run_dir.join("report.json");
        let (completed, elapsed) = parse_report(&report)?;
        let price = id.vm.price_per_hour * id.nodes as f64;
        let outcome = if completed {
            Outcome::Completed {
                runtime_s: elapsed,
                cost_usd: price * elapsed / 3600.0,
                metrics: Default::default(),
            }
        } else {
            let cost_usd = price * FAILED_RUNTIME_S / 3600.0;
            // Runs that reached the limit timed out; shorter failed runs crashed.
            if elapsed >= FAILED_RUNTIME_S * 0.99 {
                Outcome::TimedOut {
                    elapsed_s: FAILED_RUNTIME_S,
                    cost_usd,
                }
            } else {
                Outcome::Failed {
                    reason: format!(
                        "run failed after {elapsed:.0} s; charged to Scout's 2-hour limit"
                    ),
                    elapsed_s: FAILED_RUNTIME_S,
                    cost_usd,
                }
            }
        };
        let vm_index = VM_TYPES
            .iter()
            .position(|v| v.name == id.vm.name)
            .unwrap_or_default();
        by_workload
            .entry(id.workload)
            .or_default()
            .entry((id.nodes, vm_index))
            .or_default()
            .push(outcome);
    }
    if by_workload.is_empty() {
        return Err(DataError::File {
            path: root,
            problem: "no run folders found".into(),
        });
    }
    let mut workloads = Vec::new();
    for (name, configs) in by_workload {
        // Catalogue order: instance type, then cluster size.
        let mut keys: Vec<(u32, usize)> = configs.keys().copied().collect();
        keys.sort_by_key(|&(n, v)| (v, n));
        let mut dims = dimensions();
        let mut catalogue = Vec::new();
        let mut runs = Vec::new();
        for key in keys {
            let (nodes, v) = key;
            catalogue.push(config(nodes, &VM_TYPES[v]));
            runs.push(configs[&key].clone());
        }
        Space::auto_log(&mut dims, &catalogue);
        let space = Space::new(dims, catalogue).map_err(|source| DataError::Space {
            path: root.clone(),
            workload: name.clone(),
            error: source,
        })?;
        workloads.push(Workload::new(name, space, runs));
    }
    Ok(Dataset {
        name: "scout".into(),
        source: PathBuf::from(dir),
        workloads,
    })
}

/// Resource features the surrogate sees: cluster size, node size and memory per core (which
/// also tells the instance family apart: c4 1.9, m4 4, r4 7.6 GiB per vCPU).
fn dimensions() -> Vec<Dimension> {
    ["nodes", "vcpus_per_node", "ram_per_vcpu_gib"]
        .iter()
        .map(|n| Dimension {
            name: n.to_string(),
            kind: Kind::Numeric { log: false },
        })
        .collect()
}

fn config(nodes: u32, vm: &VmType) -> Config {
    Config {
        name: format!("{nodes}_{}", vm.name),
        values: vec![
            Value::Num(nodes as f64),
            Value::Num(vm.vcpus),
            Value::Num(vm.ram_gib / vm.vcpus),
        ],
        price_per_hour: vm.price_per_hour * nodes as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_parse_into_workload_keys() {
        let id = parse_run_id("10_c4.2xlarge_naive-bayes_spark1.5_bigdata_1").unwrap();
        assert_eq!(id.nodes, 10);
        assert_eq!(id.vm.name, "c4.2xlarge");
        assert_eq!(id.workload, "spark1.5_naive-bayes_bigdata");
        assert!(parse_run_id("x_c4.large_lr_spark_huge_1").is_err());
        assert!(parse_run_id("4_t2.micro_lr_spark_huge_1")
            .unwrap_err()
            .contains("t2.micro"));
        assert!(parse_run_id("4_c4.large_1").is_err());
    }

    #[test]
    fn reports_with_bad_fields_name_the_field() {
        let dir = std::env::temp_dir().join(format!("cp-scout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("report.json");
        std::fs::write(&p, r#"{"completed": true, "elapsed_time": "12.5"}"#).unwrap();
        assert_eq!(parse_report(&p).unwrap(), (true, 12.5));
        std::fs::write(&p, r#"{"completed": true}"#).unwrap();
        let e = parse_report(&p).unwrap_err().to_string();
        assert!(
            e.contains("elapsed_time") && e.contains("report.json"),
            "{e}"
        );
        std::fs::write(&p, r#"{"completed": "maybe", "elapsed_time": 3}"#).unwrap();
        assert!(parse_report(&p)
            .unwrap_err()
            .to_string()
            .contains("completed"));
        // A completed run's runtime must be one a cost can be made of; a failed run's is
        // charged the 2-hour limit whatever it says.
        std::fs::write(&p, r#"{"completed": true, "elapsed_time": 1e300}"#).unwrap();
        let e = parse_report(&p).unwrap_err().to_string();
        assert!(e.contains("elapsed_time") && e.contains("1e15"), "{e}");
        std::fs::write(&p, r#"{"completed": false, "elapsed_time": 1e300}"#).unwrap();
        assert_eq!(parse_report(&p).unwrap(), (false, 1e300));
        std::fs::write(&p, "{\n\"completed\": tru").unwrap();
        assert!(parse_report(&p).unwrap_err().to_string().contains("line 2"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
