//! The CherryPick paper (NSDI 2017) on its own recorded runs: Table 1 (spread of cost across
//! configurations) and the `cherrypick`/`bo` strategies at their stop beside the published figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::cherrypick::{files, read_runs};
use crate::compare::{Comparison, Summary};
use crate::dataset::DataError;

/// Table 1 of the paper: (workload file name, paper's name, Avg/min, Max/min).
pub const PAPER_TABLE1: &[(&str, &str, f64, f64)] = &[
    ("tpcds", "TPC-DS", 3.4, 9.6),
    ("tpch", "TPC-H", 2.9, 12.0),
    ("spark", "SparkReg", 2.6, 5.2),
    ("terasort", "TeraSort", 1.6, 3.0),
];

/// The paper's headline figures at the stop rule (section 6).
pub const PAPER_STOP: &str = "exact optimum in 45-90% of runs; median within 5% of optimal; \
p90 0-38% above optimal by workload; search 6-9x cheaper than exhaustive";

/// One workload's line of Table 1 as measured from the data.
#[derive(Debug, Clone, PartialEq)]
pub struct Table1Row {
    pub workload: String,
    /// The paper's name and figures, when the paper lists the workload.
    pub paper: Option<(&'static str, f64, f64)>,
    pub configs: usize,
    pub min_cost: f64,
    pub avg_over_min: f64,
    pub max_over_min: f64,
}

/// Computes Table 1 from the CP CSVs in `dir` with the authors' cost model, dropping 16-core
/// clusters unless `keep_16_core`.
pub fn table1(dir: &Path, keep_16_core: bool) -> Result<Vec<Table1Row>, DataError> {
    let mut out = Vec::new();
    for (name, path) in files(dir)? {
        // Repeated (vm, count, disk) rows are runs of one configuration, as the loader groups
        // them: each configuration counts once, at its mean cost.
        let mut runs: BTreeMap<(String, u32, String), Vec<f64>> = BTreeMap::new();
        for r in read_runs(&path)?
            .iter()
            .filter(|r| keep_16_core || r.cores() != 16)
        {
            runs.entry((r.vm_name.clone(), r.count, r.disk_name.clone()))
                .or_default()
                .push(r.cost_usd());
        }
        let costs: Vec<f64> = runs
            .values()
            .map(|c| c.iter().sum::<f64>() / c.len() as f64)
            .collect();
        if costs.is_empty() {
            return Err(DataError::File {
                path,
                problem: "no runs left after the 16-core filter".into(),
            });
        }
        let min = costs.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = costs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let avg = costs.iter().sum::<f64>() / costs.len() as f64;
        out.push(Table1Row {
            paper: PAPER_TABLE1
                .iter()
                .find(|p| p.0 == name)
                .map(|p| (p.1, p.2, p.3)),
            workload: name,
            configs: costs.len(),
            min_cost: min,
            avg_over_min: avg / min,
            max_over_min: max / min,
        });
    }
    Ok(out)
}

/// Table 1 as a markdown table.
pub fn table1_markdown(rows: &[Table1Row]) -> String {
    let mut s = String::from(
        "| workload | paper name | configs | min cost (USD) | Avg/min | Max/min | paper Avg/min | paper Max/min |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (pname, pavg, pmax) = match r.paper {
            Some((n, a, m)) => (n.to_string(), format!("{a}"), format!("{m}")),
            None => ("(not in Table 1)".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.4} | {:.2} | {:.2} | {} | {} |",
            r.workload, pname, r.configs, r.min_cost, r.avg_over_min, r.max_over_min, pavg, pmax
        );
    }
    s
}

/// Whether a strategy's stop rule is one to set beside the paper's: `cherrypick`, `bo` and
/// their variants (`bo:key=value...`); the baselines have none.
pub fn has_stop_to_compare(strategy: &str) -> bool {
    matches!(strategy.split(':').next(), Some("cherrypick" | "bo"))
}

/// The stop-rule figures of the `cherrypick` and `bo` strategies and their variants (whichever
/// ran) per workload, beside the paper's published ones, as markdown. Empty when none ran.
pub fn stop_comparison_markdown(cmp: &Comparison, summary: &Summary) -> String {
    let wanted: Vec<&str> = cmp
        .strategies
        .iter()
        .map(String::as_str)
        .filter(|s| has_stop_to_compare(s))
        .collect();
    if wanted.is_empty() {
        return String::new();
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Beside the CherryPick paper (its own data, authors' cost model, 16-core clusters dropped)\n\n\
         Paper: {PAPER_STOP}. Here: {} seeds per workload; `exhaustive` is the cost of running \
         every configuration once over the optimum's cost.\n",
        cmp.seeds
    );
    s.push_str("| workload | strategy | evaluations at stop (mean) | P(optimum) at stop | median cost / optimum | p90 cost / optimum | search cost / optimum (median) | exhaustive / optimum | cheaper than exhaustive |\n|---|---|---|---|---|---|---|---|---|\n");
    let mut lines = Vec::new();
    for (w, name) in cmp.workloads.iter().enumerate() {
        let scale = &cmp.scales[w];
        let exhaustive: f64 = scale.feasible.iter().flatten().sum::<f64>() / scale.optimum;
        for strategy in &wanted {
            let Some(r) = summary
                .results
                .iter()
                .find(|r| &r.workload == name && r.strategy == *strategy)
            else {
                continue;
            };
            lines.push(match &r.row.stop {
                Some(st) => format!(
                    "| {name} | {strategy} | {:.1} | {:.0}% | {:.3} | {:.3} | {:.1}x | {:.1}x | {:.1}x |",
                    st.evaluations_mean,
                    st.p_optimum * 100.0,
                    st.normalized_cost_median,
                    st.normalized_cost_p90,
                    st.search_cost_normalized_median,
                    exhaustive,
                    exhaustive / st.search_cost_normalized_median.max(f64::MIN_POSITIVE)
                ),
                None => format!(
                    "| {name} | {strategy} | stop rule never fired | - | - | - | - | {exhaustive:.1}x | - |"
                ),
            });
        }
    }
    for l in lines {
        let _ = writeln!(s, "{l}");
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration run twice counts once in Table 1, at its mean cost, as in the replays.
    #[test]
    fn a_configuration_run_twice_counts_once_at_its_mean_cost() {
        let dir = std::env::temp_dir().join(format!("cp-paper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let head = "num_machines,time,vm_name,cpu_count,ram,vm_speed,vm_cost,disk_name,\
                    disk_speed,disk_cost,disk_size\n";
        let row = |n: u32, time: f64| format!("{n},{time},c4.large,2,3.75,fast,0.1,ebs,slow,0,0\n");
        let text = format!("{head}{}{}{}", row(2, 100.0), row(4, 100.0), row(2, 300.0));
        std::fs::write(dir.join("CP_w.csv"), text).unwrap();
        let rows = table1(&dir, true).unwrap();
        assert_eq!(rows[0].configs, 2);
        // Costs: 2 machines at a mean 200 s, 4 machines at 100 s: the same, so the min is both.
        let per_second = 0.1 / 3600.0;
        assert!((rows[0].min_cost - 2.0 * per_second * 200.0).abs() < 1e-12);
        assert!((rows[0].max_over_min - 1.0).abs() < 1e-12);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
