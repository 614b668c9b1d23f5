//! OLS regression of read throughput on batch_size, batch_number and their product (the
//! coursework's analysis of the read-speed grid), with standard errors, R^2, JSON and a PNG plot.

use std::path::{Path, PathBuf};

use crate::storage::{self, StagedFile};
use crate::Error;

/// One observation: (batch_size, batch_number, throughput in images/s).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub batch_size: f64,
    pub batch_number: f64,
    pub throughput: f64,
}

/// One fitted coefficient.
#[derive(Clone, Debug, PartialEq)]
pub struct Coefficient {
    pub name: &'static str,
    pub estimate: f64,
    pub std_error: f64,
    /// estimate / std_error; `None` when the standard error is 0 (the ratio means nothing).
    pub t: Option<f64>,
}

/// The fit of `throughput = b0 + b1*batch_size + b2*batch_number + b3*batch_size*batch_number`.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    pub coefficients: Vec<Coefficient>,
    /// `None` when the throughput is the same in every row: with no variation to explain
    /// (total sum of squares 0), R^2 is undefined, not 1.
    pub r_squared: Option<f64>,
    pub adj_r_squared: Option<f64>,
    /// Residual standard error.
    pub sigma: f64,
    pub n: usize,
}

const NAMES: [&str; 4] = [
    "intercept",
    "batch_size",
    "batch_number",
    "batch_size:batch_number",
];

impl Fit {
    pub fn predict(&self, batch_size: f64, batch_number: f64) -> f64 {
        let x = [1.0, batch_size, batch_number, batch_size * batch_number];
        self.coefficients
            .iter()
            .zip(x)
            .map(|(c, x)| c.estimate * x)
            .sum()
    }

    /// The fit as JSON; an undefined R^2 is `null`, with a `note` saying why.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "model": "images_per_s ~ batch_size + batch_number + batch_size:batch_number",
            "n": self.n,
            "r_squared": self.r_squared,
            "adj_r_squared": self.adj_r_squared,
            "sigma": self.sigma,
            "coefficients": self.coefficients.iter().map(|c| serde_json::json!({
                "name": c.name, "estimate": c.estimate, "std_error": c.std_error, "t": c.t,
            })).collect::<Vec<_>>(),
        });
        if self.r_squared.is_none() {
            v["note"] = "R^2 undefined: images_per_s is the same in every row (total sum of \
                         squares 0)"
                .into();
        }
        v
    }
}

impl std::fmt::Display for Fit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "OLS: images_per_s ~ batch_size + batch_number + batch_size:batch_number (n = {})",
            self.n
        )?;
        writeln!(
            f,
            "{:<26} {:>14} {:>14} {:>9}",
            "term", "estimate", "std. error", "t"
        )?;
        for c in &self.coefficients {
            let t = c.t.map_or_else(|| "-".to_string(), |t| format!("{t:.2}"));
            writeln!(
                f,
                "{:<26} {:>14.4} {:>14.4} {:>9}",
                c.name, c.estimate, c.std_error, t
            )?;
        }
        match (self.r_squared, self.adj_r_squared) {
            (Some(r2), Some(adj)) => write!(f, "R^2 = {r2:.4}, adjusted R^2 = {adj:.4}")?,
            _ => write!(
                f,
                "R^2 undefined: images_per_s is the same in every row (nothing to explain)"
            )?,
        }
        write!(f, ", residual std. error = {:.3}", self.sigma)
    }
}

/// Inverts a small symmetric positive-definite matrix by Gauss-Jordan with partial pivoting;
/// `None` when singular.
fn invert(mut a: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let scale = a
        .iter()
        .flatten()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1e-300);
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() <= 1e-12 * scale {
            return None;
        }
        a.swap(col, piv);
        inv.swap(col, piv);
        let p = a[col][col];
        for j in 0..n {
            a[col][j] /= p;
            inv[col][j] /= p;
        }
        for i in 0..n {
            if i != col {
                let factor = a[i][col];
                if factor != 0.0 {
                    for j in 0..n {
                        a[i][j] -= factor * a[col][j];
                        inv[i][j] -= factor * inv[col][j];
                    }
                }
            }
        }
    }
    Some(inv)
}

