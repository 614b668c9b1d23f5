//! Loader for CherryPick's own recorded runs (`CP_<workload>.csv`), with the authors' cost model
//! and their filter that drops 16-core clusters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use optimizer::{Config, Dimension, Kind, Outcome, Space, Value};

use crate::dataset::{
    csv_error, list_dir, open_csv, DataError, Dataset, Workload, MAX_AMOUNT, MIN_AMOUNT,
};

/// One row of a CP CSV, already checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CpRun {
    pub count: u32,
    pub vm_name: String,
    pub cpu_count: u32,
    pub ram_gib: f64,
    pub vm_fast: bool,
    pub vm_cost: f64,
    pub disk_name: String,
    pub disk_fast: bool,
    pub disk_cost: f64,
    pub disk_size: f64,
    pub time_s: f64,
}

impl CpRun {
    /// Cluster price per hour in the authors' model: VMs plus EBS storage (USD per GB-month
    /// spread over 720 hours).
    pub fn price_per_hour(&self) -> f64 {
        self.count as f64 * (self.vm_cost + self.disk_cost * self.disk_size / 720.0)
    }
    /// cost = count * (vm_cost + disk_cost*disk_size/720) / 3600 * time.
    pub fn cost_usd(&self) -> f64 {
        self.price_per_hour() / 3600.0 * self.time_s
    }
    /// Total cores of the cluster; the authors drop clusters with exactly 16.
    pub fn cores(&self) -> u64 {
        u64::from(self.count) * u64::from(self.cpu_count)
    }
}

const COLUMNS: &[&str] = &[
    "num_machines",
    "time",
    "vm_name",
    "cpu_count",
    "ram",
    "vm_speed",
    "vm_cost",
    "disk_name",
    "disk_speed",
    "disk_cost",
    "disk_size",
];

/// Reads every row of one CP CSV (no filtering).
pub fn read_runs(path: &Path) -> Result<Vec<CpRun>, DataError> {
    let (mut reader, lines) = open_csv(path)?;
    let headers = reader
        .headers()
        .map_err(|e| csv_error(path, &lines, e))?
        .clone();
    let mut index = BTreeMap::new();
    for col in COLUMNS {
        let i = headers
            .iter()
            .position(|h| h == *col)
            .ok_or_else(|| DataError::Field {
                path: path.to_path_buf(),
                line: 1,
                field: col.to_string(),
                problem: "column missing from the header".into(),
            })?;
        index.insert(*col, i);
    }
    let mut runs = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, &lines, e))?;
        let line = lines.of(record.position());
        let field = |name: &str, problem: String| DataError::Field {
            path: path.to_path_buf(),
            line,
            field: name.to_string(),
            problem,
        };
        let text = |name: &str| -> Result<&str, DataError> {
            match record.get(index[name]) {
                Some(s) if !s.is_empty() => Ok(s),
                _ => Err(field(name, "missing value".into())),
            }
        };
        let num = |name: &str, min_exclusive: Option<f64>| -> Result<f64, DataError> {
            let s = text(name)?;
            let x: f64 = s
                .parse()
                .map_err(|_| field(name, format!("`{s}` is not a number")))?;
            if !x.is_finite() || min_exclusive.is_some_and(|m| x <= m) || x < 0.0 {
                return Err(field(name, format!("{x} is out of range")));
            }
            // Amounts that would overflow a cost or a sum of them (the generic CSV's range).
            if x != 0.0 && !(MIN_AMOUNT..=MAX_AMOUNT).contains(&x) {
                return Err(field(
                    name,
                    format!("`{s}` is outside what a recorded run can hold (1e-15 to 1e15)"),
                ));
            }
            Ok(x)
        };
        let int = |name: &str| -> Result<u32, DataError> {
            let s = text(name)?;
            s.parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| field(name, format!("`{s}` is not a positive integer")))
        };
        let speed = |name: &str| -> Result<bool, DataError> {
            match text(name)? {
                "fast" => Ok(true),
                "slow" => Ok(false),
                s => Err(field(name, format!("`{s}` is neither fast nor slow"))),
            }
        };
        runs.push(CpRun {
            count: int("num_machines")?,
            vm_name: text("vm_name")?.to_string(),
            cpu_count: int("cpu_count")?,
            ram_gib: num("ram", Some(0.0))?,
            vm_fast: speed("vm_speed")?,
            vm_cost: num("vm_cost", Some(0.0))?,
            disk_name: text("disk_name")?.to_string(),
            disk_fast: speed("disk_speed")?,
            disk_cost: num("disk_cost", None)?,
            disk_size: num("disk_size", None)?,
            time_s: num("time", Some(0.0))?,
        });
    }
    Ok(runs)
}

