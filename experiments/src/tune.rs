//! Cross-validated choice of a strategy's settings: every candidate (a strategy spelled
//! `bo:key=value...`) is replayed on every workload of every dataset given; the workloads are
//! split into folds; for each fold the candidate with the best score on the *other* folds is
//! chosen, and only its runs on the held-out fold are reported. Pooled over the folds, that is
//! the held-out quality of the whole procedure "choose the settings on data, then use them on a
//! workload never seen", which is what a user gets. Baselines without settings are reported on
//! the same workloads beside it.
//!
//! The score a candidate is chosen by is the mean over workloads (each weighted equally) of the
//! mean over runs of the area under ln(normalised best cost) for k = 1..budget: lower is better,
//! every evaluation counts, and it needs no threshold of its own.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::compare::{run_compare, CompareError, CompareOptions};
use crate::dataset::Dataset;
use crate::metrics::{worse_at, Row, RunMetrics};

/// Format tag of tune's summary.json.
pub const TUNE_FORMAT: &str = "cherrypick.tune/1";

/// How workloads are split into folds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Folds {
    /// K folds, workloads dealt in turn (datasets one after another, workloads by name).
    K(usize),
    /// One fold per dataset: every setting is chosen on the other datasets.
    Datasets,
}

/// What to tune and on what.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    /// The settings to choose among (strategy names with `:key=value` options).
    pub candidates: Vec<String>,
    /// Strategies reported beside the chosen one (no settings chosen).
    pub baselines: Vec<String>,
    pub folds: Folds,
    pub seeds: u64,
    pub budget: usize,
    pub threads: usize,
}

/// One workload of the pooled set, with its fold.
#[derive(Debug, Clone, Serialize)]
pub struct TunedWorkload {
    pub dataset: String,
    pub workload: String,
    pub fold: usize,
    /// The candidate chosen without this workload's fold.
    pub chosen: String,
    /// Held-out figures of the chosen candidate here, and of every baseline.
    pub rows: BTreeMap<String, Row>,
    /// Baselines the chosen candidate does worse than at 10 or 15 evaluations (mean normalised
    /// cost over the seeds), e.g. `cherrypick@15`.
    pub worse_than: Vec<String>,
}

/// One fold: what was held out and what the others chose.
#[derive(Debug, Clone, Serialize)]
pub struct FoldChoice {
    pub fold: usize,
    pub held_out: Vec<String>,
    pub chosen: String,
    /// Every candidate's score on the training folds (lower is better).
    pub training_scores: BTreeMap<String, f64>,
    /// How far the choice is ahead of the next best candidate on the training folds.
    pub lead: Option<Lead>,
}

/// The chosen candidate's lead over the runner-up on the workloads it was chosen on: how
/// decisive the choice was. A lead of a standard error or two is a near tie the training
/// workloads cannot settle, and which side of it a candidate lands on is their noise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lead {
    pub runner_up: String,
    /// Runner-up's score minus the choice's (positive: the choice is better).
    pub by: f64,
    /// Standard error of that difference: the per-workload differences' standard deviation
    /// over the square root of their number (the workload is the unit the score averages
    /// over). `None` with fewer than two workloads.
    pub standard_error: Option<f64>,
}

/// The result (summary.json of `cherrypick tune`).
#[derive(Debug, Clone, Serialize)]
pub struct TuneSummary {
    pub format: &'static str,
    pub datasets: Vec<String>,
    pub seeds: u64,
    pub budget: usize,
    pub candidates: Vec<String>,
    pub folds: Vec<FoldChoice>,
    /// Pooled held-out figures: `selected` is the per-fold choice, each on its own held-out
    /// fold; the baselines over the same workloads.
    pub held_out: BTreeMap<String, Row>,
    /// The same pooled held-out figures per dataset (its workloads only), keyed by dataset name:
    /// targets are stated per dataset, and one dataset's figures must not hide another's.
    pub held_out_by_dataset: BTreeMap<String, BTreeMap<String, Row>>,
    /// Every candidate over every workload (not held out: for reading, never for choosing).
    pub in_sample: BTreeMap<String, Row>,
    /// The candidate with the best score over all workloads: what the next release should ship.
    pub chosen_on_all: String,
    /// Its lead over the runner-up on all workloads.
    pub lead_on_all: Option<Lead>,
    pub workloads: Vec<TunedWorkload>,
    pub wall_s: f64,
}