/// Fits the model by ordinary least squares. Needs at least 5 points and at least two distinct
/// batch sizes and batch numbers (otherwise the terms cannot be told apart).
pub fn fit(points: &[Point]) -> Result<Fit, Error> {
    let n = points.len();
    let k = 4;
    if n <= k {
        return Err(Error::Options(format!(
            "regression needs more than {k} rows, got {n}"
        )));
    }
    if points.iter().any(|p| {
        !(p.batch_size.is_finite() && p.batch_number.is_finite() && p.throughput.is_finite())
    }) {
        return Err(Error::Options(
            "regression input has a non-finite value".into(),
        ));
    }
    // Centre and scale the columns for conditioning, then map the estimates back.
    let x: Vec<[f64; 4]> = points
        .iter()
        .map(|p| {
            [
                1.0,
                p.batch_size,
                p.batch_number,
                p.batch_size * p.batch_number,
            ]
        })
        .collect();
    let mut xtx = vec![vec![0.0; k]; k];
    let mut xty = vec![0.0; k];
    for (row, p) in x.iter().zip(points) {
        for i in 0..k {
            xty[i] += row[i] * p.throughput;
            for j in 0..k {
                xtx[i][j] += row[i] * row[j];
            }
        }
    }
    let inv = invert(xtx).ok_or_else(|| {
        Error::Options("regression is singular: the grid needs at least two distinct batch sizes and two distinct batch numbers".into())
    })?;
    // A constant throughput is fitted exactly by its intercept. Solved numerically, rounding
    // leaves residuals of 1e-13 whose ratios came out as R^2 = 1 and t = 1e14; the exact fit
    // (every other term 0, no residual) says plainly that there was nothing to explain.
    let constant = points.iter().all(|p| p.throughput == points[0].throughput);
    let beta: Vec<f64> = if constant {
        let mut b = vec![0.0; k];
        b[0] = points[0].throughput;
        b
    } else {
        (0..k)
            .map(|i| (0..k).map(|j| inv[i][j] * xty[j]).sum())
            .collect()
    };
    let mean = points.iter().map(|p| p.throughput).sum::<f64>() / n as f64;
    let (mut ss_res, mut ss_tot) = (0.0, 0.0);
    for (row, p) in x.iter().zip(points) {
        let yhat: f64 = (0..k).map(|i| beta[i] * row[i]).sum();
        ss_res += (p.throughput - yhat).powi(2);
        ss_tot += (p.throughput - mean).powi(2);
    }
    let dof = (n - k) as f64;
    let sigma2 = ss_res / dof;
    let r_squared = (!constant && ss_tot > 0.0).then(|| 1.0 - ss_res / ss_tot);
    let adj_r_squared = r_squared.map(|r2| 1.0 - (1.0 - r2) * (n as f64 - 1.0) / dof);
    let coefficients = (0..k)
        .map(|i| {
            let se = (sigma2 * inv[i][i]).max(0.0).sqrt();
            Coefficient {
                name: NAMES[i],
                estimate: beta[i],
                std_error: se,
                t: (se > 0.0).then(|| beta[i] / se),
            }
        })
        .collect();
    Ok(Fit {
        coefficients,
        r_squared,
        adj_r_squared,
        sigma: sigma2.sqrt(),
        n,
    })
}

/// Largest value [`read_csv`] takes in any column.
const MAX_VALUE: f64 = 1e12;

