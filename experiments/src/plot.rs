//! PNG plots of a comparison: median and p90 normalised cost against evaluations, one line per
//! strategy. Text needs a TrueType font found at run time (DejaVu Sans from fonts-dejavu-core, or
//! `$CHERRYPICK_FONT`); without one the plot is still drawn, without text.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::compare::{Comparison, Run, Summary};
use crate::metrics::{quantile, Row};

/// Places a TrueType font is looked for, after `$CHERRYPICK_FONT`.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// The font plots use: its path (`None`: plots are drawn without text) and, when
/// `$CHERRYPICK_FONT` names one that cannot be used, why (said, not silently passed over).
struct Font {
    path: Option<PathBuf>,
    env_problem: Option<String>,
}

/// Registers the first usable font as plotters' "sans-serif" (once per process).
fn load_font() -> &'static Font {
    static FONT: OnceLock<Font> = OnceLock::new();
    FONT.get_or_init(|| {
        let env = std::env::var_os("CHERRYPICK_FONT").map(PathBuf::from);
        let mut env_problem = None;
        let candidates = env
            .iter()
            .cloned()
            .chain(FONT_PATHS.iter().map(PathBuf::from));
        for (i, path) in candidates.enumerate() {
            let from_env = i == 0 && env.is_some();
            let problem = match optimizer::read_regular(&path) {
                Ok(bytes) => {
                    // plotters keeps fonts for the life of the process; one leaked font file is
                    // fine.
                    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    match plotters::style::register_font("sans-serif", FontStyle::Normal, bytes) {
                        Ok(()) => {
                            return Font {
                                path: Some(path),
                                env_problem,
                            }
                        }
                        Err(_) => "not a TrueType or OpenType font".to_string(),
                    }
                }
                Err(e) => e.to_string(),
            };
            if from_env {
                env_problem = Some(format!(
                    "CHERRYPICK_FONT={} cannot be used ({problem})",
                    path.display()
                ));
            }
        }
        Font {
            path: None,
            env_problem,
        }
    })
}

/// The font plots use (registered on first call), or `None` when no font was found (plots are
/// then drawn without text).
pub fn font() -> Option<&'static Path> {
    load_font().path.as_deref()
}

/// What to tell the user about the plots' font: none found, or `$CHERRYPICK_FONT` passed over.
fn font_warning() -> Option<String> {
    let font = load_font();
    match (&font.path, &font.env_problem) {
        (None, problem) => {
            Some(format!(
            "{}no TrueType font found (install fonts-dejavu-core or set CHERRYPICK_FONT): plots \
             drawn without text",
            problem.as_ref().map(|p| format!("{p}; ")).unwrap_or_default()
        ))
        }
        (Some(path), Some(problem)) => Some(format!("{problem}; plots use {}", path.display())),
        (Some(_), None) => None,
    }
}

/// Line colour of a strategy (stable across plots).
fn colour(strategy: &str, index: usize) -> RGBColor {
    match strategy {
        "bo" => RGBColor(31, 119, 180),
        "cherrypick" => RGBColor(255, 127, 14),
        "random" => RGBColor(127, 127, 127),
        "grid" => RGBColor(0, 0, 0),
        "coordinate" => RGBColor(44, 160, 44),
        _ => {
            let p = Palette99::pick(index + 5).to_rgba();
            RGBColor(p.0, p.1, p.2)
        }
    }
}