/// The CP CSV files in `dir`, as (workload name, path), in name order.
pub fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    let out: Vec<(String, PathBuf)> = list_dir(dir)?
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let w = name.strip_prefix("CP_")?.strip_suffix(".csv")?.to_string();
            Some((w, p))
        })
        .collect();
    if out.is_empty() {
        return Err(DataError::File {
            path: dir.to_path_buf(),
            problem: "no CP_<workload>.csv files found".into(),
        });
    }
    Ok(out)
}

/// Loads every `CP_<workload>.csv` in `dir`; drops 16-core clusters unless `keep_16_core`.
pub fn load(dir: &Path, keep_16_core: bool) -> Result<Dataset, DataError> {
    let mut workloads = Vec::new();
    for (name, path) in files(dir)? {
        let runs: Vec<CpRun> = read_runs(&path)?
            .into_iter()
            .filter(|r| keep_16_core || r.cores() != 16)
            .collect();
        // Repeated (count, vm, disk) rows would be repeated runs of one configuration.
        let mut grouped: BTreeMap<(String, u32, String), Vec<CpRun>> = BTreeMap::new();
        for r in runs {
            grouped
                .entry((r.vm_name.clone(), r.count, r.disk_name.clone()))
                .or_default()
                .push(r);
        }
        let mut dims: Vec<Dimension> = [
            "count",
            "cpu_count",
            "ram_per_core_gib",
            "vm_speed",
            "disk_speed",
        ]
        .iter()
        .map(|n| Dimension {
            name: n.to_string(),
            kind: Kind::Numeric { log: false },
        })
        .collect();
        let mut catalogue = Vec::new();
        let mut outcomes = Vec::new();
        let mut names = std::collections::HashSet::new();
        for ((vm, count, disk), rs) in grouped {
            let r = &rs[0];
            let mut cname = format!("{count}_{vm}");
            if !names.insert(cname.clone()) {
                cname = format!("{count}_{vm}_{disk}");
            }
            catalogue.push(Config {
                name: cname,
                values: vec![
                    Value::Num(count as f64),
                    Value::Num(r.cpu_count as f64),
                    Value::Num(r.ram_gib / r.cpu_count as f64),
                    Value::Num(if r.vm_fast { 1.0 } else { 0.0 }),
                    Value::Num(if r.disk_fast { 1.0 } else { 0.0 }),
                ],
                price_per_hour: r.price_per_hour(),
            });
            outcomes.push(
                rs.iter()
                    .map(|r| Outcome::Completed {
                        runtime_s: r.time_s,
                        cost_usd: r.cost_usd(),
                        metrics: Default::default(),
                    })
                    .collect(),
            );
        }
        Space::auto_log(&mut dims, &catalogue);
        let space = Space::new(dims, catalogue).map_err(|source| DataError::Space {
            path: path.clone(),
            workload: name.clone(),
            error: source,
        })?;
        workloads.push(Workload::new(name, space, outcomes));
    }
    Ok(Dataset {
        name: "cherrypick".into(),
        source: dir.to_path_buf(),
        workloads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "num_machines,time,vm_name,cpu_count,ram,vm_speed,vm_cost,disk_name,\
                          disk_speed,disk_cost,disk_size\n";

    fn write(name: &str, rows: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cp-cherrypick-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, format!("{HEADER}{rows}")).unwrap();
        p
    }

    /// Amounts a cost would overflow on are refused naming line and field, like the generic
    /// CSV's; counts whose product passes 32 bits still count cores (no wrap, no panic).
    #[test]
    fn amounts_out_of_range_name_line_and_field() {
        let good = "4,100,c4.large,2,3.75,fast,0.1,ebs,slow,0.1,100\n";
        let p = write("good.csv", good);
        assert_eq!(read_runs(&p).unwrap().len(), 1);
        for (row, field) in [
            (
                "4,1e300,c4.large,2,3.75,fast,0.1,ebs,slow,0.1,100\n",
                "time",
            ),
            (
                "4,100,c4.large,2,3.75,fast,1e16,ebs,slow,0.1,100\n",
                "vm_cost",
            ),
            ("4,100,c4.large,2,1e-300,fast,0.1,ebs,slow,0.1,100\n", "ram"),
        ] {
            let p = write("bad.csv", &format!("{good}{row}"));
            let e = read_runs(&p).unwrap_err().to_string();
            assert!(
                e.contains("bad.csv")
                    && e.contains("line 3")
                    && e.contains(&format!("`{field}`"))
                    && e.contains("1e-15 to 1e15"),
                "{e}"
            );
        }
        let p = write(
            "big.csv",
            "4000000000,100,c4.large,8,3.75,fast,0.1,ebs,slow,0.1,100\n",
        );
        assert_eq!(read_runs(&p).unwrap()[0].cores(), 32_000_000_000);
        std::fs::remove_dir_all(p.parent().unwrap()).ok();
    }
}
