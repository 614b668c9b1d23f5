//! Our Gaussian process: Matern 5/2 kernel with one length-scale per input dimension (ARD), signal
//! variance and a noise term, zero mean on standardised targets, optionally on inputs warped by
//! fitted Kumaraswamy CDFs; the log marginal likelihood and its analytic gradient;
//! hyper-parameters fitted by multi-start L-BFGS (argmin) within bounds.
//!
//! Hyper-parameters live in log space. The optimiser works on an unconstrained vector `u`, mapped
//! into the bounds by a sigmoid, so no iterate can leave them. Every fit stops on iteration counts.

use std::borrow::Cow;
use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use nalgebra::{Cholesky, DMatrix, DVector, Dyn};

use crate::rng::Rng;

const SQRT5: f64 = 2.236_067_977_499_79;
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Errors of the Gaussian process. Fitting never panics: bad numbers come back as these.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GpError {
    #[error("a Gaussian process needs at least one training point")]
    NoData,
    #[error("training inputs have {got} columns, expected {want}")]
    Shape { got: usize, want: usize },
    #[error("training data contains a non-finite value (row {row})")]
    NonFinite { row: usize },
    #[error("the covariance matrix is not positive definite even with a jitter of {jitter:e}")]
    NotPositiveDefinite { jitter: f64 },
}

/// Kernel hyper-parameters, all in natural-log units, on standardised targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyper {
    /// ln of one length-scale per input dimension.
    pub log_length_scales: Vec<f64>,
    /// ln of the signal variance.
    pub log_signal_var: f64,
    /// ln of the observation-noise variance.
    pub log_noise_var: f64,
    /// Input warping of the data's warped columns (see [`GpData::warping`]): `[ln a_1..ln a_m,
    /// ln b_1..ln b_m]` of each column's Kumaraswamy CDF; empty without warping.
    pub log_warp: Vec<f64>,
}

impl Hyper {
    /// Flattens to `[ln l_1..ln l_d, ln s2, ln noise, warping..]`, the order of
    /// [`log_marginal_likelihood`]'s gradient.
    pub fn to_vec(&self) -> Vec<f64> {
        let mut v = self.log_length_scales.clone();
        v.push(self.log_signal_var);
        v.push(self.log_noise_var);
        v.extend(&self.log_warp);
        v
    }
    /// Inverse of [`Hyper::to_vec`] for `m` warped columns.
    pub fn from_slice(v: &[f64], m: usize) -> Hyper {
        let d = v.len().saturating_sub(2 + 2 * m);
        Hyper {
            log_length_scales: v[..d].to_vec(),
            log_signal_var: v.get(d).copied().unwrap_or(0.0),
            log_noise_var: v.get(d + 1).copied().unwrap_or(-10.0),
            log_warp: v.get(d + 2..).unwrap_or_default().to_vec(),
        }
    }
    /// Whether these hyper-parameters have the shape `data` needs (one length-scale per column,
    /// two warping parameters per warped column).
    pub fn fits(&self, data: &GpData) -> bool {
        self.log_length_scales.len() == data.dim() && self.log_warp.len() == 2 * data.warped.len()
    }
}

/// How the observation noise is treated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Noise {
    /// Fixed variance in the units of the raw targets (CherryPick: 0.02 on log cost).
    Fixed(f64),
    /// Fitted within `[min, max]`, variances in the units of the raw targets.
    Fitted { min: f64, max: f64 },
}

/// A prior over the hyper-parameters, as a density over their natural logs
/// `theta = [ln l_1..ln l_d, ln s2, ln noise]` (the noise entry only when it is fitted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prior {
    /// Log-normal on each length-scale: ln l ~ N(mean, sd^2).
    LogNormal { mean: f64, sd: f64 },
    /// The terms optuna's GP sampler adds to its likelihood (on inputs in the unit cube and
    /// standardised targets, as here): `-(0.1 l^2 + 0.1 / l^2)` per length-scale (largest at
    /// l = 1), a Gamma(2, 1) on the signal variance and a Gamma(1.1, 30) on the noise variance
    /// (mean 0.037): a prior a peer chose for any problem, not one fitted to ours.
    Optuna,
}

impl Prior {
    /// ln prior (up to a constant) at `theta` and its gradient; `d` is the number of
    /// length-scales: `theta` is `[ln l_1..ln l_d, ln s2]`, then ln noise when `noise_fitted`
    /// (entries past those are not this prior's and get no term).
    pub(crate) fn log_density(
        &self,
        theta: &[f64],
        d: usize,
        noise_fitted: bool,
    ) -> (f64, Vec<f64>) {
        let mut grad = vec![0.0; theta.len()];
        let mut lp = 0.0;
        match *self {
            Prior::LogNormal { mean, sd } => {
                for k in 0..d {
                    let z = (theta[k] - mean) / sd;
                    lp -= 0.5 * z * z;
                    grad[k] = -z / sd;
                }
            }
            Prior::Optuna => {
                for k in 0..d {
                    let (up, down) = ((2.0 * theta[k]).exp(), (-2.0 * theta[k]).exp());
                    lp -= 0.1 * (up + down);
                    grad[k] = -0.2 * (up - down);
                }
                // Gamma(a, b) on v = e^t, as a function of t: (a - 1) t - b e^t.
                let mut gamma = |k: usize, a: f64, b: f64| {
                    if let Some(&t) = theta.get(k) {
                        let v = t.exp();
                        lp += (a - 1.0) * t - b * v;
                        grad[k] = (a - 1.0) - b * v;
                    }
                };
                gamma(d, 2.0, 1.0);
                if noise_fitted {
                    gamma(d + 1, 1.1, 30.0);
                }
            }
        }
        (lp, grad)
    }
}

/// Settings of a fit: bounds, noise treatment and the optimiser's effort.
#[derive(Debug, Clone, PartialEq)]
pub struct GpConfig {
    /// Length-scale bounds (inputs are expected in the unit cube).
    pub length_scale: (f64, f64),
    /// Signal-variance bounds on standardised targets.
    pub signal_var: (f64, f64),
    pub noise: Noise,
    /// Optional prior on the hyper-parameters. Turns ML-II into MAP, which keeps the fit away
    /// from degenerate values with few points; the sampler then samples the posterior.
    pub prior: Option<Prior>,
    /// Random starts besides the warm start (or the default start when there is none).
    pub restarts: usize,
    /// L-BFGS iterations per start.
    pub max_iters: u64,
}

impl Default for GpConfig {
    fn default() -> Self {
        GpConfig {
            length_scale: (0.05, 20.0),
            signal_var: (0.05, 20.0),
            noise: Noise::Fitted {
                min: 1e-6,
                max: 0.5,
            },
            prior: None,
            restarts: 2,
            max_iters: 40,
        }
    }
}

/// Training data with the targets standardised and pairwise squared differences precomputed.
#[derive(Debug, Clone)]
pub struct GpData {
    x: DMatrix<f64>,
    /// Standardised targets.
    y: DVector<f64>,
    y_mean: f64,
    y_sd: f64,
    /// Squared differences of every pair below the diagonal, packed pair by pair: pair
    /// `p = i (i - 1) / 2 + j` (j < i) holds `(x_ik - x_jk)^2` at `sq[p * d + k]`, so the
    /// kernel and its gradient read them in the order they visit the pairs.
    sq: Vec<f64>,
    /// Columns whose values pass through a fitted Kumaraswamy CDF before the kernel sees them
    /// (see [`GpData::warping`]), in increasing order.
    warped: Vec<usize>,
    /// Per warped column, the distinct `ln x` of its inputs (see [`warp_ln`]): a catalogue's
    /// columns take few values, so the warping is computed once per value, not per point.
    warp_levels: Vec<Vec<f64>>,
    /// Which of its column's levels each warped input is, point by point: `warp_level[i * m + t]`
    /// for the `t`-th warped column.
    warp_level: Vec<usize>,
}

impl GpData {
    /// Checks and standardises the data. `x` holds one row per point.
    pub fn new(x: &[Vec<f64>], y: &[f64]) -> Result<GpData, GpError> {
        GpData::scaled(x, y, None)
    }

