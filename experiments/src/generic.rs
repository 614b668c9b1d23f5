//! Loader for generic CSV v1 (DESIGN 4): any user's recorded runs, one row per run, with
//! `workload`, `config`, `runtime_s`, optional `cost_usd` and `completed`, and every other column
//! a feature of the configuration (numbers as numbers, text as categories).

use std::collections::BTreeMap;
use std::path::Path;

use optimizer::journal::Journal;
use optimizer::{Config, Dimension, Kind, Outcome, Space, Value};

use crate::dataset::{csv_error, open_csv, DataError, Dataset, Workload, MAX_AMOUNT, MIN_AMOUNT};

const RESERVED: &[&str] = &["workload", "config", "runtime_s", "cost_usd", "completed"];

/// One checked row.
#[derive(Debug, Clone)]
struct Row {
    line: u64,
    workload: String,
    config: String,
    runtime_s: Option<f64>,
    cost_usd: Option<f64>,
    completed: bool,
    features: Vec<String>,
}

/// Loads a generic CSV v1 file. `failed_runtime_s` is what a failed run is charged for
/// (default: the largest runtime seen in its workload).
pub fn load(path: &Path, failed_runtime_s: Option<f64>) -> Result<Dataset, DataError> {
    if let Some(t) = failed_runtime_s {
        if !(MIN_AMOUNT..=MAX_AMOUNT).contains(&t) {
            return Err(DataError::File {
                path: path.to_path_buf(),
                problem: format!(
                    "--failed-runtime must be a positive number of seconds up to 1e15, got {}",
                    optimizer::Shown(t)
                ),
            });
        }
    }
    let (mut reader, lines) = open_csv(path)?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(path, &lines, e))?
        .iter()
        .map(str::to_string)
        .collect();
    let header_err = |field: &str, problem: &str| DataError::Field {
        path: path.to_path_buf(),
        line: 1,
        field: field.to_string(),
        problem: problem.to_string(),
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let workload_col =
        col("workload").ok_or_else(|| header_err("workload", "required column missing"))?;
    let config_col =
        col("config").ok_or_else(|| header_err("config", "required column missing"))?;
    let runtime_col =
        col("runtime_s").ok_or_else(|| header_err("runtime_s", "required column missing"))?;
    let cost_col = col("cost_usd");
    let completed_col = col("completed");
    for (i, h) in headers.iter().enumerate() {
        if h.is_empty() {
            return Err(header_err(
                &format!("column {}", i + 1),
                "empty column name",
            ));
        }
        if headers[..i].contains(h) {
            return Err(header_err(h, "column appears twice"));
        }
    }
    let feature_cols: Vec<usize> = (0..headers.len())
        .filter(|&i| !RESERVED.contains(&headers[i].as_str()))
        .collect();
    if feature_cols.is_empty() {
        return Err(header_err(
            "(header)",
            "no feature columns: every column other than workload, config, runtime_s, cost_usd and completed describes the configuration, and at least one is needed",
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, &lines, e))?;
        let line = lines.of(record.position());
        let field = |i: usize, problem: String| DataError::Field {
            path: path.to_path_buf(),
            line,
            field: headers[i].clone(),
            problem,
        };
        let get = |i: usize| record.get(i).unwrap_or("");
        let required = |i: usize| -> Result<String, DataError> {
            match get(i) {
                "" => Err(field(i, "missing value".into())),
                s => Ok(s.to_string()),
            }
        };
        let number = |i: usize| -> Result<Option<f64>, DataError> {
            match get(i) {
                "" => Ok(None),
                s => match s.parse::<f64>() {
                    Ok(x) if x == 0.0 || (MIN_AMOUNT..=MAX_AMOUNT).contains(&x) => Ok(Some(x)),
                    Ok(x) if x.is_finite() && x > 0.0 => Err(field(
                        i,
                        format!(
                            "`{s}` is outside what a recorded run can hold (1e-15 to 1e15, or \
                             0): products and sums of it would not be finite"
                        ),
                    )),
                    _ => Err(field(i, format!("`{s}` is not a non-negative number"))),
                },
            }
        };
        let completed = match completed_col.map(get) {
            None | Some("") => true,
            Some(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(field(
                        completed_col.unwrap_or_default(),
                        format!("`{s}` is not true or false"),
                    ))
                }
            },
        };
        let runtime_s = number(runtime_col)?;
        if completed {
            match runtime_s {
                None => return Err(field(runtime_col, "missing for a completed run".into())),
                Some(x) if x <= 0.0 => {
                    return Err(field(
                        runtime_col,
                        "a completed run needs a runtime > 0".into(),
                    ))
                }
                _ => {}
            }
        }
        let cost_usd = cost_col.map(number).transpose()?.flatten();
        if completed && cost_usd == Some(0.0) {
            // Every normalised figure divides by the optimum's cost.
            return Err(field(
                cost_col.unwrap_or_default(),
                "a completed run needs a cost > 0".into(),
            ));
        }
        let features = feature_cols
            .iter()
            .map(|&i| {
                let v = required(i)?;
                // "nan" or "inf" would make the column a category of that name; a number that
                // is not finite is a mistake in the data, as in a space file.
                match v.parse::<f64>() {
                    Ok(x) if !x.is_finite() => {
                        Err(field(i, format!("`{v}` is not a finite number")))
                    }
                    _ => Ok(v),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(Row {
            line,
            workload: required(workload_col)?,
            config: required(config_col)?,
            runtime_s,
            cost_usd,
            completed,
            features,
        });
    }
    if rows.is_empty() {
        return Err(DataError::File {
            path: path.to_path_buf(),
            problem: "no rows: the catalogue is empty".into(),
        });
    }
    // A column is numeric when every value in it parses as a number; otherwise it is a category.
    let numeric: Vec<bool> = (0..feature_cols.len())
        .map(|j| {
            rows.iter()
                .all(|r| r.features[j].parse::<f64>().is_ok_and(f64::is_finite))
        })
        .collect();
    let feature_names: Vec<String> = feature_cols.iter().map(|&i| headers[i].clone()).collect();
    let nodes_j = feature_names.iter().position(|n| n == "nodes");
    let price_j = feature_names
        .iter()
        .position(|n| n == "price_per_node_hour");

    let mut by_workload: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in &rows {
        by_workload.entry(r.workload.clone()).or_default().push(r);
    }
    let mut workloads = Vec::new();
    for (name, wrows) in by_workload {
        // Every figure is over the cheapest completed run: without one there is nothing to
        // replay against, which is the file's fault, said here rather than mid-replay.
        if !wrows.iter().any(|r| r.completed) {
            return Err(DataError::Field {
                path: path.to_path_buf(),
                line: wrows[0].line,
                field: "completed".into(),
                problem: format!(
                    "workload `{name}` has no completed run: costs are measured against the \
                     cheapest completed one"
                ),
            });
        }
        // Configurations in first-appearance order; repeated rows are repeated runs.
        let mut order: Vec<&str> = Vec::new();
        let mut groups: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
        for r in &wrows {
            let g = groups.entry(r.config.as_str()).or_default();
            if g.is_empty() {
                order.push(r.config.as_str());
            } else if g[0].features != r.features {
                let j = (0..r.features.len())
                    .find(|&j| g[0].features[j] != r.features[j])
                    .unwrap_or_default();
                return Err(DataError::Field {
                    path: path.to_path_buf(),
                    line: r.line,
                    field: feature_names[j].clone(),
                    problem: format!(
                        "config `{}` has `{}` here but `{}` on line {}: a configuration's features must not change between its runs",
                        r.config, r.features[j], g[0].features[j], g[0].line
                    ),
                });
            }
            g.push(r);
        }
        let failed_runtime = failed_runtime_s
            .unwrap_or_else(|| wrows.iter().filter_map(|r| r.runtime_s).fold(0.0, f64::max));
        let mut dims: Vec<Dimension> = feature_names
            .iter()
            .enumerate()
            .map(|(j, n)| Dimension {
                name: n.clone(),
                kind: if numeric[j] {
                    Kind::Numeric { log: false }
                } else {
                    let mut levels: Vec<String> =
                        wrows.iter().map(|r| r.features[j].clone()).collect();
                    levels.sort();
                    levels.dedup();
                    Kind::Categorical { levels }
                },
            })
            .collect();
        let mut catalogue = Vec::new();
        let mut outcomes = Vec::new();
        for cname in order {
            let runs = &groups[cname];
            let first = runs[0];
            let price = price_of(path, first, runs, nodes_j, price_j, &feature_names)?;
            if failed_runtime <= 0.0 && runs.iter().any(|r| !r.completed) {
                return Err(DataError::Field {
                    path: path.to_path_buf(),
                    line: first.line,
                    field: "runtime_s".into(),
                    problem: format!(
                        "workload `{name}` has no runtime to charge failed runs with: pass --failed-runtime"
                    ),
                });
            }
            catalogue.push(Config {
                name: cname.to_string(),
                values: first
                    .features
                    .iter()
                    .enumerate()
                    .map(|(j, s)| match (numeric[j], s.parse::<f64>()) {
                        (true, Ok(x)) => Value::Num(x),
                        _ => Value::Cat(s.clone()),
                    })
                    .collect(),
                price_per_hour: price,
            });
            outcomes.push(
                runs.iter()
                    .map(|r| match (r.completed, r.runtime_s) {
                        (true, Some(runtime_s)) => Outcome::Completed {
                            runtime_s,
                            cost_usd: r.cost_usd.unwrap_or(price * runtime_s / 3600.0),
                            metrics: Default::default(),
                        },
                        _ => Outcome::Failed {
                            reason: format!("recorded as failed (line {})", r.line),
                            elapsed_s: failed_runtime,
                            cost_usd: price * failed_runtime / 3600.0,
                        },
                    })
                    .collect(),
            );
        }
        Space::auto_log(&mut dims, &catalogue);
        let space = Space::new(dims, catalogue).map_err(|source| DataError::Space {
            path: path.to_path_buf(),
            workload: name.clone(),
            error: source,
        })?;
        workloads.push(Workload::new(name, space, outcomes));
    }
    Ok(Dataset {
        name: path.display().to_string(),
        source: path.to_path_buf(),
        workloads,
    })
}

/// Price per hour of the whole cluster: `nodes * price_per_node_hour` when both columns exist,
/// else derived from the recorded cost and runtime of the configuration's completed runs.
fn price_of(
    path: &Path,
    first: &Row,
    runs: &[&Row],
    nodes_j: Option<usize>,
    price_j: Option<usize>,
    names: &[String],
) -> Result<f64, DataError> {
    let bad = |j: usize, problem: String| DataError::Field {
        path: path.to_path_buf(),
        line: first.line,
        field: names[j].clone(),
        problem,
    };
    if let (Some(n), Some(p)) = (nodes_j, price_j) {
        let nodes: f64 = first.features[n]
            .parse()
            .map_err(|_| bad(n, format!("`{}` is not a number", first.features[n])))?;
        let per_node: f64 = first.features[p]
            .parse()
            .map_err(|_| bad(p, format!("`{}` is not a number", first.features[p])))?;
        if !(nodes > 0.0 && (MIN_AMOUNT..=MAX_AMOUNT).contains(&nodes)) {
            return Err(bad(
                n,
                format!("`{}` nodes: must be a positive count", first.features[n]),
            ));
        }
        let price = nodes * per_node;
        if !(per_node > 0.0 && (MIN_AMOUNT..=MAX_AMOUNT).contains(&price)) {
            return Err(bad(
                p,
                format!(
                    "`{}` per node-hour x {} nodes: the cluster's price per hour must be \
                     positive and at most 1e15",
                    first.features[p], first.features[n],
                ),
            ));
        }
        return Ok(price);
    }
    let rates: Vec<f64> = runs
        .iter()
        .filter_map(|r| match (r.completed, r.runtime_s, r.cost_usd) {
            (true, Some(t), Some(c)) if t > 0.0 && c > 0.0 => Some(c * 3600.0 / t),
            _ => None,
        })
        .collect();
    if rates.is_empty() {
        return Err(DataError::Field {
            path: path.to_path_buf(),
            line: first.line,
            field: "cost_usd".into(),
            problem: format!(
                "cannot price config `{}`: give cost_usd on a completed run, or `nodes` and `price_per_node_hour` columns",
                first.config
            ),
        });
    }
    let price = rates.iter().sum::<f64>() / rates.len() as f64;
    if !(MIN_AMOUNT..=MAX_AMOUNT).contains(&price) {
        return Err(DataError::Field {
            path: path.to_path_buf(),
            line: first.line,
            field: "cost_usd".into(),
            problem: format!(
                "config `{}`: cost_usd x 3600 / runtime_s gives a price of {} per hour, outside \
                 1e-15 to 1e15",
                first.config,
                optimizer::Shown(price),
            ),
        });
    }
    Ok(price)
}

// ---------------------------------------------------------------------------------------------
// The writer

/// Writes a search journal as generic CSV v1 (what [`load`] reads): workload, config, runtime_s, cost_usd, completed, then the configuration's
/// features (its dimensions, plus `nodes` = 1 and `price_per_node_hour` = its price per hour, so
/// a reader can charge failed runs).
pub fn journal_to_csv(journal: &Journal, workload: &str) -> Result<String, DataError> {
    let space = &journal.header.space;
    let mut out = String::new();
    let mut header = vec![
        "workload".to_string(),
        "config".into(),
        "runtime_s".into(),
        "cost_usd".into(),
        "completed".into(),
    ];
    // A dimension named like a column of the format (`nodes`, say) is written as
    // `dimension_<name>`: the same header twice is a file no reader takes.
    const COLUMNS: [&str; 7] = [
        "workload",
        "config",
        "runtime_s",
        "cost_usd",
        "completed",
        "nodes",
        "price_per_node_hour",
    ];
    // A reader trims header fields: a name blank or with spaces at its ends (only a hand edit
    // makes one) would not read back as itself.
    if let Some(d) = space
        .dimensions
        .iter()
        .find(|d| d.name.is_empty() || d.name.trim() != d.name)
    {
        return Err(DataError::File {
            path: std::path::PathBuf::from("journal header"),
            problem: format!(
                "dimension name {:?} is blank or has spaces at its ends: a CSV reader would not \
                 read its column back",
                d.name
            ),
        });
    }
    // The renamed ones avoid every name taken, a dimension really called `dimension_nodes`
    // included (then `dimension_nodes_2`, ...).
    let mut taken: std::collections::HashSet<&str> = COLUMNS.into_iter().collect();
    taken.extend(space.dimensions.iter().map(|d| d.name.as_str()));
    let mut renamed: std::collections::HashSet<String> = std::collections::HashSet::new();
    header.extend(space.dimensions.iter().map(|d| {
        if !COLUMNS.contains(&d.name.as_str()) {
            return d.name.clone();
        }
        let base = format!("dimension_{}", d.name);
        let mut name = base.clone();
        let mut n = 1;
        while taken.contains(name.as_str()) || renamed.contains(&name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        renamed.insert(name.clone());
        name
    }));
    header.push("nodes".into());
    header.push("price_per_node_hour".into());
    push_row(&mut out, &header);
    let by_name: std::collections::HashMap<&str, &Config> =
        space.configs.iter().map(|c| (c.name.as_str(), c)).collect();
    for r in &journal.records {
        let config = by_name
            .get(r.config.as_str())
            .ok_or_else(|| DataError::File {
                path: std::path::PathBuf::from(format!("journal probe {}", r.index)),
                problem: format!(
                    "names configuration `{}`, which is not in the journal's space",
                    r.config
                ),
            })?;
        let (runtime, cost, completed) = match &r.outcome {
            Outcome::Completed {
                runtime_s,
                cost_usd,
                ..
            } => (runtime_s.to_string(), cost_usd.to_string(), "true"),
            // The format's rule: a failed run's runtime is blank (a replay charges it
            // `--failed-runtime`, by default the workload's longest completed runtime; what it
            // ran and cost stays in the journal).
            _ => (String::new(), String::new(), "false"),
        };
        let mut row = vec![
            workload.to_string(),
            r.config.clone(),
            runtime,
            cost,
            completed.to_string(),
        ];
        row.extend(config.values.iter().map(|v| v.to_string()));
        row.push("1".into());
        row.push(config.price_per_hour.to_string());
        push_row(&mut out, &row);
    }
    Ok(out)
}

fn push_row(out: &mut String, fields: &[String]) {
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect();
    out.push_str(&quoted.join(","));
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cp-generic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn loads_repeats_categories_failures_and_computed_costs() {
        let p = write(
            "ok.csv",
            "workload,config,runtime_s,completed,nodes,price_per_node_hour,family\n\
             w,a,100,true,2,0.5,c\n\
             w,a,300,,2,0.5,c\n\
             w,b,,false,4,0.5,m\n\
             v,a,50,true,1,1.0,c\n",
        );
        let d = load(&p, None).unwrap();
        assert_eq!(d.workloads.len(), 2);
        let w = &d.workloads[d.workload_index("w").unwrap()];
        assert_eq!(w.space.len(), 2);
        assert_eq!(w.runs[0].len(), 2, "repeated rows are repeated runs");
        assert!((w.space.config(0).price_per_hour - 1.0).abs() < 1e-12);
        assert!((w.runs[0][0].cost_paid() - 100.0 / 3600.0).abs() < 1e-12);
        // Failed run charged the workload's largest runtime (300 s) at 2 USD/h.
        assert_eq!(w.runs[1][0].elapsed_s(), 300.0);
        assert!((w.runs[1][0].cost_paid() - 2.0 * 300.0 / 3600.0).abs() < 1e-12);
        assert!(matches!(
            w.space.dimensions()[w.space.dimension_index("family").unwrap()].kind,
            Kind::Categorical { .. }
        ));
        let d = load(&p, Some(1000.0)).unwrap();
        assert_eq!(
            d.workloads[d.workload_index("w").unwrap()].runs[1][0].elapsed_s(),
            1000.0
        );
    }

    #[test]
    fn bad_files_name_file_line_and_field() {
        let cases = [
            (
                "nohdr.csv",
                "workload,config,nodes\nw,a,1\n",
                "line 1",
                "runtime_s",
            ),
            (
                "badnum.csv",
                "workload,config,runtime_s,cost_usd,x\nw,a,10,1,1\nw,b,ten,1,2\n",
                "line 3",
                "runtime_s",
            ),
            (
                "nocost.csv",
                "workload,config,runtime_s,x\nw,a,10,1\n",
                "line 2",
                "cost_usd",
            ),
            (
                "featchange.csv",
                "workload,config,runtime_s,cost_usd,x\nw,a,10,1,1\nw,a,12,1,2\n",
                "line 3",
                "`x`",
            ),
            (
                "blank.csv",
                "workload,config,runtime_s,cost_usd,x\nw,,10,1,1\n",
                "line 2",
                "`config`",
            ),
            (
                "completed.csv",
                "workload,config,runtime_s,cost_usd,completed,x\nw,a,10,1,maybe,1\n",
                "line 2",
                "`completed`",
            ),
            (
                "ragged.csv",
                "workload,config,runtime_s,cost_usd,x\nw,a,10,1\n",
                "line 2",
                "",
            ),
            (
                "empty.csv",
                "workload,config,runtime_s,cost_usd,x\n",
                "empty",
                "",
            ),
            (
                "freecost.csv",
                "workload,config,runtime_s,cost_usd,x\nw,a,10,1,1\nw,b,10,0,2\n",
                "line 3",
                "cost > 0",
            ),
            (
                "nanfeature.csv",
                "workload,config,runtime_s,cost_usd,x\nw,a,10,1,1\nw,b,10,1,NaN\n",
                "line 3",
                "not a finite number",
            ),
            // Amounts whose products or quotients would not be finite.
            (
                "hugeruntime.csv",
                "workload,config,runtime_s,cost_usd,x\nw,a,10,1,1\nw,b,1e308,1,2\n",
                "line 3",
                "outside what a recorded run can hold",
            ),
            (
                "tinycost.csv",
                "workload,config,runtime_s,cost_usd,x\nw,a,10,1,1\nw,b,10,5e-324,2\n",
                "line 3",
                "outside what a recorded run can hold",
            ),
            (
                "negnodes.csv",
                "workload,config,runtime_s,cost_usd,nodes,price_per_node_hour\nw,a,10,,-2,-0.5\n",
                "line 2",
                "must be a positive count",
            ),
            (
                "hugeprice.csv",
                "workload,config,runtime_s,cost_usd,nodes,price_per_node_hour\nw,a,10,,2,1e308\n",
                "line 2",
                "positive and at most 1e15",
            ),
            (
                "allfailed.csv",
                "workload,config,runtime_s,cost_usd,completed,x\nw,a,10,1,true,1\n\
                 v,a,10,1,false,1\nv,b,12,1,false,2\n",
                "line 3",
                "workload `v` has no completed run",
            ),
            // Blank lines before the bad row count as lines.
            (
                "blanklines.csv",
                "workload,config,runtime_s,cost_usd,x\nw,a,10,1,1\n\n\n\nw,b,ten,1,2\n",
                "line 6",
                "runtime_s",
            ),
        ];
        for (name, text, want1, want2) in cases {
            let p = write(name, text);
            let e = load(&p, None).unwrap_err().to_string();
            assert!(
                e.contains(name) && e.contains(want1) && e.contains(want2),
                "{name}: {e}"
            );
            // The same file with CRLF line endings (Excel's, Python's `csv` module's) names the
            // same line: the csv crate's own count is one short there.
            let crlf = format!("crlf-{name}");
            let p = write(&crlf, &text.replace('\n', "\r\n"));
            let e = load(&p, None).unwrap_err().to_string();
            assert!(
                e.contains(&crlf) && e.contains(want1) && e.contains(want2),
                "{crlf}: {e}"
            );
            // And with the old Mac's lone CRs.
            let cr = format!("cr-{name}");
            let p = write(&cr, &text.replace('\n', "\r"));
            let e = load(&p, None).unwrap_err().to_string();
            assert!(
                e.contains(&cr) && e.contains(want1) && e.contains(want2),
                "{cr}: {e}"
            );
        }
    }

    #[test]
    fn a_journal_written_as_csv_reads_back() {
        use optimizer::journal::{Header, ProbeRecord, Step};
        let dims = vec![
            Dimension {
                // Named like a column of the format: written as `dimension_nodes`, or as the
                // next free name when a dimension has that one.
                name: "nodes".into(),
                kind: Kind::Numeric { log: false },
            },
            Dimension {
                name: "dimension_nodes".into(),
                kind: Kind::Numeric { log: false },
            },
        ];
        let configs: Vec<Config> = [2.0, 4.0]
            .iter()
            .map(|&w| Config {
                name: format!("w{w}"),
                values: vec![Value::Num(w), Value::Num(10.0 * w)],
                price_per_hour: 0.5 * w,
            })
            .collect();
        let space = Space::new(dims, configs).unwrap();
        let probe = |index: usize, config: &str, outcome: Outcome| ProbeRecord {
            index,
            config: config.into(),
            outcome,
            started: String::new(),
            finished: String::new(),
            expected_improvement: None,
            log: None,
            launch: None,
            billed_usd: None,
        };
        let journal = Journal {
            header: Header::new(&space, "grid", 1, serde_json::Value::Null),
            launches: Vec::new(),
            abandoned: Vec::new(),
            resumes: Vec::new(),
            stopped: None,
            order: vec![Step::Record(0), Step::Record(1)],
            records: vec![
                probe(
                    0,
                    "w2",
                    Outcome::Completed {
                        runtime_s: 36.0,
                        cost_usd: 0.01,
                        metrics: BTreeMap::new(),
                    },
                ),
                probe(
                    1,
                    "w4",
                    Outcome::Failed {
                        reason: "boom, \"quoted\"".into(),
                        elapsed_s: 5.0,
                        cost_usd: 0.003,
                    },
                ),
            ],
            torn_tail: false,
            valid_len: 0,
        };
        let text = journal_to_csv(&journal, "flowers").unwrap();
        assert!(
            text.starts_with(
                "workload,config,runtime_s,cost_usd,completed,dimension_nodes_2,\
                 dimension_nodes,nodes,price_per_node_hour\n"
            ),
            "{text}"
        );
        // A failed probe's runtime and cost are blank, as the format has them: a replay
        // charges it the longest completed runtime, 36 s, not what it ran before failing.
        assert!(text.contains("\nflowers,w4,,,false,4,40,1,2\n"), "{text}");
        let p = write("from-journal.csv", &text);
        let d = load(&p, None).unwrap();
        assert_eq!(d.workloads.len(), 1);
        assert_eq!(d.workloads[0].space.len(), 2);
        let failed = d.workloads[0].space.find("w4").unwrap();
        assert_eq!(d.workloads[0].runs[failed][0].elapsed_s(), 36.0);
        // A hand-edited dimension name the reader would trim is refused.
        let mut edited = journal.clone();
        edited.header.space.dimensions[0].name = " nodes".into();
        let e = journal_to_csv(&edited, "flowers").unwrap_err().to_string();
        assert!(
            e.contains("dimension name \" nodes\" is blank or has spaces"),
            "{e}"
        );
    }
}
