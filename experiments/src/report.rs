//! Written reports of a comparison: summary.json, summary.md (markdown tables), traces.csv, and
//! the plain-text aggregate table printed to the terminal.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::compare::{Comparison, Summary};
use crate::metrics::{worse_at, Row, REACH_LEVELS, TIME_LEVELS};

/// Evaluation counts the tables show (those within the budget).
pub const TABLE_KS: &[usize] = &[5, 10, 15, 20, 30];

/// Error writing a report file.
#[derive(Debug, thiserror::Error)]
// Not a `source` field: the message says it already, and `{:#}` would print it twice.
#[error("{}: cannot write: {error}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

fn ks(budget: usize) -> Vec<usize> {
    let mut ks: Vec<usize> = TABLE_KS.iter().copied().filter(|&k| k <= budget).collect();
    if !ks.contains(&budget) && budget < 30 {
        ks.push(budget);
    }
    ks
}

fn f3(x: f64) -> String {
    format!("{x:.3}")
}

fn f2(x: f64) -> String {
    format!("{x:.2}")
}

/// One markdown/text table row for a ROW: cost median / p90 and P(optimum) at each k, then the stop.
fn cells(row: &Row, ks: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    for &k in ks {
        match (row.normalized_cost_at.at(k), row.p_optimum_at.at(k)) {
            (Some(q), Some(p)) => {
                out.push(format!("{} / {} / {}", f3(q.median), f3(q.p90), f2(*p)))
            }
            _ => out.push("-".into()),
        }
    }
    out.push(match &row.stop {
        Some(s) => format!(
            "{:.1} ev: {} / {} / {}, search {:.1}x",
            s.evaluations_mean,
            f3(s.normalized_cost_median),
            f3(s.normalized_cost_p90),
            f2(s.p_optimum),
            s.search_cost_normalized_median
        ),
        None => "no stop rule fired".into(),
    });
    out.push(format!("{:.3}", row.ms_per_ask_median));
    out
}

fn header(ks: &[usize]) -> Vec<String> {
    let mut h = vec!["strategy".to_string()];
    h.extend(ks.iter().map(|k| format!("@{k}")));
    h.push("at stop".into());
    h.push("ms/ask".into());
    h
}