    /// Checks the data and standardises the targets with `scale` (mean, standard deviation), or
    /// with their own when it is `None`.
    fn scaled(x: &[Vec<f64>], y: &[f64], scale: Option<(f64, f64)>) -> Result<GpData, GpError> {
        let n = x.len();
        if n == 0 || y.len() != n {
            return Err(GpError::NoData);
        }
        let d = x[0].len();
        for (row, (xi, yi)) in x.iter().zip(y).enumerate() {
            if xi.len() != d {
                return Err(GpError::Shape {
                    got: xi.len(),
                    want: d,
                });
            }
            if !yi.is_finite() || xi.iter().any(|v| !v.is_finite()) {
                return Err(GpError::NonFinite { row });
            }
        }
        let (y_mean, y_sd) = scale.unwrap_or_else(|| {
            let y_mean = y.iter().sum::<f64>() / n as f64;
            let var = y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / n as f64;
            // One point, or all targets equal: keep the raw scale rather than divide by ~0.
            (y_mean, if var > 1e-12 { var.sqrt() } else { 1.0 })
        });
        let xm = DMatrix::from_fn(n, d, |i, j| x[i][j]);
        let ys = DVector::from_iterator(n, y.iter().map(|v| (v - y_mean) / y_sd));
        let mut sq = Vec::with_capacity(n * n.saturating_sub(1) / 2 * d);
        for i in 0..n {
            for j in 0..i {
                sq.extend((0..d).map(|k| (x[i][k] - x[j][k]).powi(2)));
            }
        }
        Ok(GpData {
            x: xm,
            y: ys,
            y_mean,
            y_sd,
            sq,
            warped: Vec::new(),
            warp_levels: Vec::new(),
            warp_level: Vec::new(),
        })
    }

    /// The same data with `columns` warped: each such input `x` (expected in [0, 1]) reaches the
    /// kernel as `1 - (1 - x^a)^b`, the Kumaraswamy CDF, with its own `a` and `b` fitted beside
    /// the length-scales (input warping, Snoek et al. 2014, which Spearmint shipped). A
    /// stationary kernel on the warped inputs can then be steep at one end of an axis and flat
    /// at the other, as cost is against cluster memory (steep where the data stops fitting,
    /// flat once it fits). Columns out of range are an error.
    pub fn warping(mut self, columns: &[usize]) -> Result<GpData, GpError> {
        let d = self.dim();
        if let Some(&c) = columns.iter().find(|&&c| c >= d) {
            return Err(GpError::Shape {
                got: c + 1,
                want: d,
            });
        }
        let mut warped = columns.to_vec();
        warped.sort_unstable();
        warped.dedup();
        let n = self.len();
        let m = warped.len();
        self.warp_levels = vec![Vec::new(); m];
        self.warp_level = vec![0; n * m];
        for (t, &c) in warped.iter().enumerate() {
            let levels = &mut self.warp_levels[t];
            for i in 0..n {
                let v = warp_ln(self.x[(i, c)]);
                self.warp_level[i * m + t] = match levels.iter().position(|l| *l == v) {
                    Some(k) => k,
                    None => {
                        levels.push(v);
                        levels.len() - 1
                    }
                };
            }
        }
        self.warped = warped;
        Ok(self)
    }
    /// The warped columns (see [`GpData::warping`]).
    pub fn warped(&self) -> &[usize] {
        &self.warped
    }
    /// The same data with its inputs passed through the warping `log_warp` (as
    /// [`Hyper::log_warp`], two entries per warped column) and no warping left: a GP on it with
    /// the same kernel parameters is the GP on this data with that warping.
    pub(crate) fn warped_by(&self, log_warp: &[f64]) -> Result<GpData, GpError> {
        if log_warp.len() != 2 * self.warped.len() {
            return Err(GpError::Shape {
                got: log_warp.len() / 2,
                want: self.warped.len(),
            });
        }
        Ok(match warp_inputs(self, log_warp, false) {
            None => self.clone(),
            Some(w) => GpData {
                x: w.x,
                y: self.y.clone(),
                y_mean: self.y_mean,
                y_sd: self.y_sd,
                sq: w.sq,
                warped: Vec::new(),
                warp_levels: Vec::new(),
                warp_level: Vec::new(),
            },
        })
    }
    pub fn len(&self) -> usize {
        self.y.len()
    }
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
    pub fn dim(&self) -> usize {
        self.x.ncols()
    }
    /// Standard deviation used to standardise the targets.
    pub fn y_sd(&self) -> f64 {
        self.y_sd
    }
    /// The same data with `x`/`y` (raw target units) appended, standardised with this data's
    /// mean and scale so hyper-parameters fitted on it keep their meaning.
    pub fn with_points(&self, x: &[Vec<f64>], y: &[f64]) -> Result<GpData, GpError> {
        // Every row is checked again, the appended ones included.
        let rows: Vec<Vec<f64>> = (0..self.len())
            .map(|i| self.x.row(i).iter().copied().collect())
            .chain(x.iter().cloned())
            .collect();
        let raw: Vec<f64> = self
            .y
            .iter()
            .map(|v| self.y_mean + self.y_sd * v)
            .chain(y.iter().copied())
            .collect();
        GpData::scaled(&rows, &raw, Some((self.y_mean, self.y_sd)))?.warping(&self.warped)
    }
    /// Converts a noise variance in raw target units to standardised units.
    pub fn noise_to_standard(&self, var: f64) -> f64 {
        var / (self.y_sd * self.y_sd)
    }
}

/// Matern 5/2 as a function of the scaled distance r: (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r).
fn matern52(r: f64) -> f64 {
    let s = SQRT5 * r;
    (1.0 + s + s * s / 3.0) * (-s).exp()
}

/// Inputs are kept this far inside [0, 1] before warping, so `ln x` and `ln (1 - x^a)` stay
/// finite.
const WARP_EPS: f64 = 1e-6;
/// Bounds of each warping parameter `a`, `b`.
const WARP_BOUNDS: (f64, f64) = (0.1, 10.0);
/// Variance of the log-normal prior on each warping parameter, centred on the identity
/// (`a = b = 1`): `LogNormalPrior(0, 0.75^0.5)`, what BoTorch's input-warping tutorial and Ax's
/// warped models use, a choice made for any problem rather than for ours.
pub(crate) const WARP_PRIOR_VAR: f64 = 0.75;

/// `ln x` of an input about to be warped, `x` clamped into [WARP_EPS, 1 - WARP_EPS].
fn warp_ln(x: f64) -> f64 {
    x.clamp(WARP_EPS, 1.0 - WARP_EPS).ln()
}

/// The Kumaraswamy CDF `1 - (1 - x^a)^b` at `x`, given as `ln x` from [`warp_ln`], and its
/// derivatives with respect to `ln a` and `ln b`.
fn kumaraswamy(ln_x: f64, a: f64, b: f64) -> (f64, f64, f64) {
    let p = (a * ln_x).exp();
    // q = 1 - x^a, without cancellation when x^a is near 1.
    let q = if p < 0.5 {
        1.0 - p
    } else {
        -(a * ln_x).exp_m1()
    };
    let ln_q = q.ln();
    let q_b = (b * ln_q).exp();
    let d_log_a = a * b * (q_b / q) * p * ln_x;
    let d_log_b = -b * q_b * ln_q;
    (1.0 - q_b, d_log_a, d_log_b)
}

/// `(a, b)` of each warped column from [`Hyper::log_warp`].
fn warp_shapes(log_warp: &[f64]) -> Vec<(f64, f64)> {
    let m = log_warp.len() / 2;
    (0..m)
        .map(|t| (log_warp[t].exp(), log_warp[m + t].exp()))
        .collect()
}

/// `x` with the warped columns passed through their Kumaraswamy CDFs (borrowed as it is when
/// no column is warped).
fn warp_point<'a>(x: &'a [f64], warped: &[usize], shapes: &[(f64, f64)]) -> Cow<'a, [f64]> {
    if warped.is_empty() {
        return Cow::Borrowed(x);
    }
    let mut out = x.to_vec();
    for (&c, &(a, b)) in warped.iter().zip(shapes) {
        out[c] = kumaraswamy(warp_ln(x[c]), a, b).0;
    }
    Cow::Owned(out)
}

/// Training inputs after warping, with what the likelihood's gradient needs from them.
struct Warped {
    /// The inputs, warped columns replaced.
    x: DMatrix<f64>,
    /// Squared differences of the warped inputs, packed as [`GpData`]'s.
    sq: Vec<f64>,
    /// `d w / d ln a` and `d w / d ln b`, one column per warped column (empty unless asked).
    d_log_a: DMatrix<f64>,
    d_log_b: DMatrix<f64>,
}