/// Name of the pooled per-fold choice in [`TuneSummary::held_out`].
pub const SELECTED: &str = "selected";

/// Runs every candidate and baseline on every workload of `datasets` and cross-validates.
pub fn tune(datasets: &[Dataset], options: &TuneOptions) -> Result<TuneSummary, CompareError> {
    if options.candidates.is_empty() {
        return Err(CompareError::Invalid(
            "no candidate settings to choose among".into(),
        ));
    }
    let mut strategies: Vec<String> = Vec::new();
    for s in options.candidates.iter().chain(&options.baselines) {
        if !strategies.contains(s) {
            strategies.push(s.clone());
        }
    }
    let compare = CompareOptions {
        strategies: strategies.clone(),
        seeds: options.seeds,
        budget: options.budget,
        max_runtime_s: None,
        threads: options.threads,
        parallel: 1,
        launch_overhead_s: 0.0,
    };
    // Every workload in turn: (dataset index, workload name, metrics per strategy).
    let mut pooled: Vec<(usize, String, BTreeMap<String, Vec<RunMetrics>>)> = Vec::new();
    let mut wall_s = 0.0;
    for (d, dataset) in datasets.iter().enumerate() {
        let all: Vec<usize> = (0..dataset.workloads.len()).collect();
        let cmp = run_compare(dataset, &all, &compare)?;
        wall_s += cmp.wall_s;
        for (w, name) in cmp.workloads.iter().enumerate() {
            let by: BTreeMap<String, Vec<RunMetrics>> = strategies
                .iter()
                .map(|s| {
                    let runs = cmp.runs_of(Some(w), s).into_iter().cloned().collect();
                    (s.clone(), runs)
                })
                .collect();
            pooled.push((d, name.clone(), by));
        }
    }
    let fold_of: Vec<usize> = match options.folds {
        Folds::K(k) => {
            let k = k.clamp(2, pooled.len().max(2));
            (0..pooled.len()).map(|i| i % k).collect()
        }
        Folds::Datasets => pooled.iter().map(|p| p.0).collect(),
    };
    let n_folds = fold_of.iter().max().map_or(0, |m| m + 1);
    if n_folds < 2 {
        return Err(CompareError::Invalid(
            "cross-validation needs at least two folds (two workloads, or two datasets with --folds datasets)".into(),
        ));
    }
    // score[w][candidate]
    let score: Vec<BTreeMap<&str, f64>> = pooled
        .iter()
        .map(|(_, _, by)| {
            options
                .candidates
                .iter()
                .map(|c| (c.as_str(), workload_score(&by[c])))
                .collect()
        })
        .collect();
    let choose = |keep: &dyn Fn(usize) -> bool| -> (String, BTreeMap<String, f64>, Option<Lead>) {
        let training: Vec<usize> = (0..pooled.len()).filter(|&w| keep(w)).collect();
        let mut scores = BTreeMap::new();
        // Best and runner-up, first listed winning a tie.
        let mut ranked: Vec<(&str, f64)> = Vec::new();
        for c in &options.candidates {
            let s = training.iter().map(|&w| score[w][c.as_str()]).sum::<f64>()
                / training.len().max(1) as f64;
            scores.insert(c.clone(), s);
            ranked.push((c.as_str(), s));
        }
        ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
        let chosen = ranked.first().map(|b| b.0.to_string()).unwrap_or_default();
        let lead = ranked.get(1).map(|&(runner_up, s)| {
            let differences: Vec<f64> = training
                .iter()
                .map(|&w| score[w][runner_up] - score[w][chosen.as_str()])
                .collect();
            Lead {
                runner_up: runner_up.to_string(),
                by: s - ranked[0].1,
                standard_error: standard_error(&differences),
            }
        });
        (chosen, scores, lead)
    };
    if (0..n_folds).any(|f| fold_of.iter().all(|&g| g == f)) {
        return Err(CompareError::Invalid(
            "one fold holds every workload, so nothing is left to choose on".into(),
        ));
    }
    let mut folds = Vec::new();
    let mut chosen_for = vec![String::new(); pooled.len()];
    for f in 0..n_folds {
        let (chosen, training_scores, lead) = choose(&|w| fold_of[w] != f);
        let held_out: Vec<String> = (0..pooled.len())
            .filter(|&w| fold_of[w] == f)
            .map(|w| {
                chosen_for[w] = chosen.clone();
                label(datasets, &pooled[w].0, &pooled[w].1)
            })
            .collect();
        if held_out.is_empty() {
            continue;
        }
        folds.push(FoldChoice {
            fold: f,
            held_out,
            chosen,
            training_scores,
            lead,
        });
    }
    let (chosen_on_all, _, lead_on_all) = choose(&|_| true);

    // Pooled held-out rows over the workloads of the datasets `keep` accepts.
    let held_out_rows = |keep: &dyn Fn(usize) -> bool| -> BTreeMap<String, Row> {
        let mut rows = BTreeMap::new();
        let selected: Vec<&RunMetrics> = pooled
            .iter()
            .zip(&chosen_for)
            .filter(|((d, _, _), _)| keep(*d))
            .flat_map(|((_, _, by), c)| by[c].iter())
            .collect();
        rows.insert(SELECTED.to_string(), Row::of(&selected));
        for b in &options.baselines {
            let runs: Vec<&RunMetrics> = pooled
                .iter()
                .filter(|(d, _, _)| keep(*d))
                .flat_map(|(_, _, by)| by[b].iter())
                .collect();
            rows.insert(b.clone(), Row::of(&runs));
        }
        rows
    };
    let held_out = held_out_rows(&|_| true);
    let held_out_by_dataset = datasets
        .iter()
        .enumerate()
        .map(|(d, dataset)| (dataset.name.clone(), held_out_rows(&|e| e == d)))
        .collect();
    let in_sample = options
        .candidates
        .iter()
        .map(|c| {
            let runs: Vec<&RunMetrics> =
                pooled.iter().flat_map(|(_, _, by)| by[c].iter()).collect();
            (c.clone(), Row::of(&runs))
        })
        .collect();
    let workloads = pooled
        .iter()
        .enumerate()
        .map(|(w, (d, name, by))| {
            let chosen = &chosen_for[w];
            let mine: Vec<&RunMetrics> = by[chosen].iter().collect();
            let mut rows = BTreeMap::new();
            rows.insert(SELECTED.to_string(), Row::of(&mine));
            let mut worse_than = Vec::new();
            for b in &options.baselines {
                let theirs: Vec<&RunMetrics> = by[b].iter().collect();
                for (k, _, _) in worse_at(&mine, &theirs, options.budget) {
                    worse_than.push(format!("{b}@{k}"));
                }
                rows.insert(b.clone(), Row::of(&theirs));
            }
            TunedWorkload {
                dataset: datasets[*d].name.clone(),
                workload: name.clone(),
                fold: fold_of[w],
                chosen: chosen.clone(),
                rows,
                worse_than,
            }
        })
        .collect();
    Ok(TuneSummary {
        format: TUNE_FORMAT,
        datasets: datasets.iter().map(|d| d.name.clone()).collect(),
        seeds: options.seeds,
        budget: options.budget,
        candidates: options.candidates.clone(),
        folds,
        held_out,
        held_out_by_dataset,
        in_sample,
        chosen_on_all,
        lead_on_all,
        workloads,
        wall_s,
    })
}