/// Draws one figure (median panel and p90 panel) of `rows` (strategy name, ROW) to `path`.
pub fn plot_rows(
    path: &Path,
    title: &str,
    rows: &[(&str, &Row)],
    budget: usize,
    with_text: bool,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: cannot draw plot: {e}", path.display());
    let mut ymax: f64 = 1.1;
    for (_, r) in rows {
        for q in &r.normalized_cost_at.0 {
            if q.p90.is_finite() {
                ymax = ymax.max(q.p90 * 1.05);
            }
        }
    }
    let root = BitMapBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = if with_text {
        root.titled(title, ("sans-serif", 22))
            .map_err(|e| err(&e))?
    } else {
        root
    };
    let (left, right) = root.split_horizontally(600);
    for (panel, area, pick) in [
        ("median", &left, 0usize),
        ("90th percentile", &right, 1usize),
    ] {
        let mut builder = ChartBuilder::on(area);
        builder.margin(12);
        if with_text {
            builder
                .caption(format!("{panel} normalised cost"), ("sans-serif", 18))
                .x_label_area_size(40)
                .y_label_area_size(56);
        }
        let x_end = budget.max(2) as f64;
        let mut chart = builder
            .build_cartesian_2d(1f64..x_end, (1f64..ymax).log_scale())
            .map_err(|e| err(&e))?;
        let mut mesh = chart.configure_mesh();
        if with_text {
            mesh.x_desc("evaluations")
                .y_desc("cost / optimum")
                .x_label_formatter(&label_integer)
                .y_label_formatter(&label_ratio);
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(|e| err(&e))?;
        for (i, (name, r)) in rows.iter().enumerate() {
            let c = colour(name, i);
            let points = r.normalized_cost_at.0.iter().enumerate().map(|(k, q)| {
                let y = if pick == 0 { q.median } else { q.p90 };
                ((k + 1) as f64, y.clamp(1.0, ymax))
            });
            let series = chart
                .draw_series(LineSeries::new(points, c.stroke_width(2)))
                .map_err(|e| err(&e))?;
            if with_text {
                series.label(*name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            }
        }
        if with_text {
            draw_legend(&mut chart).map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Median over `runs` of the normalised cost of the best found by each time of `grid`
/// (simulated seconds): a run's best after the probes finished by then, its workload's worst
/// before any.
fn median_by_time(cmp: &Comparison, runs: &[&Run], grid: &[f64]) -> Vec<f64> {
    let mut column = Vec::with_capacity(runs.len());
    grid.iter()
        .map(|&t| {
            column.clear();
            column.extend(runs.iter().map(|r| {
                let done = r.trace.probes.iter().filter(|p| p.finished_s <= t).count();
                match done.checked_sub(1) {
                    Some(i) => r.metrics.curve.get(i).or(r.metrics.curve.last()).copied(),
                    None => None,
                }
                .unwrap_or_else(|| cmp.scales[r.workload].worst_ratio())
            }));
            quantile(&column, 0.5)
        })
        .collect()
}

/// Median normalised cost against simulated wall time, one line per strategy with as many
/// probes in flight as the comparison ran, and dashed, when the comparison ran several, the
/// same strategy one at a time.
pub fn plot_wall_time(path: &Path, cmp: &Comparison, with_text: bool) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: cannot draw plot: {e}", path.display());
    // Up to the time three in four runs have ended: the longest runs would squeeze the rest.
    let ends: Vec<f64> = cmp
        .runs
        .iter()
        .map(|r| {
            r.trace
                .probes
                .iter()
                .map(|p| p.finished_s)
                .fold(0.0, f64::max)
        })
        .collect();
    let end = quantile(&ends, 0.75).max(1.0);
    let grid: Vec<f64> = (0..=200).map(|i| end * i as f64 / 200.0).collect();
    let mut lines: Vec<(String, bool, usize, Vec<f64>)> = Vec::new();
    for (i, s) in cmp.strategies.iter().enumerate() {
        let main: Vec<&Run> = cmp.main_runs().filter(|r| &r.trace.strategy == s).collect();
        let label = if cmp.parallel > 1 {
            format!("{s}, {} in flight", cmp.parallel)
        } else {
            s.clone()
        };
        lines.push((label, false, i, median_by_time(cmp, &main, &grid)));
        let seq = cmp.sequential_runs_of(s);
        if !seq.is_empty() {
            let curve = median_by_time(cmp, &seq, &grid);
            lines.push((format!("{s}, one at a time"), true, i, curve));
        }
    }
    let ymax = lines
        .iter()
        .flat_map(|l| l.3.iter().copied())
        .filter(|y| y.is_finite())
        .fold(1.1f64, f64::max)
        .min(2.0)
        * 1.05;
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(14);
    if with_text {
        builder
            .caption(
                format!(
                    "{}: median normalised cost against simulated wall time ({} s launch overhead)",
                    cmp.dataset, cmp.launch_overhead_s
                ),
                ("sans-serif", 18),
            )
            .x_label_area_size(40)
            .y_label_area_size(56);
    }
    let hours = end / 3600.0;
    let mut chart = builder
        .build_cartesian_2d(0f64..hours, (1f64..ymax).log_scale())
        .map_err(|e| err(&e))?;
    let mut mesh = chart.configure_mesh();
    if with_text {
        mesh.x_desc("hours")
            .y_desc("cost / optimum")
            .y_label_formatter(&label_ratio);
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|e| err(&e))?;
    for (label, dashed, i, curve) in &lines {
        let c = colour(&cmp.strategies[*i], *i);
        let points: Vec<(f64, f64)> = grid
            .iter()
            .zip(curve)
            .map(|(t, y)| (t / 3600.0, y.clamp(1.0, ymax)))
            .collect();
        let style = c.stroke_width(if *dashed { 1 } else { 2 });
        let series = if *dashed {
            chart
                .draw_series(DashedLineSeries::new(points, 6, 4, style))
                .map_err(|e| err(&e))?
        } else {
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(|e| err(&e))?
        };
        if with_text {
            series
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
    }
    if with_text {
        draw_legend(&mut chart).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Every chart here: a numeric x axis against cost over the optimum on a log scale.
type CostChart<'a> =
    ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, LogCoord<f64>>>;

/// The series' legend, top right on a light background.
fn draw_legend(chart: &mut CostChart<'_>) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

fn label_integer(x: &f64) -> String {
    format!("{x:.0}")
}

fn label_ratio(y: &f64) -> String {
    format!("{y:.2}")
}

/// File-name-safe form of a workload name.
/// Each workload's plot file, `plot_<slug>.png`: names that differ only where the file name has
/// `_` (`spark lr`, `spark/lr`, `spark_lr`) get a number each instead of one file.
fn plot_file_names(workloads: &[String]) -> Vec<String> {
    // The two plots of the whole run keep their names: a workload called `aggregate` or
    // `wall time` gets a number.
    let mut used: std::collections::HashSet<String> =
        [AGGREGATE_PLOT, WALL_TIME_PLOT].map(String::from).into();
    workloads
        .iter()
        .map(|name| {
            let base = slug(name);
            let mut file = format!("plot_{base}.png");
            let mut n = 1;
            while !used.insert(file.clone()) {
                n += 1;
                file = format!("plot_{base}_{n}.png");
            }
            file
        })
        .collect()
}

/// The plots of the whole run (every workload; median cost against simulated wall time).
const AGGREGATE_PLOT: &str = "plot_aggregate.png";
const WALL_TIME_PLOT: &str = "plot_wall_time.png";

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `plot_aggregate.png` and one `plot_<workload>.png` per workload into `dir`. Returns
/// the files written and a warning when no font was found.
///
/// `earlier` are the plots an earlier compare wrote there ([`earlier_plots`], read before this
/// one's summary replaced its summary): those this one does not write are removed.
pub fn write_plots(
    cmp: &Comparison,
    summary: &Summary,
    dir: &Path,
    earlier: &[PathBuf],
) -> Result<(Vec<PathBuf>, Option<String>), String> {
    let with_text = font().is_some();
    let warning = font_warning();
    let mut written = Vec::new();
    let aggregate: Vec<(&str, &Row)> = summary
        .aggregate
        .iter()
        .map(|a| (a.strategy.as_str(), &a.row))
        .collect();
    // Drawn beside and renamed over: a link or FIFO in `--out` is replaced, never followed.
    let replace = |path: &Path, draw: &dyn Fn(&Path) -> Result<(), String>| {
        crate::report::replace_file(path, draw, |e| {
            format!("{}: cannot write plot: {e}", path.display())
        })
    };
    let path = dir.join(AGGREGATE_PLOT);
    replace(&path, &|tmp| {
        plot_rows(
            tmp,
            &format!("{}: all workloads, {} seeds", cmp.dataset, cmp.seeds),
            &aggregate,
            cmp.budget,
            with_text,
        )
    })?;
    written.push(path);
    let path = dir.join(WALL_TIME_PLOT);
    replace(&path, &|tmp| plot_wall_time(tmp, cmp, with_text))?;
    written.push(path);
    for (name, file) in cmp.workloads.iter().zip(plot_file_names(&cmp.workloads)) {
        let rows: Vec<(&str, &Row)> = summary
            .results
            .iter()
            .filter(|r| &r.workload == name)
            .map(|r| (r.strategy.as_str(), &r.row))
            .collect();
        let path = dir.join(file);
        replace(&path, &|tmp| {
            plot_rows(
                tmp,
                &format!("{}: {name}, {} seeds", cmp.dataset, cmp.seeds),
                &rows,
                cmp.budget,
                with_text,
            )
        })?;
        written.push(path);
    }
    for stale in earlier.iter().filter(|p| !written.contains(p)) {
        match std::fs::remove_file(stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "{}: cannot remove an earlier compare's plot: {e}",
                    stale.display()
                ))
            }
        }
    }
    Ok((written, warning))
}

/// The plots an earlier compare wrote in `dir`, from its summary.json there (none if there is
/// none, or it is not a compare's): a reused `--out` then shows only the new run's plots, and
/// files of the same pattern that no compare wrote are left alone.
pub fn earlier_plots(dir: &Path) -> Vec<PathBuf> {
    // Only a regular file: a FIFO left under that name would block the read.
    let Ok(text) = optimizer::read_regular_string(&dir.join("summary.json")) else {
        return Vec::new();
    };
    let Ok(summary) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    if summary["format"] != crate::compare::SUMMARY_FORMAT {
        return Vec::new();
    }
    let mut workloads: Vec<String> = Vec::new();
    for row in summary["results"].as_array().into_iter().flatten() {
        if let Some(w) = row["workload"].as_str() {
            if !workloads.iter().any(|x| x == w) {
                workloads.push(w.to_string());
            }
        }
    }
    plot_file_names(&workloads)
        .into_iter()
        .map(|f| dir.join(f))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_whose_names_slug_alike_get_a_plot_each() {
        let names: Vec<String> = ["spark lr", "spark/lr", "spark_lr", "spark_lr_2", "tpch"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            plot_file_names(&names),
            [
                "plot_spark_lr.png",
                "plot_spark_lr_2.png",
                "plot_spark_lr_3.png",
                "plot_spark_lr_2_2.png",
                "plot_tpch.png"
            ]
        );
        // Workloads named like the whole run's plots do not replace them.
        let names: Vec<String> = vec!["aggregate".into(), "wall time".into()];
        assert_eq!(
            plot_file_names(&names),
            ["plot_aggregate_2.png", "plot_wall_time_2.png"]
        );
    }
    use crate::metrics::{ByEval, Quantiles};

    fn row() -> Row {
        Row {
            normalized_cost_at: ByEval(
                (1..=10)
                    .map(|k| Quantiles {
                        median: 1.0 + 1.0 / k as f64,
                        p90: 1.5 + 1.0 / k as f64,
                    })
                    .collect(),
            ),
            p_optimum_at: ByEval(vec![0.5; 10]),
            stop: None,
            ms_per_ask_median: 0.1,
            evaluations_until: Default::default(),
            wall_time_until: Default::default(),
        }
    }

    #[test]
    fn plots_are_written_with_and_without_text() {
        let dir = std::env::temp_dir().join(format!("cp-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let r = row();
        let rows = [("bo", &r), ("grid", &r)];
        let plain = dir.join("plain.png");
        plot_rows(&plain, "t", &rows, 10, false).unwrap();
        assert!(std::fs::metadata(&plain).unwrap().len() > 1000);
        if font().is_some() {
            let text = dir.join("text.png");
            plot_rows(&text, "t", &rows, 10, true).unwrap();
            assert!(std::fs::read(&text).unwrap().starts_with(b"\x89PNG"));
        } else {
            println!("no font on this machine: only the text-free plot was checked");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