/// The training inputs warped by `log_warp` (as [`Hyper::log_warp`]), or `None` when `data` warps no column.
fn warp_inputs(data: &GpData, log_warp: &[f64], derivatives: bool) -> Option<Warped> {
    if data.warped.is_empty() {
        return None;
    }
    let (n, d, m) = (data.len(), data.dim(), data.warped.len());
    let shapes = warp_shapes(log_warp);
    let mut x = data.x.clone();
    let (mut d_log_a, mut d_log_b) = if derivatives {
        (DMatrix::zeros(n, m), DMatrix::zeros(n, m))
    } else {
        (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0))
    };
    for (t, (&c, &(a, b))) in data.warped.iter().zip(&shapes).enumerate() {
        let at: Vec<(f64, f64, f64)> = data.warp_levels[t]
            .iter()
            .map(|&ln_x| kumaraswamy(ln_x, a, b))
            .collect();
        for i in 0..n {
            let (w, da, db) = at[data.warp_level[i * m + t]];
            x[(i, c)] = w;
            if derivatives {
                d_log_a[(i, t)] = da;
                d_log_b[(i, t)] = db;
            }
        }
    }
    // Only the warped columns' differences change.
    let mut sq = data.sq.clone();
    let mut pair = 0;
    for i in 0..n {
        for j in 0..i {
            for &c in &data.warped {
                sq[pair * d + c] = (x[(i, c)] - x[(j, c)]).powi(2);
            }
            pair += 1;
        }
    }
    Some(Warped {
        x,
        sq,
        d_log_a,
        d_log_b,
    })
}

/// Matern 5/2 ARD covariance between two points (as given: no input warping).
pub fn kernel(a: &[f64], b: &[f64], hyper: &Hyper) -> f64 {
    Scales::of(hyper).kernel(a, b)
}

/// A kernel's `1 / l_d^2` and signal variance, worked out once for the many pairs a
/// prediction visits (the same numbers [`kernel`] computes pair by pair, so the same values).
struct Scales {
    inv_l2: Vec<f64>,
    s2: f64,
}

impl Scales {
    fn of(hyper: &Hyper) -> Scales {
        Scales {
            inv_l2: hyper
                .log_length_scales
                .iter()
                .map(|ll| (-2.0 * ll).exp())
                .collect(),
            s2: hyper.log_signal_var.exp(),
        }
    }

    fn kernel(&self, a: &[f64], b: &[f64]) -> f64 {
        let r2: f64 = a
            .iter()
            .zip(b)
            .zip(&self.inv_l2)
            .map(|((x, y), w)| (x - y).powi(2) * w)
            .sum();
        self.s2 * matern52(r2.sqrt())
    }
}

/// Cholesky with a jitter ladder: tries the matrix as is, then adds growing multiples of its mean
/// diagonal. Returns the factor and the jitter used.
fn cholesky_jitter(k: DMatrix<f64>) -> Result<(Cholesky<f64, Dyn>, f64), GpError> {
    if k.iter().any(|v| !v.is_finite()) {
        return Err(GpError::NotPositiveDefinite { jitter: 0.0 });
    }
    let n = k.nrows();
    let scale = (k.trace() / n as f64).abs().max(1e-300);
    let mut last = 0.0;
    for jitter in [0.0, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2] {
        let mut m = k.clone();
        for i in 0..n {
            m[(i, i)] += jitter * scale;
        }
        if let Some(c) = Cholesky::new(m) {
            if c.l_dirty()
                .diagonal()
                .iter()
                .all(|v| *v > 0.0 && v.is_finite())
            {
                return Ok((c, jitter * scale));
            }
        }
        last = jitter * scale;
    }
    Err(GpError::NotPositiveDefinite { jitter: last })
}

/// Kernel matrix with `diagonal_extra` (the noise, or 0) added to its diagonal and, when
/// `distances` asks for them (else empty), for every pair `j < i` the scaled distance at
/// `r[i * n + j]` and `exp(-sqrt5 r)` at `r[j * n + i]`.
fn kernel_matrix(
    data: &GpData,
    sq: &[f64],
    hyper: &Hyper,
    diagonal_extra: f64,
    distances: bool,
) -> (DMatrix<f64>, Vec<f64>) {
    let n = data.len();
    let Scales { inv_l2, s2 } = Scales::of(hyper);
    let mut r = if distances {
        vec![0.0; n * n]
    } else {
        Vec::new()
    };
    let mut k = DMatrix::zeros(n, n);
    let mut pairs = sq.chunks_exact(inv_l2.len().max(1));
    for i in 0..n {
        k[(i, i)] = s2 + diagonal_extra;
        for j in 0..i {
            let mut r2 = 0.0;
            for (sq, w) in pairs.next().unwrap_or_default().iter().zip(&inv_l2) {
                r2 += sq * w;
            }
            let rij = r2.sqrt();
            // matern52(rij), spelled out so the gradient can reuse its exponential.
            let s = SQRT5 * rij;
            let decay = (-s).exp();
            if distances {
                r[i * n + j] = rij;
                r[j * n + i] = decay;
            }
            let v = s2 * ((1.0 + s + s * s / 3.0) * decay);
            k[(i, j)] = v;
            k[(j, i)] = v;
        }
    }
    (k, r)
}

/// One warped column as the likelihood's gradient reads it: its warped training inputs, their
/// derivatives in ln a and ln b, and the column's 1 / l^2.
struct WarpColumn<'a> {
    x: &'a [f64],
    d_log_a: &'a [f64],
    d_log_b: &'a [f64],
    inv_l2: f64,
}

/// Log marginal likelihood of the standardised targets and its gradient with respect to
/// `[ln l_1..ln l_d, ln s2, ln noise, ln a_1..ln a_m, ln b_1..ln b_m]` (the warping entries
/// only when `data` warps `m > 0` columns).
pub fn log_marginal_likelihood(data: &GpData, hyper: &Hyper) -> Result<(f64, Vec<f64>), GpError> {
    let n = data.len();
    let d = data.dim();
    let m = data.warped.len();
    let Factor {
        kf,
        r,
        chol,
        alpha,
        lml,
        warped,
    } = factorise(data, hyper, true)?;
    let noise = hyper.log_noise_var.exp();

    // dL/dtheta = 0.5 tr(W dK/dtheta), W = alpha alpha^T - K^-1 (symmetric).
    let kinv = inverse(&chol);
    let Scales { inv_l2, s2 } = Scales::of(hyper);
    let mut grad = vec![0.0; d + 2 + 2 * m];
    let mut g_signal = 0.0;
    let mut trace_w = 0.0;
    let sq = warped.as_ref().map_or(&data.sq[..], |w| &w.sq[..]);
    let mut pairs = sq.chunks_exact(d.max(1));
    // The warped columns as slices (the matrices are column-major): the pair loop indexes no
    // matrix.
    let columns: Vec<WarpColumn> = warped.as_ref().map_or(Vec::new(), |w| {
        data.warped
            .iter()
            .enumerate()
            .map(|(t, &c)| WarpColumn {
                x: &w.x.as_slice()[c * n..(c + 1) * n],
                d_log_a: &w.d_log_a.as_slice()[t * n..(t + 1) * n],
                d_log_b: &w.d_log_b.as_slice()[t * n..(t + 1) * n],
                inv_l2: inv_l2[c],
            })
            .collect()
    });
    let (grad_kernel, grad_warp) = grad.split_at_mut(d + 2);
    let (grad_a, grad_b) = grad_warp.split_at_mut(m);
    for i in 0..n {
        let wii = alpha[i] * alpha[i] - kinv[(i, i)];
        trace_w += wii;
        g_signal += wii * kf[(i, i)];
        for j in 0..i {
            let w = alpha[i] * alpha[j] - kinv[(i, j)];
            g_signal += 2.0 * w * kf[(i, j)];
            let (rij, decay) = (r[i * n + j], r[j * n + i]);
            let s = SQRT5 * rij;
            // d k / d ln l_d = s2 (5/3) (1 + sqrt5 r) exp(-sqrt5 r) (x_d - x'_d)^2 / l_d^2
            let common = 2.0 * w * s2 * (5.0 / 3.0) * (1.0 + s) * decay;
            for ((g, sq), il) in grad_kernel
                .iter_mut()
                .zip(pairs.next().unwrap_or_default())
                .zip(&inv_l2)
            {
                *g += common * sq * il;
            }
            // d k / d ln a_c = -s2 (5/3) (1 + sqrt5 r) exp(-sqrt5 r) (w_c - w'_c)
            //                  (dw_c/d ln a - dw'_c/d ln a) / l_c^2, and likewise for ln b.
            for ((col, ga), gb) in columns.iter().zip(grad_a.iter_mut()).zip(grad_b.iter_mut()) {
                let dw = (col.x[i] - col.x[j]) * col.inv_l2 * common;
                *ga -= dw * (col.d_log_a[i] - col.d_log_a[j]);
                *gb -= dw * (col.d_log_b[i] - col.d_log_b[j]);
            }
        }
    }
    for g in grad.iter_mut().take(d) {
        *g *= 0.5;
    }
    for g in grad.iter_mut().skip(d + 2) {
        *g *= 0.5;
    }
    grad[d] = 0.5 * g_signal;
    grad[d + 1] = 0.5 * noise * trace_w;
    Ok((lml, grad))
}