/// Standard error of the mean of `values` (sample standard deviation over the square root of
/// their number); `None` for fewer than two.
fn standard_error(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some((var / n as f64).sqrt())
}

impl Lead {
    /// "by 0.0012 (1.4 SE) over `bo`", as the choices table shows it.
    pub fn describe(&self) -> String {
        let se = match self.standard_error {
            Some(se) if se > 0.0 => format!(" ({:.1} SE)", self.by / se),
            _ => String::new(),
        };
        format!("by {:.4}{se} over `{}`", self.by, self.runner_up)
    }
}

impl TuneSummary {
    /// The report as markdown: folds and their choices, pooled held-out figures, the flags.
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Cross-validated settings on {}\n\n{} workloads, {} seeds, budget {}; {} candidates; {:.0} s of replays.\n",
            self.datasets.join(", "),
            self.workloads.len(),
            self.seeds,
            self.budget,
            self.candidates.len(),
            self.wall_s
        );
        md.push_str("## Held-out figures\n\n`selected`: on each fold, the candidate that scored best on the other folds, reported on that fold only. Baselines: the same workloads. ");
        md.push_str(ROW_LEGEND);
        md.push_str("\n\n");
        md.push_str(&table(&self.held_out));
        if self.held_out_by_dataset.len() > 1 {
            for (dataset, rows) in &self.held_out_by_dataset {
                let _ = writeln!(md, "\nHeld out, {dataset} only:\n");
                md.push_str(&table(rows));
            }
        }
        md.push_str("\n## Choices per fold\n\nThe lead is the runner-up's training score minus the choice's, and in brackets that over its standard error across the training workloads (paired per workload): a lead of one or two standard errors is a near tie the training folds cannot settle.\n\n| fold | held out | chosen on the other folds | lead |\n|---|---|---|---|\n");
        let lead = |l: &Option<Lead>| l.as_ref().map_or("-".to_string(), Lead::describe);
        for f in &self.folds {
            let _ = writeln!(
                md,
                "| {} | {} | `{}` | {} |",
                f.fold,
                f.held_out.join(", "),
                f.chosen,
                lead(&f.lead)
            );
        }
        let _ = writeln!(
            md,
            "\nChosen on all workloads (what to ship): `{}`, {}.\n",
            self.chosen_on_all,
            lead(&self.lead_on_all)
        );
        md.push_str(
            "## Every candidate on every workload (in-sample: for reading, not for choosing)\n\n",
        );
        md.push_str(&table(&self.in_sample));
        md.push_str("\n## Per workload: held-out `selected` against the baselines\n\n| workload | chosen | selected med@10 | worse than (mean normalised cost at 10 or 15) |\n|---|---|---|---|\n");
        for w in &self.workloads {
            let sel = &w.rows[SELECTED];
            let _ = writeln!(
                md,
                "| {}/{} | `{}` | {} | {} |",
                w.dataset,
                w.workload,
                w.chosen,
                sel.normalized_cost_at
                    .at(10)
                    .map_or("-".to_string(), |q| format!("{:.3}", q.median)),
                if w.worse_than.is_empty() {
                    "-".to_string()
                } else {
                    format!("**{}**", w.worse_than.join(", "))
                }
            );
        }
        md
    }
}