/// Reads (batch_size, batch_number, images_per_s) from a read-speed CSV, by header name. Only a
/// regular file is read: a FIFO would block, a device such as /dev/zero never end.
pub fn read_csv(path: &Path) -> Result<Vec<Point>, Error> {
    let bytes = storage::read_regular_file(path)
        .map_err(|e| Error::Input(crate::StorageError::io("read", path.display(), &e)))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::Options(format!(
            "{}: not UTF-8 text (byte {}); give the CSV file read-speed wrote",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| Error::Options(format!("{}: empty file", path.display())))?;
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |name: &str| {
        cols.iter().position(|c| *c == name).ok_or_else(|| {
            Error::Options(format!(
                "{}: no `{name}` column in the header",
                path.display()
            ))
        })
    };
    let (ibs, ibn, ity) = (
        col("batch_size")?,
        col("batch_number")?,
        col("images_per_s")?,
    );
    let mut out = Vec::new();
    for (lineno, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |i: usize, name: &str| -> Result<f64, Error> {
            let raw = fields.get(i).ok_or_else(|| {
                Error::Options(format!(
                    "{}:{}: missing field `{name}`",
                    path.display(),
                    lineno + 1
                ))
            })?;
            match raw.parse::<f64>() {
                // Past 1e12 (images per second or per batch) the products and squares of
                // the fit overflow, and no measurement is that large.
                Ok(x) if x.is_finite() && (0.0..=MAX_VALUE).contains(&x) => Ok(x),
                _ => Err(Error::Options(format!(
                    "{}:{}: field `{name}` is not a number between 0 and 1e12: {raw:?}",
                    path.display(),
                    lineno + 1
                ))),
            }
        };
        out.push(Point {
            batch_size: get(ibs, "batch_size")?,
            batch_number: get(ibn, "batch_number")?,
            throughput: get(ity, "images_per_s")?,
        });
    }
    Ok(out)
}

/// TrueType fonts tried for plot labels (DejaVu from fonts-dejavu-core first).
const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// The font plots use: whether one was registered and, when `$CHERRYPICK_FONT` names one that
/// cannot be used, why (said, not silently passed over).
struct Font {
    found: Option<String>,
    env_problem: Option<String>,
}

/// Registers a system font once per process (none found: plots go without text). Only a
/// regular file is read (`CHERRYPICK_FONT=/dev/zero` would be read until memory ran out).
fn load_font() -> &'static Font {
    static FONT: std::sync::OnceLock<Font> = std::sync::OnceLock::new();
    FONT.get_or_init(|| {
        let env = std::env::var("CHERRYPICK_FONT").ok();
        let mut env_problem = None;
        let candidates = env.iter().map(String::as_str).chain(FONT_PATHS);
        for (i, p) in candidates.enumerate() {
            let problem = match storage::read_regular_file(Path::new(p)) {
                Ok(bytes) => {
                    // plotters keeps registered fonts for the process lifetime.
                    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    let style = plotters::style::FontStyle::Normal;
                    if plotters::style::register_font("sans-serif", style, bytes).is_ok() {
                        return Font {
                            found: Some(p.to_string()),
                            env_problem,
                        };
                    }
                    "not a TrueType or OpenType font".to_string()
                }
                Err(e) => e.to_string(),
            };
            if i == 0 && env.is_some() {
                env_problem = Some(format!("CHERRYPICK_FONT={p} cannot be used ({problem})"));
            }
        }
        Font {
            found: None,
            env_problem,
        }
    })
}

/// What to tell the user about the plot's font: none found, or `$CHERRYPICK_FONT` passed over.
fn font_warning() -> Option<String> {
    let font = load_font();
    match (&font.found, &font.env_problem) {
        (None, problem) => {
            Some(format!(
            "{}no TrueType font found (install fonts-dejavu-core or set CHERRYPICK_FONT): plot \
             drawn without text",
            problem.as_ref().map(|p| format!("{p}; ")).unwrap_or_default()
        ))
        }
        (Some(path), Some(problem)) => Some(format!("{problem}; the plot uses {path}")),
        (Some(_), None) => None,
    }
}

/// What [`write_outputs`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    pub json: PathBuf,
    pub png: PathBuf,
    /// Whether the plot has text (a TrueType font was found).
    pub with_text: bool,
    /// What to tell the user about the font: none found, or `$CHERRYPICK_FONT` not used.
    pub font_warning: Option<String>,
}