/// K^-1 from K's Cholesky factor L: the numbers `Cholesky::inverse` gives, bit for bit, at
/// about a third of its work. Column c solves L L^T x = e_c. Its forward pass leaves the rows
/// above c at zero and so needs only L's trailing block from (c, c); its backward pass works
/// from the last row up, so rows c.. come first and also need only that block. Those are the
/// column's entries on and below the diagonal; K^-1 is symmetric, so the rest is their mirror.
fn inverse(chol: &Cholesky<f64, Dyn>) -> DMatrix<f64> {
    let l = chol.l_dirty();
    let n = l.nrows();
    let mut inv = DMatrix::zeros(n, n);
    for c in 0..n {
        let block = l.view((c, c), (n - c, n - c));
        let mut x = DVector::zeros(n - c);
        x[0] = 1.0;
        block.solve_lower_triangular_unchecked_mut(&mut x);
        block.ad_solve_lower_triangular_unchecked_mut(&mut x);
        for (r, v) in x.iter().enumerate() {
            inv[(c + r, c)] = *v;
            inv[(c, c + r)] = *v;
        }
    }
    inv
}

/// Where each hyper-parameter sits in the vector a fit or a sampler moves:
/// `[ln l_1..ln l_d, ln s2]`, then ln noise when it is fitted, then `[ln a_1..ln a_m,
/// ln b_1..ln b_m]` when `m` columns are warped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    d: usize,
    /// ln noise in standardised units when it is fixed (then the vector has no noise entry).
    fixed_log_noise: Option<f64>,
    m: usize,
}

impl Layout {
    /// Where the warping's parameters begin in the vector (its length when nothing is warped).
    pub(crate) fn warp_start(&self) -> usize {
        self.d + 1 + usize::from(self.fixed_log_noise.is_none())
    }
    /// The hyper-parameters at `theta`.
    pub(crate) fn hyper(&self, theta: &[f64]) -> Hyper {
        let d = self.d;
        Hyper {
            log_length_scales: theta[..d].to_vec(),
            log_signal_var: theta[d],
            log_noise_var: self.fixed_log_noise.unwrap_or_else(|| theta[d + 1]),
            log_warp: theta[self.warp_start()..].to_vec(),
        }
    }
    /// `h` clamped into the bounds, as a vector in this layout; what `h` lacks (all of it when
    /// `None`, the length-scales or the warping when of the wrong length) starts where a fit
    /// without a warm start would: length-scales 0.5, unit signal variance, noise in the middle
    /// of its bounds, warping the identity.
    pub(crate) fn theta(&self, h: Option<&Hyper>, bounds: &Bounds) -> Vec<f64> {
        let d = self.d;
        let mut t = match h {
            Some(h) if h.log_length_scales.len() == d => h.log_length_scales.clone(),
            _ => vec![(0.5f64).ln(); d],
        };
        t.push(h.map_or(0.0, |h| h.log_signal_var));
        if self.fixed_log_noise.is_none() {
            t.push(h.map_or((bounds.lo[d + 1] + bounds.hi[d + 1]) / 2.0, |h| {
                h.log_noise_var
            }));
        }
        match h {
            Some(h) if h.log_warp.len() == 2 * self.m => t.extend(&h.log_warp),
            _ => t.extend(std::iter::repeat_n(0.0, 2 * self.m)),
        }
        t.iter()
            .zip(bounds.lo.iter().zip(&bounds.hi))
            .map(|(v, (lo, hi))| v.clamp(*lo, *hi))
            .collect()
    }
    /// `log_marginal_likelihood`'s gradient, in this layout's order.
    fn gradient(&self, full: &[f64]) -> Vec<f64> {
        let d = self.d;
        let mut g = full[..=d].to_vec();
        if self.fixed_log_noise.is_none() {
            g.push(full[d + 1]);
        }
        g.extend(&full[d + 2..]);
        g
    }
    /// ln prior at `theta` (up to a constant) and its gradient: `prior` on the kernel's
    /// parameters, and each warping parameter's log-normal prior centred on the identity.
    pub(crate) fn log_prior(&self, prior: Option<Prior>, theta: &[f64]) -> (f64, Vec<f64>) {
        let start = self.warp_start();
        let (mut lp, mut grad) = match prior {
            Some(p) => p.log_density(&theta[..start], self.d, self.fixed_log_noise.is_none()),
            None => (0.0, vec![0.0; start]),
        };
        for &t in &theta[start..] {
            lp -= 0.5 * t * t / WARP_PRIOR_VAR;
            grad.push(-t / WARP_PRIOR_VAR);
        }
        (lp, grad)
    }
    /// Whether anything is added to the likelihood (a prior, or warping's prior).
    fn has_prior(&self, prior: Option<Prior>) -> bool {
        prior.is_some() || self.m > 0
    }
}

/// Bounds in log space of the free hyper-parameters, in the order [`Layout`] says.
pub(crate) fn free_parameters(data: &GpData, config: &GpConfig) -> (Bounds, Layout) {
    let d = data.dim();
    let (ls_lo, ls_hi) = (config.length_scale.0.ln(), config.length_scale.1.ln());
    let (sv_lo, sv_hi) = (config.signal_var.0.ln(), config.signal_var.1.ln());
    let mut lo = vec![ls_lo; d];
    let mut hi = vec![ls_hi; d];
    lo.push(sv_lo);
    hi.push(sv_hi);
    let fixed_log_noise = match config.noise {
        Noise::Fixed(v) => Some(data.noise_to_standard(v.max(1e-12)).ln()),
        Noise::Fitted { min, max } => {
            lo.push(data.noise_to_standard(min.max(1e-12)).ln());
            hi.push(data.noise_to_standard(max.max(min * 1.0001)).ln());
            None
        }
    };
    let m = data.warped.len();
    lo.extend(std::iter::repeat_n(WARP_BOUNDS.0.ln(), 2 * m));
    hi.extend(std::iter::repeat_n(WARP_BOUNDS.1.ln(), 2 * m));
    (
        Bounds { lo, hi },
        Layout {
            d,
            fixed_log_noise,
            m,
        },
    )
}

/// Log marginal likelihood of the standardised targets, without the gradient (a Cholesky and
/// one solve: what a sampler needs at each of its many evaluations).
pub fn log_marginal_likelihood_value(data: &GpData, hyper: &Hyper) -> Result<f64, GpError> {
    factorise(data, hyper, false).map(|f| f.lml)
}

/// The training covariance under `hyper`, factorised, with what the likelihood and the
/// posterior need from it.
struct Factor {
    /// Kernel matrix without noise (empty unless the gradient needs it).
    kf: DMatrix<f64>,
    /// Scaled distances and their decays, as [`kernel_matrix`] lays them out (empty unless the
    /// gradient needs them).
    r: Vec<f64>,
    chol: Cholesky<f64, Dyn>,
    /// K^-1 y.
    alpha: DVector<f64>,
    lml: f64,
    /// The warped inputs (with derivatives when the gradient needs them), if any column is.
    warped: Option<Warped>,
}