/// What the columns of [`table`] mean.
pub const ROW_LEGEND: &str = "Columns: median normalised cost after 10 evaluations; p90 and P(optimum) after 15; at the stop rule: mean evaluations, median and p90 normalised cost, P(optimum); evaluations until the best found is within 20%, within 10% and at the optimum (mean / median; a run that never gets there counts as budget + 1).";

/// The compact quality table: its header and one line per strategy.
pub fn table(rows: &BTreeMap<String, Row>) -> String {
    let mut out = table_header();
    for (name, row) in rows {
        out.push_str(&table_row(name, row));
    }
    out
}

/// Header of the compact quality table.
fn table_header() -> String {
    "| strategy | med@10 | p90@15 | P@15 | stop: ev / med / p90 / P | until 20% | until 10% | until optimum |\n|---|---|---|---|---|---|---|---|\n".to_string()
}

/// One line of the compact quality table.
fn table_row(name: &str, row: &Row) -> String {
    let q = |k: usize, p90: bool| {
        row.normalized_cost_at.at(k).map_or("-".to_string(), |x| {
            format!("{:.3}", if p90 { x.p90 } else { x.median })
        })
    };
    let p = |k: usize| {
        row.p_optimum_at
            .at(k)
            .map_or("-".to_string(), |x| format!("{x:.2}"))
    };
    let stop = match &row.stop {
        Some(s) => format!(
            "{:.1} / {:.3} / {:.3} / {:.2}",
            s.evaluations_mean, s.normalized_cost_median, s.normalized_cost_p90, s.p_optimum
        ),
        None => "-".into(),
    };
    let until = |key: &str| {
        row.evaluations_until.get(key).map_or("-".into(), |r| {
            format!("{:.1} / {:.0}", r.evaluations_mean, r.evaluations_median)
        })
    };
    format!(
        "| `{name}` | {} | {} | {} | {stop} | {} | {} | {} |\n",
        q(10, false),
        q(15, true),
        p(15),
        until("within_20pct"),
        until("within_10pct"),
        until("optimum"),
    )
}

fn label(datasets: &[Dataset], d: &usize, workload: &str) -> String {
    format!("{}/{workload}", datasets[*d].name)
}