/// Writes `regression.json` and `regression.png` into `dir` (created if needed), both or
/// neither: each goes to a temporary beside its destination first, and only when both are
/// complete and synced are they renamed over the destinations. (Writing the JSON before drawing
/// the plot left a new JSON beside an old plot, or none, when the plot failed.) A destination
/// that is not a regular file is refused before anything is written.
pub fn write_outputs(points: &[Point], fit: &Fit, dir: &Path) -> Result<Written, Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Output(crate::StorageError::io("create folder", dir.display(), &e)))?;
    let (json_path, png_path) = (dir.join("regression.json"), dir.join("regression.png"));
    let json = StagedFile::new(&json_path).map_err(Error::Output)?;
    let png = StagedFile::new(&png_path).map_err(Error::Output)?;
    let text = serde_json::to_string_pretty(&fit.to_json())
        .map_err(|e| Error::Other(format!("rendering the fit as JSON: {e}")))?;
    json.write((text + "\n").as_bytes())
        .map_err(Error::Output)?;
    let with_text = draw(points, fit, png.path(), &png_path)?;
    json.sync().map_err(Error::Output)?;
    png.sync().map_err(Error::Output)?;
    png.commit().map_err(Error::Output)?;
    json.commit().map_err(Error::Output)?;
    Ok(Written {
        json: json_path,
        png: png_path,
        with_text,
        font_warning: font_warning(),
    })
}