/// With `for_gradient` it keeps the noise-free kernel matrix and the distances the gradient
/// needs; without, it builds the noisy matrix in place (the same numbers, fewer copies: what the
/// sampler's many evaluations and conditioning need).
fn factorise(data: &GpData, hyper: &Hyper, for_gradient: bool) -> Result<Factor, GpError> {
    let n = data.len();
    if !hyper.fits(data) {
        return Err(GpError::Shape {
            got: hyper.log_length_scales.len() + hyper.log_warp.len() / 2,
            want: data.dim() + data.warped.len(),
        });
    }
    let noise = hyper.log_noise_var.exp();
    let warped = warp_inputs(data, &hyper.log_warp, for_gradient);
    let sq = warped.as_ref().map_or(&data.sq[..], |w| &w.sq[..]);
    let (kf, r, k) = if for_gradient {
        let (kf, r) = kernel_matrix(data, sq, hyper, 0.0, true);
        let mut k = kf.clone();
        for i in 0..n {
            k[(i, i)] += noise;
        }
        (kf, r, k)
    } else {
        let (k, _) = kernel_matrix(data, sq, hyper, noise, false);
        (DMatrix::zeros(0, 0), Vec::new(), k)
    };
    let (chol, _) = cholesky_jitter(k)?;
    let alpha = chol.solve(&data.y);
    let log_det: f64 = chol
        .l_dirty()
        .diagonal()
        .iter()
        .map(|v| v.ln())
        .sum::<f64>()
        * 2.0;
    let lml = -0.5 * data.y.dot(&alpha) - 0.5 * log_det - 0.5 * n as f64 * LN_2PI;
    Ok(Factor {
        kf,
        r,
        chol,
        alpha,
        lml,
        warped,
    })
}

/// Bounds in log space for each entry of the hyper-parameter vector being optimised.
#[derive(Debug, Clone)]
pub(crate) struct Bounds {
    pub(crate) lo: Vec<f64>,
    pub(crate) hi: Vec<f64>,
}

impl Bounds {
    fn theta(&self, u: &[f64]) -> Vec<f64> {
        u.iter()
            .zip(self.lo.iter().zip(&self.hi))
            .map(|(u, (lo, hi))| lo + (hi - lo) * sigmoid(*u))
            .collect()
    }
    fn dtheta_du(&self, u: &[f64]) -> Vec<f64> {
        u.iter()
            .zip(self.lo.iter().zip(&self.hi))
            .map(|(u, (lo, hi))| {
                let s = sigmoid(*u);
                (hi - lo) * s * (1.0 - s)
            })
            .collect()
    }
    fn u(&self, theta: &[f64]) -> Vec<f64> {
        theta
            .iter()
            .zip(self.lo.iter().zip(&self.hi))
            .map(|(t, (lo, hi))| {
                let p = ((t - lo) / (hi - lo)).clamp(1e-6, 1.0 - 1e-6);
                (p / (1.0 - p)).ln()
            })
            .collect()
    }
}

fn sigmoid(u: f64) -> f64 {
    1.0 / (1.0 + (-u).exp())
}

/// The fit's objective in the optimiser's unconstrained coordinates: negative log posterior
/// (negative log marginal likelihood plus the optional prior).
struct Objective<'a> {
    data: &'a GpData,
    bounds: &'a Bounds,
    layout: Layout,
    prior: Option<Prior>,
    cache: RefCell<Option<Evaluation>>,
}

/// The last point evaluated, its cost and gradient (argmin asks for both separately).
type Evaluation = (Vec<f64>, f64, Vec<f64>);

/// Cost returned where the covariance cannot be factorised: large, so line searches back off.
const INFEASIBLE: f64 = 1e10;

impl Objective<'_> {
    fn eval(&self, u: &[f64]) -> (f64, Vec<f64>) {
        if let Some((cu, c, g)) = self.cache.borrow().as_ref() {
            if cu.as_slice() == u {
                return (*c, g.clone());
            }
        }
        let theta = self.bounds.theta(u);
        let out = match log_marginal_likelihood(self.data, &self.layout.hyper(&theta)) {
            Ok((lml, grad)) => {
                let mut cost = -lml;
                let mut g: Vec<f64> = self.layout.gradient(&grad).iter().map(|v| -v).collect();
                if self.layout.has_prior(self.prior) {
                    let (lp, lg) = self.layout.log_prior(self.prior, &theta);
                    cost -= lp;
                    for (gk, lk) in g.iter_mut().zip(lg) {
                        *gk -= lk;
                    }
                }
                let dt = self.bounds.dtheta_du(u);
                for (gk, dk) in g.iter_mut().zip(dt) {
                    *gk *= dk;
                }
                if cost.is_finite() && g.iter().all(|v| v.is_finite()) {
                    (cost, g)
                } else {
                    (INFEASIBLE, vec![0.0; u.len()])
                }
            }
            Err(_) => (INFEASIBLE, vec![0.0; u.len()]),
        };
        *self.cache.borrow_mut() = Some((u.to_vec(), out.0, out.1.clone()));
        out
    }
}

/// argmin takes its problem by value; this lends it the shared objective (and its cache).
struct Problem<'o, 'a>(&'o Objective<'a>);

impl CostFunction for Problem<'_, '_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, u: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        Ok(self.0.eval(u).0)
    }
}

impl Gradient for Problem<'_, '_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, u: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.0.eval(u).1)
    }
}

/// A Gaussian process conditioned on its training data, with fixed hyper-parameters.
#[derive(Debug, Clone)]
pub struct FittedGp {
    data: GpData,
    hyper: Hyper,
    /// The training inputs as the kernel sees them when some are warped (else the data's own).
    warped_x: Option<DMatrix<f64>>,
    chol: Cholesky<f64, Dyn>,
    alpha: DVector<f64>,
    lml: f64,
}

impl FittedGp {
    /// Conditions the GP on `data` with the given hyper-parameters (no fitting).
    pub fn condition(data: GpData, hyper: Hyper) -> Result<FittedGp, GpError> {
        let Factor {
            chol,
            alpha,
            lml,
            warped,
            ..
        } = factorise(&data, &hyper, false)?;
        Ok(FittedGp {
            warped_x: warped.map(|w| w.x),
            data,
            hyper,
            chol,
            alpha,
            lml,
        })
    }

    /// Fits the hyper-parameters by maximising the log marginal likelihood (plus the optional
    /// prior) with L-BFGS from several starts, then conditions on the data. `warm` (for example
    /// the previous fit's hyper-parameters) is used as the first start. With a second core the
    /// starts run two at a time; the fit is the same either way.
    pub fn fit(
        data: GpData,
        config: &GpConfig,
        rng: &mut Rng,
        warm: Option<&Hyper>,
    ) -> Result<FittedGp, GpError> {
        Self::fit_starts(data, config, rng, warm, crate::spare_core())
    }