fn markdown_table(out: &mut String, head: &[String], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(
        out,
        "|{}|",
        head.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out.push('\n');
}

/// The markdown report.
pub fn summary_markdown(cmp: &Comparison, summary: &Summary) -> String {
    let ks = ks(cmp.budget);
    let mut md = String::new();
    let _ = writeln!(md, "# Strategy comparison on `{}`\n", cmp.dataset);
    let _ = writeln!(
        md,
        "{} workloads x {} strategies x {} seeds, budget {} evaluations{}; {:.1} s wall time.\n",
        cmp.workloads.len(),
        cmp.strategies.len(),
        cmp.seeds,
        cmp.budget,
        match cmp.max_runtime_s {
            Some(t) => format!(", runtime limit {t} s"),
            None => String::new(),
        },
        cmp.wall_s
    );
    md.push_str(
        "Cells at `@k`: median / p90 of the normalised cost after k evaluations (cheapest feasible \
         configuration found so far over the workload's cheapest; failed probes count as \
         evaluations) / P(optimum found). `at stop`: mean evaluations when the strategy's stop rule \
         fired (runs where it never fired count at their end): median / p90 normalised cost / \
         P(optimum), and the median search cost (all probes paid) over the optimum's cost. \
         `ms/ask`: median time of one `ask`.\n\n",
    );
    md.push_str("## Aggregate (all runs of all workloads)\n\n");
    let rows: Vec<Vec<String>> = summary
        .aggregate
        .iter()
        .map(|a| {
            let mut r = vec![a.strategy.clone()];
            r.extend(cells(&a.row, &ks));
            r
        })
        .collect();
    markdown_table(&mut md, &header(&ks), &rows);
    md.push_str(
        "Evaluations until the best found is within 20%, within 10% and at the optimum (mean / \
         median over runs; a run that never gets there counts as budget + 1, and the share of \
         such runs is given), and the median search cost until then over the optimum's cost:\n\n",
    );
    let reach_head: Vec<String> = ["strategy", "within 20%", "within 10%", "optimum"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows: Vec<Vec<String>> = summary
        .aggregate
        .iter()
        .map(|a| {
            let mut r = vec![a.strategy.clone()];
            for (key, _) in REACH_LEVELS {
                let x = &a.row.evaluations_until[key];
                r.push(format!(
                    "{:.1} / {:.0} ({:.0}% never), search {:.1}x",
                    x.evaluations_mean,
                    x.evaluations_median,
                    x.not_reached * 100.0,
                    x.search_cost_normalized_median
                ));
            }
            r
        })
        .collect();
    markdown_table(&mut md, &reach_head, &rows);
    let _ = writeln!(
        md,
        "Simulated wall time until the best found is within 10%, within 5% and at the optimum \
         ({} probe(s) in flight at once; a probe lasts its recorded runtime plus {} s of launch \
         overhead): median / mean hours (a run that never gets there counts with its whole \
         duration; the share of such runs is given), and the median search cost until then over \
         the optimum's cost (billed by then: finished probes in full, running ones for the \
         share of their duration that had passed):\n",
        cmp.parallel, cmp.launch_overhead_s
    );
    let time_head: Vec<String> = ["strategy", "within 10%", "within 5%", "optimum"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let time_row = |label: String, row: &Row| {
        let mut r = vec![label];
        for (key, _) in TIME_LEVELS {
            let x = &row.wall_time_until[key];
            r.push(format!(
                "{:.2} / {:.2} h ({:.0}% never), search {:.1}x",
                x.seconds_median / 3600.0,
                x.seconds_mean / 3600.0,
                x.not_reached * 100.0,
                x.search_cost_normalized_median
            ));
        }
        r
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut ratios = Vec::new();
    for (i, a) in summary.aggregate.iter().enumerate() {
        rows.push(time_row(a.strategy.clone(), &a.row));
        if let Some(seq) = summary.aggregate_sequential.as_ref().and_then(|v| v.get(i)) {
            rows.push(time_row(
                format!("{}, one at a time", seq.strategy),
                &seq.row,
            ));
            let (p, q) = (
                &a.row.wall_time_until["within_5pct"],
                &seq.row.wall_time_until["within_5pct"],
            );
            ratios.push(format!(
                "- {}: until within 5%, {:.2}x the wall time and {:.2}x the search cost of one at a time; P(optimum)@{} {:.2} vs {:.2}",
                a.strategy,
                p.seconds_median / q.seconds_median,
                p.search_cost_normalized_median / q.search_cost_normalized_median,
                cmp.budget,
                a.row.p_optimum_at.at(cmp.budget).copied().unwrap_or(f64::NAN),
                seq.row.p_optimum_at.at(cmp.budget).copied().unwrap_or(f64::NAN),
            ));
        }
    }
    markdown_table(&mut md, &time_head, &rows);
    for r in &ratios {
        let _ = writeln!(md, "{r}");
    }
    if !ratios.is_empty() {
        md.push('\n');
    }
    let flags = robustness_flags(cmp);
    if !flags.is_empty() {
        md.push_str("Workloads where a model strategy's mean normalised cost is worse than a baseline's (cherrypick or random) at 10 or 15 evaluations:\n\n");
        for f in &flags {
            let _ = writeln!(md, "- {f}");
        }
        md.push('\n');
    } else if cmp.strategies.iter().any(|s| s.starts_with("bo"))
        && cmp
            .strategies
            .iter()
            .any(|s| s == "cherrypick" || s == "random")
    {
        md.push_str("No workload where `bo` is worse than cherrypick or random at 10 or 15 evaluations (mean normalised cost).\n\n");
    }
    if !cmp.inputs.is_empty() {
        md.push_str(
            "What each model strategy's surrogate sees on these catalogues (its inputs; \
             products of amounts; columns left out, and why):\n\n",
        );
        for m in &cmp.inputs {
            let on = if m.workloads.len() == cmp.workloads.len() {
                "every workload".to_string()
            } else {
                m.workloads.join(", ")
            };
            let _ = writeln!(md, "- `{}` on {on}: {}", m.strategy, m.inputs);
        }
        md.push('\n');
    }
    for (w, name) in cmp.workloads.iter().enumerate() {
        let feasible = cmp.scales[w].feasible.iter().flatten().count();
        let _ = writeln!(
            md,
            "## {name}\n\nOptimum {} USD; {}.\n",
            decimals(cmp.scales[w].optimum, 4),
            match cmp.max_runtime_s {
                Some(_) => format!("{feasible} configurations meet the limit"),
                None => format!("{feasible} configurations completed"),
            }
        );
        let rows: Vec<Vec<String>> = summary
            .results
            .iter()
            .filter(|r| &r.workload == name)
            .map(|r| {
                let mut cells_ = vec![r.strategy.clone()];
                cells_.extend(cells(&r.row, &ks));
                cells_
            })
            .collect();
        markdown_table(&mut md, &header(&ks), &rows);
    }
    md
}

/// Per workload, where a `bo` strategy's mean normalised cost after 10 or 15 evaluations is above
/// that of `cherrypick` or `random` (those compared): one line each, e.g.
/// `spark_km_huge: bo worse than cherrypick at 15 (1.08 vs 1.05)`.
pub fn robustness_flags(cmp: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    let baselines: Vec<&String> = cmp
        .strategies
        .iter()
        .filter(|s| *s == "cherrypick" || *s == "random")
        .collect();
    for (w, name) in cmp.workloads.iter().enumerate() {
        for s in cmp.strategies.iter().filter(|s| s.starts_with("bo")) {
            let mine = cmp.runs_of(Some(w), s);
            for b in &baselines {
                for (k, a, z) in worse_at(&mine, &cmp.runs_of(Some(w), b), cmp.budget) {
                    out.push(format!(
                        "{name}: {s} worse than {b} at {k} ({a:.3} vs {z:.3})"
                    ));
                }
            }
        }
    }
    out
}

/// The aggregate table as aligned plain text, for the terminal.
pub fn aggregate_text(cmp: &Comparison, summary: &Summary) -> String {
    let ks = ks(cmp.budget);
    let mut head = vec!["strategy".to_string()];
    for &k in &ks {
        head.push(format!("med@{k}"));
        head.push(format!("p90@{k}"));
        head.push(format!("P@{k}"));
    }
    head.extend(
        [
            "stop ev", "stop med", "stop p90", "stop P", "search", "ms/ask",
        ]
        .map(String::from),
    );
    let mut rows = vec![head];
    for a in &summary.aggregate {
        let mut r = vec![a.strategy.clone()];
        for &k in &ks {
            let q = a.row.normalized_cost_at.at(k);
            r.push(q.map_or("-".into(), |q| f3(q.median)));
            r.push(q.map_or("-".into(), |q| f3(q.p90)));
            r.push(a.row.p_optimum_at.at(k).map_or("-".into(), |p| f2(*p)));
        }
        match &a.row.stop {
            Some(s) => r.extend([
                format!("{:.1}", s.evaluations_mean),
                f3(s.normalized_cost_median),
                f3(s.normalized_cost_p90),
                f2(s.p_optimum),
                format!("{:.1}x", s.search_cost_normalized_median),
            ]),
            None => r.extend(["-", "-", "-", "-", "-"].map(String::from)),
        }
        r.push(format!("{:.3}", a.row.ms_per_ask_median));
        rows.push(r);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (s, w))| {
                if i == 0 {
                    format!("{s:<w$}")
                } else {
                    format!("{s:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// Writes `path` whole or not at all, never through what is there: `write` makes a hidden
/// temporary beside it (`.partial-PID-NAME`, same extension, so a plot keeps its format), which
/// is then renamed over `path`. A symlink, a hard link or a FIFO found at `path` is replaced,
/// not written through (an `--out` holding a link to the dataset read would have had the
/// dataset overwritten, and a FIFO blocked the report for ever); the temporary is removed when
/// `write` fails.
pub fn replace_file<E>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
    io_error: impl Fn(std::io::Error) -> E,
) -> Result<(), E> {
    let name = path.file_name().map_or_else(
        || std::ffi::OsString::from("output"),
        std::ffi::OsStr::to_os_string,
    );
    let mut hidden = std::ffi::OsString::from(format!(".partial-{}-", std::process::id()));
    hidden.push(&name);
    let tmp = path.with_file_name(hidden);
    let _ = std::fs::remove_file(&tmp);
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error(e)
    })
}

/// `x` with `places` decimals, or in exponent form (4 significant digits) when those decimals
/// would show a nonzero value as 0 (costs of a serverless call, in nano-dollars).
pub fn decimals(x: f64, places: usize) -> String {
    if x != 0.0 && x.abs() < 0.5 * 10f64.powi(-(places as i32)) {
        format!("{x:.3e}")
    } else {
        format!("{x:.places$}")
    }
}

/// Writes traces.csv: one row per probe per run.
pub fn write_traces(
    cmp: &Comparison,
    space_names: &[Vec<String>],
    path: &Path,
) -> Result<(), WriteError> {
    let err = |error| WriteError {
        path: path.to_path_buf(),
        error,
    };
    replace_file(
        path,
        |tmp| write_traces_to(cmp, space_names, path, tmp),
        err,
    )
}

/// [`write_traces`] into `tmp` (errors name `path`).
fn write_traces_to(
    cmp: &Comparison,
    space_names: &[Vec<String>],
    path: &Path,
    tmp: &Path,
) -> Result<(), WriteError> {
    let err = |error| WriteError {
        path: path.to_path_buf(),
        error,
    };
    let file = std::fs::File::create_new(tmp).map_err(err)?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let csv_err = |e: csv::Error| WriteError {
        path: path.to_path_buf(),
        error: std::io::Error::other(e.to_string()),
    };
    w.write_record([
        "workload",
        "strategy",
        "seed",
        "eval",
        "config",
        "status",
        "runtime_s",
        "cost",
        "best_normalized_cost",
        "ms_ask",
        "expected_improvement",
    ])
    .map_err(csv_err)?;
    for run in cmp.main_runs() {
        let names = &space_names[run.workload];
        for (i, p) in run.trace.probes.iter().enumerate() {
            let best = run
                .metrics
                .curve
                .get(i)
                .copied()
                .unwrap_or_else(|| run.metrics.curve.last().copied().unwrap_or(f64::NAN));
            w.write_record([
                cmp.workloads[run.workload].as_str(),
                run.trace.strategy.as_str(),
                &run.trace.seed.to_string(),
                &(i + 1).to_string(),
                names.get(p.config).map_or("?", String::as_str),
                p.outcome.status(),
                &decimals(p.outcome.elapsed_s(), 3),
                &decimals(p.outcome.cost_paid(), 6),
                &decimals(best, 6),
                &format!("{:.4}", p.ms_ask),
                &p.expected_improvement
                    .map_or(String::new(), |e| format!("{e:.6}")),
            ])
            .map_err(csv_err)?;
        }
    }
    let file = w
        .into_inner()
        .map_err(|e| err(std::io::Error::other(e.to_string())))?;
    file.into_inner()
        .map_err(|e| err(e.into_error()))?
        .sync_all()
        .map_err(err)
}

/// Writes `text` to `path`.
pub fn write_text(path: &Path, text: &str) -> Result<(), WriteError> {
    let err = |error| WriteError {
        path: path.to_path_buf(),
        error,
    };
    replace_file(
        path,
        |tmp| {
            let mut f = std::fs::File::create_new(tmp).map_err(err)?;
            f.write_all(text.as_bytes()).map_err(err)?;
            f.sync_all().map_err(err)
        },
        err,
    )
}

#[cfg(test)]
mod tests {
    use super::decimals;

    #[test]
    fn tiny_amounts_are_not_shown_as_zero() {
        assert_eq!(decimals(0.028842, 6), "0.028842");
        assert_eq!(decimals(387.4, 3), "387.400");
        assert_eq!(decimals(0.0, 6), "0.000000");
        assert_eq!(decimals(2.1e-9, 6), "2.100e-9");
        assert_eq!(decimals(0.0004, 3), "4.000e-4");
        // Shown with its decimals whenever they show it at all.
        assert_eq!(decimals(0.04, 3), "0.040");
        assert_eq!(decimals(4e-5, 6), "0.000040");
    }
}