/// Mean over runs of the mean of ln(normalised best cost) over k = 1..budget.
fn workload_score(runs: &[RunMetrics]) -> f64 {
    let per_run: Vec<f64> = runs
        .iter()
        .map(|r| r.curve.iter().map(|c| c.ln()).sum::<f64>() / r.curve.len().max(1) as f64)
        .collect();
    per_run.iter().sum::<f64>() / per_run.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::tests::tiny;

    #[test]
    fn a_standard_error_is_the_spread_over_the_root_of_the_count() {
        assert_eq!(standard_error(&[]), None);
        assert_eq!(standard_error(&[0.3]), None);
        assert_eq!(standard_error(&[2.0, 2.0, 2.0]), Some(0.0));
        // 1..=4: sample variance 5/3, over 4.
        let se = standard_error(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((se - (5.0_f64 / 3.0 / 4.0).sqrt()).abs() < 1e-15);
        let lead = Lead {
            runner_up: "bo".into(),
            by: 0.003,
            standard_error: Some(0.002),
        };
        assert_eq!(lead.describe(), "by 0.0030 (1.5 SE) over `bo`");
    }

    #[test]
    fn each_fold_is_reported_with_settings_chosen_without_it() {
        let mut a = tiny();
        a.name = "a".into();
        let mut b = tiny();
        b.name = "b".into();
        let data = Dataset {
            name: "t".into(),
            source: Default::default(),
            workloads: vec![a, b],
        };
        let options = TuneOptions {
            candidates: vec!["bo".into(), "bo:initial=1:samples=4".into()],
            baselines: vec!["random".into()],
            folds: Folds::K(2),
            seeds: 3,
            budget: 4,
            threads: 1,
        };
        let s = tune(std::slice::from_ref(&data), &options).unwrap();
        assert_eq!(s.folds.len(), 2);
        for f in &s.folds {
            assert_eq!(f.held_out.len(), 1);
            assert_eq!(f.training_scores.len(), 2);
            // The choice is the better training score.
            let best = f
                .training_scores
                .iter()
                .min_by(|x, y| x.1.total_cmp(y.1))
                .unwrap();
            assert_eq!(&f.chosen, best.0);
            // Ahead of the other candidate by the difference of their scores; one training
            // workload gives no standard error.
            let lead = f.lead.as_ref().unwrap();
            assert_ne!(lead.runner_up, f.chosen);
            assert_eq!(
                lead.by,
                f.training_scores[&lead.runner_up] - f.training_scores[&f.chosen]
            );
            assert!(lead.by >= 0.0);
            assert_eq!(lead.standard_error, None);
        }
        let on_all = s.lead_on_all.as_ref().unwrap();
        assert_ne!(on_all.runner_up, s.chosen_on_all);
        assert!(on_all.by >= 0.0 && on_all.standard_error.is_some());
        assert!(s.markdown().contains(" over `"));
        assert!(s.held_out.contains_key(SELECTED) && s.held_out.contains_key("random"));
        // One dataset: its own held-out rows are the pooled ones.
        assert_eq!(s.held_out_by_dataset.len(), 1);
        let own = &s.held_out_by_dataset["t"];
        for (name, row) in &s.held_out {
            assert_eq!(
                own[name].normalized_cost_at, row.normalized_cost_at,
                "{name}"
            );
        }
        assert_eq!(s.workloads.len(), 2);
        assert_eq!(s.workloads[0].fold, 0);
        assert_eq!(s.workloads[1].fold, 1);
        for w in &s.workloads {
            assert_eq!(w.chosen, s.folds[w.fold].chosen, "{}", w.workload);
        }
        let again = tune(std::slice::from_ref(&data), &options).unwrap();
        assert_eq!(
            again.held_out[SELECTED].normalized_cost_at, s.held_out[SELECTED].normalized_cost_at,
            "tuning is deterministic"
        );
        // One dataset cannot be left out against itself.
        let by_dataset = TuneOptions {
            folds: Folds::Datasets,
            ..options
        };
        assert!(tune(std::slice::from_ref(&data), &by_dataset).is_err());
        // Two datasets of one workload each: each dataset's held-out rows are its workload's.
        let mut first = data.clone();
        first.name = "first".into();
        first.workloads.truncate(1);
        let mut second = data;
        second.name = "second".into();
        second.workloads.remove(0);
        let two = tune(&[first, second], &by_dataset).unwrap();
        assert_eq!(two.held_out_by_dataset.len(), 2);
        for w in &two.workloads {
            let own = &two.held_out_by_dataset[&w.dataset];
            assert_eq!(
                own[SELECTED].normalized_cost_at,
                w.rows[SELECTED].normalized_cost_at
            );
            assert_eq!(own["random"].p_optimum_at, w.rows["random"].p_optimum_at);
        }
        assert!(two.markdown().contains("Held out, second only:"));
    }
}