    /// [`FittedGp::fit`], running every other start on a second thread when `beside`.
    fn fit_starts(
        data: GpData,
        config: &GpConfig,
        rng: &mut Rng,
        warm: Option<&Hyper>,
        beside: bool,
    ) -> Result<FittedGp, GpError> {
        let (bounds, layout) = free_parameters(&data, config);

        // The warm start, or length-scales of the order of the unit cube, unit variance,
        // modest noise and no warping.
        let mut starts: Vec<Vec<f64>> = vec![layout.theta(warm.filter(|h| h.fits(&data)), &bounds)];
        let warp_start = layout.warp_start();
        for _ in 0..config.restarts {
            // Random kernel parameters; the warping (if any) starts at the identity, which its
            // prior favours.
            starts.push(
                bounds
                    .lo
                    .iter()
                    .zip(&bounds.hi)
                    .enumerate()
                    .map(|(k, (lo, hi))| {
                        if k < warp_start {
                            lo + (hi - lo) * rng.next_f64()
                        } else {
                            0.0
                        }
                    })
                    .collect(),
            );
        }

        // One start: its L-BFGS run's best point (unconstrained) and cost.
        let from = |theta0: &Vec<f64>| -> (f64, Vec<f64>) {
            let objective = Objective {
                data: &data,
                bounds: &bounds,
                layout,
                prior: config.prior,
                cache: RefCell::new(None),
            };
            let u0 = bounds.u(theta0);
            let (c0, _) = objective.eval(&u0);
            let mut cand = (c0, u0.clone());
            if config.max_iters > 0 {
                let mut solver = LBFGS::new(MoreThuenteLineSearch::new(), 7);
                // Without a prior the likelihood's optimum is mostly at a bound, where the
                // sigmoid flattens the gradient and L-BFGS ends in a few steps; a prior puts
                // it inside, and argmin's default tolerances (gradient 1.5e-8) then spend every
                // iteration on digits no acquisition can tell apart (36 ms per ask at 30
                // probes against 7 ms with these). Warping adds directions in which the
                // posterior is nearly flat, where every start crawled on to the iteration cap
                // for gains of 1e-3 nats: its fits stop once an iteration gains under 1e-4.
                if layout.has_prior(config.prior) {
                    let tolerance_cost = if layout.m > 0 { 1e-4 } else { 1e-9 };
                    solver = solver
                        .with_tolerance_grad(1e-4)
                        .expect("positive tolerance")
                        .with_tolerance_cost(tolerance_cost)
                        .expect("positive tolerance");
                }
                let run = Executor::new(Problem(&objective), solver)
                    .configure(|s| s.param(u0).max_iters(config.max_iters))
                    .run();
                // A failed line search still leaves the start as a valid answer.
                if let Ok(res) = run {
                    let st = res.state();
                    if let Some(p) = st.best_param.as_ref() {
                        if st.best_cost.is_finite() && st.best_cost < cand.0 {
                            cand = (st.best_cost, p.clone());
                        }
                    }
                }
            }
            cand
        };
        // The starts are independent: with a second core, every other one runs on a second
        // thread. The results are then taken in the starts' order, so the fit is the same.
        let mut results: Vec<Option<(f64, Vec<f64>)>> = vec![None; starts.len()];
        let ran_beside = starts.len() > 1
            && beside
            && std::thread::scope(|scope| {
                let second = std::thread::Builder::new()
                    .name("fit-starts".into())
                    .spawn_scoped(scope, || {
                        starts
                            .iter()
                            .skip(1)
                            .step_by(2)
                            .map(from)
                            .collect::<Vec<_>>()
                    });
                let Ok(second) = second else {
                    return false;
                };
                for (i, theta0) in starts.iter().enumerate().step_by(2) {
                    results[i] = Some(from(theta0));
                }
                let theirs = second
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                for (slot, r) in results.iter_mut().skip(1).step_by(2).zip(theirs) {
                    *slot = Some(r);
                }
                true
            });
        if !ran_beside {
            results = starts.iter().map(|t| Some(from(t))).collect();
        }
        let mut best: Option<(f64, Vec<f64>)> = None;
        for cand in results.into_iter().flatten() {
            if best.as_ref().is_none_or(|b| cand.0 < b.0) {
                best = Some(cand);
            }
        }
        let (_, u) = best.ok_or(GpError::NoData)?;
        let hyper = layout.hyper(&bounds.theta(&u));
        FittedGp::condition(data, hyper)
    }

    /// This GP with its own posterior mean at `xs` added as observations, hyper-parameters
    /// unchanged (the "kriging believer"): what the model will think once probes in flight come
    /// back as it expects. Their variance collapses, so an acquisition computed on it looks
    /// elsewhere.
    pub fn believing(&self, xs: &[Vec<f64>]) -> Result<FittedGp, GpError> {
        if xs.is_empty() {
            return Ok(self.clone());
        }
        let refs: Vec<&[f64]> = xs.iter().map(Vec::as_slice).collect();
        let means: Vec<f64> = self
            .predict_many(&refs)
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        self.told(xs, &means)
    }

    /// This GP with `xs` observed at `ys` (raw target units), hyper-parameters unchanged.
    pub fn told(&self, xs: &[Vec<f64>], ys: &[f64]) -> Result<FittedGp, GpError> {
        FittedGp::condition(self.data.with_points(xs, ys)?, self.hyper.clone())
    }

    /// The training inputs as the kernel sees them.
    fn inputs(&self) -> &DMatrix<f64> {
        self.warped_x.as_ref().unwrap_or(&self.data.x)
    }

    /// The largest training target, in raw units.
    pub fn max_target(&self) -> f64 {
        self.data.y_mean + self.data.y_sd * self.data.y.max()
    }

    pub fn hyper(&self) -> &Hyper {
        &self.hyper
    }
    /// Log marginal likelihood of the standardised targets at the fitted hyper-parameters.
    pub fn log_marginal_likelihood(&self) -> f64 {
        self.lml
    }
    pub fn data(&self) -> &GpData {
        &self.data
    }
    /// Observation-noise variance in raw target units.
    pub fn noise_var(&self) -> f64 {
        self.hyper.log_noise_var.exp() * self.data.y_sd.powi(2)
    }

    /// Posterior mean and variance of the latent function at `x`, in raw target units
    /// (variance excludes observation noise and is never negative).
    pub fn predict(&self, x: &[f64]) -> (f64, f64) {
        let n = self.data.len();
        let scales = Scales::of(&self.hyper);
        let x = warp_point(x, &self.data.warped, &warp_shapes(&self.hyper.log_warp));
        let inputs = self.inputs();
        let ks = DVector::from_fn(n, |i, _| {
            scales.kernel(inputs.row(i).transpose().as_slice(), &x)
        });
        let mean = ks.dot(&self.alpha);
        let v = self
            .chol
            .l_dirty()
            .solve_lower_triangular(&ks)
            .unwrap_or_else(|| DVector::zeros(n));
        let var = (self.hyper.log_signal_var.exp() - v.dot(&v)).max(0.0);
        (
            self.data.y_mean + self.data.y_sd * mean,
            var * self.data.y_sd * self.data.y_sd,
        )
    }