/// Draws throughput against batch_size x batch_number into `path`: the observations, the
/// model's fitted value at each, and the straight-line fit on the product. Errors name `shown`
/// (the destination a temporary stands for). Returns whether text was drawn.
fn draw(points: &[Point], fit: &Fit, path: &Path, shown: &Path) -> Result<bool, Error> {
    use plotters::prelude::*;
    let with_text = load_font().found.is_some();
    let err = |e: String| {
        Error::Output(crate::StorageError {
            op: "draw",
            location: shown.display().to_string(),
            kind: crate::StorageErrorKind::Other,
            message: e,
        })
    };
    let xs: Vec<f64> = points
        .iter()
        .map(|p| p.batch_size * p.batch_number)
        .collect();
    let xmax = xs.iter().cloned().fold(1.0f64, f64::max) * 1.05;
    let ymax = points
        .iter()
        .map(|p| p.throughput)
        .chain(
            points
                .iter()
                .map(|p| fit.predict(p.batch_size, p.batch_number)),
        )
        .fold(1.0f64, f64::max)
        * 1.1;
    // Simple least-squares line of throughput on the product, for the drawn line.
    let n = xs.len() as f64;
    let mx = xs.iter().sum::<f64>() / n;
    let my = points.iter().map(|p| p.throughput).sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs
        .iter()
        .zip(points)
        .map(|(x, p)| (x - mx) * (p.throughput - my))
        .sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let icept = my - slope * mx;

    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if with_text {
        builder
            .caption(
                "read throughput vs batch_size x batch_number",
                ("sans-serif", 22),
            )
            .x_label_area_size(45)
            .y_label_area_size(70);
    }
    let mut chart = builder
        .build_cartesian_2d(0.0..xmax, 0.0..ymax)
        .map_err(|e| err(e.to_string()))?;
    let mut mesh = chart.configure_mesh();
    if with_text {
        mesh.x_desc("batch_size x batch_number (images)")
            .y_desc("images/s");
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw().map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(
            xs.iter()
                .zip(points)
                .map(|(&x, p)| Circle::new((x, p.throughput), 4, BLUE.filled())),
        )
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(xs.iter().zip(points).map(|(&x, p)| {
            Cross::new(
                (x, fit.predict(p.batch_size, p.batch_number)),
                5,
                RED.stroke_width(2),
            )
        }))
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(LineSeries::new(
            (0..=100).map(|i| {
                let x = xmax * i as f64 / 100.0;
                (x, (icept + slope * x).clamp(0.0, ymax))
            }),
            BLACK.stroke_width(2),
        ))
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(with_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(f: impl Fn(f64, f64) -> f64) -> Vec<Point> {
        let mut v = Vec::new();
        for bs in [8.0, 16.0, 32.0, 64.0] {
            for bn in [10.0, 30.0, 60.0] {
                v.push(Point {
                    batch_size: bs,
                    batch_number: bn,
                    throughput: f(bs, bn),
                });
            }
        }
        v
    }

    #[test]
    fn recovers_exact_coefficients() {
        let pts = grid(|bs, bn| 100.0 + 2.0 * bs - 0.5 * bn + 0.01 * bs * bn);
        let fit = fit(&pts).unwrap();
        let est: Vec<f64> = fit.coefficients.iter().map(|c| c.estimate).collect();
        for (e, want) in est.iter().zip([100.0, 2.0, -0.5, 0.01]) {
            assert!((e - want).abs() < 1e-8, "{est:?}");
        }
        assert!((fit.r_squared.unwrap() - 1.0).abs() < 1e-12);
        assert!(fit.coefficients.iter().all(|c| c.std_error < 1e-6));
    }

    #[test]
    fn standard_errors_match_a_hand_computed_case() {
        // y = b0 + noise on a balanced 2x2 design replicated twice, plus one extra point:
        // compare with the textbook formula for the intercept-only residual variance.
        let mut pts = grid(|bs, bn| 50.0 + bs + bn);
        // Alternate +-1 noise: residual std. error is known up to the fitted terms.
        for (i, p) in pts.iter_mut().enumerate() {
            p.throughput += if i % 2 == 0 { 1.0 } else { -1.0 };
        }
        let fit = fit(&pts).unwrap();
        let r2 = fit.r_squared.unwrap();
        assert!(r2 > 0.99 && r2 < 1.0, "{r2}");
        // sigma^2 = SSR/(n-4); SSR <= 12 (the noise itself), so sigma <= sqrt(12/8).
        assert!(
            fit.sigma > 0.0 && fit.sigma <= (12.0f64 / 8.0).sqrt() + 1e-9,
            "{}",
            fit.sigma
        );
        assert!(fit.coefficients.iter().all(|c| c.std_error > 0.0));
    }

    #[test]
    fn singular_and_bad_csv_are_errors() {
        let one_size: Vec<Point> = (0..6)
            .map(|i| Point {
                batch_size: 8.0,
                batch_number: i as f64,
                throughput: 1.0,
            })
            .collect();
        assert!(matches!(fit(&one_size), Err(Error::Options(_))));
        let dir = std::env::temp_dir().join(format!("cherrypick-reg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.csv");
        std::fs::write(
            &p,
            "batch_size,batch_number,images_per_s\n8,10,100\n8,x,3\n",
        )
        .unwrap();
        let e = read_csv(&p).unwrap_err().to_string();
        assert!(e.contains("bad.csv:3") && e.contains("batch_number"), "{e}");
        for bad in ["NaN", "inf", "1e308", "-3"] {
            std::fs::write(
                &p,
                format!("batch_size,batch_number,images_per_s\n8,10,100\n16,10,{bad}\n"),
            )
            .unwrap();
            let e = read_csv(&p).unwrap_err().to_string();
            assert!(
                e.contains("bad.csv:3") && e.contains("images_per_s"),
                "{bad}: {e}"
            );
        }
        std::fs::write(&p, "batch_size,images_per_s\n").unwrap();
        assert!(read_csv(&p)
            .unwrap_err()
            .to_string()
            .contains("batch_number"));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A constant throughput leaves nothing to explain: R^2 is undefined (null in the JSON and
    /// said so in the text), not 1, and no t statistic of 1e14 comes out of rounding noise.
    #[test]
    fn a_constant_throughput_has_no_r_squared() {
        for c in [1234.5, 0.1, 0.0] {
            let fit = fit(&grid(|_, _| c)).unwrap();
            assert_eq!((fit.r_squared, fit.adj_r_squared), (None, None), "{c}");
            assert_eq!(fit.coefficients[0].estimate, c);
            assert!(
                fit.coefficients
                    .iter()
                    .all(|k| k.t.is_none() && k.std_error == 0.0),
                "{:?}",
                fit.coefficients
            );
            let json = fit.to_json();
            assert!(json["r_squared"].is_null() && json["adj_r_squared"].is_null());
            assert!(json["note"].as_str().unwrap().contains("R^2 undefined"));
            let text = fit.to_string();
            assert!(text.contains("R^2 undefined"), "{text}");
            assert!(!text.contains("R^2 = "), "{text}");
        }
        // Any variation at all gives an R^2.
        let fit = fit(&grid(|bs, _| 100.0 + bs)).unwrap();
        assert!(fit.r_squared.is_some() && fit.to_json().get("note").is_none());
    }

    /// Only a regular file is read as the CSV: a FIFO used to block until a writer came, and
    /// /dev/zero was read until memory ran out.
    #[test]
    fn a_fifo_or_a_device_is_refused_without_reading_it() {
        let dir = std::env::temp_dir().join(format!("cherrypick-reg-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("results.csv");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for (path, what) in [
            (fifo.clone(), "a FIFO"),
            (PathBuf::from("/dev/null"), "a character device"),
            (dir.clone(), "a folder"),
        ] {
            let (tx, rx) = std::sync::mpsc::channel();
            let p = path.clone();
            std::thread::spawn(move || {
                let _ = tx.send(read_csv(&p).map_err(|e| (e.is_bad_input(), e.to_string())));
            });
            let r = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{}: still reading after 10 s", path.display()));
            let (bad_input, msg) = r.unwrap_err();
            assert!(bad_input, "{msg}");
            assert!(
                msg.contains(&path.display().to_string())
                    && msg.contains(&format!("not a regular file ({what})")),
                "{msg}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Both outputs or neither: a plot that cannot be written no longer leaves a new JSON behind,
    /// and the temporaries are gone after an error.
    #[test]
    fn outputs_are_written_both_or_neither() {
        let pts = grid(|bs, bn| 1000.0 + 3.0 * bs + bn);
        let fit = fit(&pts).unwrap();
        let dir = std::env::temp_dir().join(format!("cherrypick-reg-out-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // A folder where the plot goes: refused before the JSON is written.
        std::fs::create_dir_all(dir.join("regression.png")).unwrap();
        let e = write_outputs(&pts, &fit, &dir).unwrap_err();
        assert!(e.is_bad_input(), "{e}");
        assert!(e.to_string().contains("regression.png"), "{e}");
        let names = |d: &Path| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&dir), vec!["regression.png"]);
        std::fs::remove_dir(dir.join("regression.png")).unwrap();
        let w = write_outputs(&pts, &fit, &dir).unwrap();
        assert!(w.json.is_file() && w.png.is_file());
        assert_eq!(names(&dir), vec!["regression.json", "regression.png"]);
        // A failing second run leaves the first run's JSON as it was.
        let before = std::fs::read(&w.json).unwrap();
        std::fs::remove_file(&w.png).unwrap();
        std::fs::create_dir(&w.png).unwrap();
        let other = super::fit(&grid(|bs, bn| 10.0 + bs * bn)).unwrap();
        assert!(write_outputs(&pts, &other, &dir).is_err());
        assert_eq!(std::fs::read(&w.json).unwrap(), before);
        assert_eq!(names(&dir), vec!["regression.json", "regression.png"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn plot_writes_png() {
        let pts = grid(|bs, bn| 1000.0 + 3.0 * bs + bn);
        let fit = fit(&pts).unwrap();
        let dir = std::env::temp_dir().join(format!("cherrypick-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("fit.png");
        draw(&pts, &fit, &p, &p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let _ = std::fs::remove_dir_all(dir);
    }
}