    /// [`FittedGp::predict`] for many points at once (one triangular solve for all).
    pub fn predict_many(&self, xs: &[&[f64]]) -> Vec<(f64, f64)> {
        let n = self.data.len();
        let m = xs.len();
        if m == 0 {
            return Vec::new();
        }
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|i| self.inputs().row(i).iter().copied().collect())
            .collect();
        let scales = Scales::of(&self.hyper);
        let shapes = warp_shapes(&self.hyper.log_warp);
        let xs: Vec<Cow<[f64]>> = xs
            .iter()
            .map(|x| warp_point(x, &self.data.warped, &shapes))
            .collect();
        let ks = DMatrix::from_fn(n, m, |i, j| scales.kernel(&rows[i], &xs[j]));
        let means = ks.tr_mul(&self.alpha);
        let l = self.chol.l_dirty().lower_triangle();
        let v = l
            .solve_lower_triangular(&ks)
            .unwrap_or_else(|| DMatrix::zeros(n, m));
        let s2 = self.hyper.log_signal_var.exp();
        let sd2 = self.data.y_sd * self.data.y_sd;
        (0..m)
            .map(|j| {
                let q: f64 = v.column(j).iter().map(|a| a * a).sum();
                (
                    self.data.y_mean + self.data.y_sd * means[j],
                    (s2 - q).max(0.0) * sd2,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize, d: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
        let mut r = Rng::new(seed);
        let x: Vec<Vec<f64>> = (0..n)
            .map(|_| (0..d).map(|_| r.next_f64()).collect())
            .collect();
        let y = x
            .iter()
            .map(|p| (3.0 * p[0]).sin() + p.iter().skip(1).map(|v| 0.3 * v).sum::<f64>())
            .collect();
        (x, y)
    }

    #[test]
    fn believing_keeps_the_mean_and_collapses_the_variance_where_probes_are_in_flight() {
        let (x, y) = toy(10, 2, 3);
        let data = GpData::new(&x, &y).unwrap();
        let h = Hyper {
            log_length_scales: vec![-1.0, -0.5],
            log_signal_var: 0.0,
            log_noise_var: -6.0,
            log_warp: vec![],
        };
        let gp = FittedGp::condition(data, h).unwrap();
        let pending = vec![vec![0.33, 0.71], vec![0.9, 0.1]];
        let believed = gp.believing(&pending).unwrap();
        assert_eq!(believed.data().len(), 12);
        assert_eq!(
            believed.data().y_sd(),
            gp.data().y_sd(),
            "standardisation kept"
        );
        for p in &pending {
            let (m0, v0) = gp.predict(p);
            let (m1, v1) = believed.predict(p);
            assert!(
                (m0 - m1).abs() < 1e-3 * (1.0 + m0.abs()),
                "mean {m0} became {m1}"
            );
            assert!(v1 < 0.1 * v0, "variance {v0} only fell to {v1}");
        }
        // The training points themselves are still predicted as before.
        for xi in &x {
            let (a, _) = gp.predict(xi);
            let (b, _) = believed.predict(xi);
            assert!((a - b).abs() < 1e-3 * (1.0 + a.abs()));
        }
        assert!(gp.believing(&[]).unwrap().data().len() == 10);
        assert!(gp.believing(&[vec![f64::NAN, 0.0]]).is_err());
    }

    #[test]
    fn the_inverse_is_choleskys_own_bit_for_bit_and_symmetric() {
        for (n, seed) in [(1, 1), (2, 2), (9, 3), (30, 4)] {
            let (x, y) = toy(n, 3, seed);
            let data = GpData::new(&x, &y).unwrap();
            let h = Hyper {
                log_length_scales: vec![-0.4, 0.2, 0.9],
                log_signal_var: 0.3,
                log_noise_var: -5.0,
                log_warp: vec![],
            };
            let chol = factorise(&data, &h, false).unwrap().chol;
            let ours = inverse(&chol);
            let theirs = chol.inverse();
            for i in 0..n {
                for j in 0..=i {
                    assert_eq!(
                        ours[(i, j)].to_bits(),
                        theirs[(i, j)].to_bits(),
                        "({i}, {j})"
                    );
                    assert_eq!(ours[(j, i)], ours[(i, j)]);
                }
            }
        }
    }

    /// Checks `log_marginal_likelihood`'s gradient at `h` against central differences.
    fn assert_gradient_matches_finite_differences(data: &GpData, h: &Hyper) {
        let (_, g) = log_marginal_likelihood(data, h).unwrap();
        let t = h.to_vec();
        assert_eq!(g.len(), t.len());
        let f = |v: &[f64]| {
            let h = Hyper::from_slice(v, data.warped().len());
            log_marginal_likelihood(data, &h).unwrap().0
        };
        for k in 0..t.len() {
            let eps = 1e-5;
            let mut a = t.clone();
            let mut b = t.clone();
            a[k] += eps;
            b[k] -= eps;
            let fd = (f(&a) - f(&b)) / (2.0 * eps);
            assert!(
                (fd - g[k]).abs() < 1e-5 * (1.0 + fd.abs()),
                "parameter {k}: analytic {} vs finite difference {fd}",
                g[k]
            );
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (x, y) = toy(12, 3, 5);
        let data = GpData::new(&x, &y).unwrap();
        let h = Hyper {
            log_length_scales: vec![-0.7, 0.3, 1.1],
            log_signal_var: 0.2,
            log_noise_var: -3.0,
            log_warp: vec![],
        };
        assert_gradient_matches_finite_differences(&data, &h);
    }

    #[test]
    fn warped_gradient_matches_finite_differences() {
        let (x, y) = toy(12, 3, 5);
        let data = GpData::new(&x, &y).unwrap().warping(&[2, 0]).unwrap();
        assert_eq!(data.warped(), &[0, 2]);
        let h = Hyper {
            log_length_scales: vec![-0.7, 0.3, -0.1],
            log_signal_var: 0.2,
            log_noise_var: -3.0,
            // a_0, a_2, b_0, b_2
            log_warp: vec![0.3, -0.6, -0.2, 0.5],
        };
        assert_gradient_matches_finite_differences(&data, &h);
        // The warping's derivatives themselves.
        for x in [0.0, 0.03, 0.5, 0.97, 1.0] {
            for (la, lb) in [(0.0, 0.0), (-1.5, 0.8), (1.2, -2.0)] {
                let k = |la: f64, lb: f64| kumaraswamy(warp_ln(x), f64::exp(la), f64::exp(lb));
                let (w, da, db) = k(la, lb);
                assert!((0.0..=1.0).contains(&w), "w({x}) = {w}");
                let eps = 1e-6;
                let fa = (k(la + eps, lb).0 - k(la - eps, lb).0) / (2.0 * eps);
                let fb = (k(la, lb + eps).0 - k(la, lb - eps).0) / (2.0 * eps);
                assert!(
                    (fa - da).abs() < 1e-6 && (fb - db).abs() < 1e-6,
                    "x {x}: {da} {fa} {db} {fb}"
                );
            }
        }
    }

    #[test]
    fn identity_warping_changes_nothing_and_shapes_are_checked() {
        let (x, y) = toy(10, 2, 7);
        let plain = GpData::new(&x, &y).unwrap();
        let warped = plain.clone().warping(&[0, 1]).unwrap();
        let h = Hyper {
            log_length_scales: vec![-1.0, 0.4],
            log_signal_var: 0.1,
            log_noise_var: -4.0,
            log_warp: vec![],
        };
        let hw = Hyper {
            log_warp: vec![0.0; 4],
            ..h.clone()
        };
        let a = FittedGp::condition(plain.clone(), h.clone()).unwrap();
        let b = FittedGp::condition(warped.clone(), hw.clone()).unwrap();
        assert!((a.log_marginal_likelihood() - b.log_marginal_likelihood()).abs() < 1e-9);
        let pts = [vec![0.2, 0.9], vec![0.61, 0.05]];
        let refs: Vec<&[f64]> = pts.iter().map(Vec::as_slice).collect();
        for ((ma, va), (mb, vb)) in a.predict_many(&refs).into_iter().zip(b.predict_many(&refs)) {
            assert!((ma - mb).abs() < 1e-9 && (va - vb).abs() < 1e-9);
        }
        // A non-identity warping moves predictions, the same way one at a time and in bulk.
        let bent = FittedGp::condition(
            warped.clone(),
            Hyper {
                log_warp: vec![1.0, 0.0, -0.5, 0.0],
                ..h.clone()
            },
        )
        .unwrap();
        let many = bent.predict_many(&refs);
        assert!((many[0].0 - a.predict(&pts[0]).0).abs() > 1e-6);
        for (p, (m, v)) in pts.iter().zip(many) {
            let (m1, v1) = bent.predict(p);
            assert!((m - m1).abs() < 1e-12 && (v - v1).abs() < 1e-12);
        }
        // Told points keep the warping.
        assert_eq!(
            bent.told(&[vec![0.5, 0.5]], &[0.0])
                .unwrap()
                .data()
                .warped(),
            &[0, 1]
        );
        // Hyper-parameters without the warping do not fit warped data, and columns must exist.
        assert!(matches!(
            FittedGp::condition(warped, h),
            Err(GpError::Shape { .. })
        ));
        assert!(matches!(
            FittedGp::condition(plain.clone(), hw),
            Err(GpError::Shape { .. })
        ));
        assert!(matches!(
            plain.warping(&[2]),
            Err(GpError::Shape { got: 3, want: 2 })
        ));
    }

    #[test]
    fn a_fitted_warping_stretches_the_steep_end_of_an_axis() {
        // Cost against memory: steep where the data stops fitting (small x), flat after.
        let x: Vec<Vec<f64>> = (0..14).map(|i| vec![i as f64 / 13.0]).collect();
        let y: Vec<f64> = x.iter().map(|p| (-12.0 * p[0]).exp() * 3.0).collect();
        let cfg = GpConfig {
            prior: Some(Prior::Optuna),
            ..GpConfig::default()
        };
        let plain = GpData::new(&x, &y).unwrap();
        let warped = plain.clone().warping(&[0]).unwrap();
        let a = FittedGp::fit(plain, &cfg, &mut Rng::new(1), None).unwrap();
        let b = FittedGp::fit(warped.clone(), &cfg, &mut Rng::new(1), None).unwrap();
        assert!(b.log_marginal_likelihood() > a.log_marginal_likelihood() + 1.0);
        // a < 1 bends the axis up near 0: the warped input moves fastest where the cost does.
        let w = &b.hyper().log_warp;
        assert!(w[0] < 0.0, "{w:?}");
        let bounds = free_parameters(&warped, &cfg).0;
        assert!(b.hyper().to_vec().len() == 5 && bounds.lo.len() == 5);
        let again = FittedGp::fit(warped, &cfg, &mut Rng::new(1), None).unwrap();
        assert_eq!(b.hyper(), again.hyper());
    }

    #[test]
    fn prior_gradients_match_finite_differences() {
        // Three length-scales, the signal variance, and the noise when it is fitted.
        let theta = [-1.2, 0.1, 0.9, 0.4, -2.5];
        for prior in [
            Prior::Optuna,
            Prior::LogNormal {
                mean: 0.5f64.ln(),
                sd: 0.7,
            },
        ] {
            for len in [4, 5] {
                let t = &theta[..len];
                let (_, g) = prior.log_density(t, 3, len == 5);
                assert_eq!(g.len(), len);
                for k in 0..len {
                    let eps = 1e-6;
                    let mut a = t.to_vec();
                    let mut b = t.to_vec();
                    a[k] += eps;
                    b[k] -= eps;
                    let fd = (prior.log_density(&a, 3, len == 5).0
                        - prior.log_density(&b, 3, len == 5).0)
                        / (2.0 * eps);
                    assert!(
                        (fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()),
                        "{prior:?}, {len} entries, parameter {k}: analytic {} vs {fd}",
                        g[k]
                    );
                }
            }
        }
        // optuna's length-scale term is largest at l = 1 and its noise term favours small noise.
        let at = |l: f64, noise: f64| {
            Prior::Optuna
                .log_density(&[l.ln(), 0.0, noise.ln()], 1, true)
                .0
        };
        assert!(at(1.0, 0.01) > at(0.3, 0.01) && at(1.0, 0.01) > at(3.0, 0.01));
        assert!(at(1.0, 0.01) > at(1.0, 0.5));
    }

    #[test]
    fn posterior_variance_is_never_negative_and_noiseless_fit_interpolates() {
        let (x, y) = toy(15, 2, 9);
        let data = GpData::new(&x, &y).unwrap();
        let h = Hyper {
            log_length_scales: vec![-1.0, -0.5],
            log_signal_var: 0.0,
            log_noise_var: (1e-10f64).ln(),
            log_warp: vec![],
        };
        let gp = FittedGp::condition(data, h).unwrap();
        for (xi, yi) in x.iter().zip(&y) {
            let (m, v) = gp.predict(xi);
            assert!((m - yi).abs() < 1e-4, "mean {m} vs training target {yi}");
            assert!(
                (0.0..1e-6).contains(&v),
                "variance at a training point: {v}"
            );
        }
        let mut r = Rng::new(3);
        let pts: Vec<Vec<f64>> = (0..200)
            .map(|_| vec![r.next_f64() * 3.0 - 1.0, r.next_f64() * 3.0 - 1.0])
            .collect();
        let refs: Vec<&[f64]> = pts.iter().map(|p| p.as_slice()).collect();
        for (p, (m, v)) in pts.iter().zip(gp.predict_many(&refs)) {
            assert!(v >= 0.0, "negative variance {v}");
            let (m1, v1) = gp.predict(p);
            assert!((m - m1).abs() < 1e-9 && (v - v1).abs() < 1e-9);
        }
    }

    #[test]
    fn two_point_posterior_matches_closed_form() {
        // Two points, targets standardise to -1 and +1 (mean 5, sd 2).
        let x = vec![vec![0.0], vec![1.0]];
        let y = vec![3.0, 7.0];
        let data = GpData::new(&x, &y).unwrap();
        let h = Hyper {
            log_length_scales: vec![0.0],
            log_signal_var: 0.0,
            log_noise_var: (0.1f64).ln(),
            log_warp: vec![],
        };
        let gp = FittedGp::condition(data, h).unwrap();
        let c = matern52(1.0);
        // K = [[1.1, c], [c, 1.1]]; k* at x = 0.25 is (m(0.25), m(0.75)).
        let (k1, k2) = (matern52(0.25), matern52(0.75));
        let det = 1.1 * 1.1 - c * c;
        let kinv = [[1.1 / det, -c / det], [-c / det, 1.1 / det]];
        let ys = [-1.0, 1.0];
        let a = [
            kinv[0][0] * ys[0] + kinv[0][1] * ys[1],
            kinv[1][0] * ys[0] + kinv[1][1] * ys[1],
        ];
        let mean = 5.0 + 2.0 * (k1 * a[0] + k2 * a[1]);
        let q = k1 * (kinv[0][0] * k1 + kinv[0][1] * k2) + k2 * (kinv[1][0] * k1 + kinv[1][1] * k2);
        let var = 4.0 * (1.0 - q);
        let (m, v) = gp.predict(&[0.25]);
        assert!((m - mean).abs() < 1e-12, "{m} vs {mean}");
        assert!((v - var).abs() < 1e-12, "{v} vs {var}");
        // Log marginal likelihood closed form.
        let quad = ys[0] * a[0] + ys[1] * a[1];
        let lml = -0.5 * quad - 0.5 * det.ln() - LN_2PI;
        assert!((gp.log_marginal_likelihood() - lml).abs() < 1e-12);
    }

    #[test]
    fn fit_improves_likelihood_stays_in_bounds_and_is_deterministic() {
        let (x, y) = toy(20, 3, 11);
        let data = GpData::new(&x, &y).unwrap();
        let cfg = GpConfig::default();
        let start = Hyper {
            log_length_scales: vec![(0.5f64).ln(); 3],
            log_signal_var: 0.0,
            log_noise_var: (0.01f64).ln(),
            log_warp: vec![],
        };
        let base = log_marginal_likelihood(&data, &start).unwrap().0;
        let gp = FittedGp::fit(data.clone(), &cfg, &mut Rng::new(1), None).unwrap();
        assert!(gp.log_marginal_likelihood() > base);
        for ll in &gp.hyper().log_length_scales {
            assert!(*ll >= cfg.length_scale.0.ln() - 1e-9 && *ll <= cfg.length_scale.1.ln() + 1e-9);
        }
        // The irrelevant-looking dimensions get longer length-scales than the sine dimension.
        let ls = &gp.hyper().log_length_scales;
        assert!(ls[0] < ls[1] && ls[0] < ls[2], "{ls:?}");
        let again = FittedGp::fit(data, &cfg, &mut Rng::new(1), None).unwrap();
        assert_eq!(gp.hyper(), again.hyper());
    }

    #[test]
    fn a_fit_whose_starts_run_two_at_a_time_is_the_fit_run_in_turn() {
        let (x, y) = toy(30, 3, 5);
        for (warped, prior) in [(false, None), (true, Some(Prior::Optuna))] {
            let data = GpData::new(&x, &y).unwrap();
            let data = if warped {
                data.warping(&[0, 1, 2]).unwrap()
            } else {
                data
            };
            let cfg = GpConfig {
                prior,
                restarts: 4,
                ..GpConfig::default()
            };
            let fit = |beside| {
                let mut rng = Rng::new(7);
                let gp = FittedGp::fit_starts(data.clone(), &cfg, &mut rng, None, beside).unwrap();
                (
                    gp.hyper().clone(),
                    gp.log_marginal_likelihood(),
                    rng.next_f64(),
                )
            };
            assert_eq!(fit(false), fit(true), "warped {warped}");
        }
    }

    #[test]
    fn degenerate_inputs_give_results_not_panics() {
        // Duplicate points with different targets and no noise: the jitter ladder copes.
        let x = vec![vec![0.5, 0.5]; 4];
        let y = vec![1.0, 2.0, 1.5, 1.0];
        let data = GpData::new(&x, &y).unwrap();
        let h = Hyper {
            log_length_scales: vec![0.0, 0.0],
            log_signal_var: 0.0,
            log_noise_var: -40.0,
            log_warp: vec![],
        };
        let gp = FittedGp::condition(data.clone(), h).unwrap();
        assert!(gp.predict(&[0.5, 0.5]).1 >= 0.0);
        assert!(FittedGp::fit(data, &GpConfig::default(), &mut Rng::new(2), None).is_ok());
        assert_eq!(GpData::new(&[], &[]).unwrap_err(), GpError::NoData);
        assert!(matches!(
            GpData::new(&[vec![f64::NAN]], &[1.0]),
            Err(GpError::NonFinite { row: 0 })
        ));
        let bad = Hyper {
            log_length_scales: vec![0.0, 0.0],
            log_signal_var: f64::NAN,
            log_noise_var: 0.0,
            log_warp: vec![],
        };
        let data = GpData::new(&[vec![0.0, 0.0], vec![1.0, 1.0]], &[0.0, 1.0]).unwrap();
        assert!(log_marginal_likelihood(&data, &bad).is_err());
    }
}
