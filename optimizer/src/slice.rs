//! Integrating a GP's hyper-parameters out instead of trusting one point estimate: slice samples
//! from their posterior. With a handful of observations the likelihood is flat in several
//! length-scales, and one maximum-likelihood point is overconfident exactly where a search
//! decides whether to look further; averaging over samples widens the uncertainty there.

use crate::gp::{free_parameters, log_marginal_likelihood_value, GpConfig, GpData, Hyper};
use crate::rng::Rng;

/// Draws hyper-parameters from their posterior (the likelihood times a uniform prior within the
/// fit's bounds, times the optional prior) by univariate slice sampling with
/// stepping out (Neal, 2003), one sweep over every free parameter per sample, starting from
/// `start`. Returns the state after each of `sweeps` sweeps; the last is where a later call
/// should continue the chain. Deterministic given `rng`.
pub fn sample_hypers(
    data: &GpData,
    config: &GpConfig,
    start: &Hyper,
    sweeps: usize,
    rng: &mut Rng,
) -> Vec<Hyper> {
    let d = data.dim();
    let (bounds, fixed_log_noise) = free_parameters(data, config);
    let to_hyper = |theta: &[f64]| Hyper {
        log_length_scales: theta[..d].to_vec(),
        log_signal_var: theta[d],
        log_noise_var: fixed_log_noise.unwrap_or_else(|| theta[d + 1]),
    };
    let log_density = |theta: &[f64]| -> f64 {
        let inside = theta
            .iter()
            .zip(bounds.lo.iter().zip(&bounds.hi))
            .all(|(t, (lo, hi))| t >= lo && t <= hi);
        if !inside {
            return f64::NEG_INFINITY;
        }
        let mut lp = match log_marginal_likelihood_value(data, &to_hyper(theta)) {
            Ok(v) if v.is_finite() => v,
            _ => return f64::NEG_INFINITY,
        };
        if let Some(prior) = &config.prior {
            lp += prior.log_density(theta, d).0;
        }
        lp
    };
    let mut theta: Vec<f64> = start.log_length_scales.clone();
    if theta.len() != d {
        theta = vec![(0.5f64).ln(); d];
    }
    theta.push(start.log_signal_var);
    if fixed_log_noise.is_none() {
        theta.push(start.log_noise_var);
    }
    for (t, (lo, hi)) in theta.iter_mut().zip(bounds.lo.iter().zip(&bounds.hi)) {
        *t = t.clamp(*lo, *hi);
    }
    let mut current = log_density(&theta);
    if !current.is_finite() {
        // No usable start (the covariance cannot be factorised there): no samples, so the
        // caller falls back to its point estimate.
        return Vec::new();
    }
    let mut out = Vec::with_capacity(sweeps);
    // Step width in ln units. Stepping out is bounded by the (finite) bounds, not by a step
    // count: a count that binds on one side only would make the chain irreversible.
    const WIDTH: f64 = 1.0;
    const MAX_SHRINKS: usize = 40;
    for _ in 0..sweeps {
        for k in 0..theta.len() {
            if !current.is_finite() {
                break;
            }
            let x0 = theta[k];
            let level = current + (1.0 - rng.next_f64()).ln();
            let (lo, hi) = (bounds.lo[k], bounds.hi[k]);
            let mut left = x0 - WIDTH * rng.next_f64();
            let mut right = left + WIDTH;
            let at = |x: f64, theta: &mut Vec<f64>| {
                theta[k] = x;
                log_density(theta)
            };
            while left > lo && at(left, &mut theta) > level {
                left -= WIDTH;
            }
            while right < hi && at(right, &mut theta) > level {
                right += WIDTH;
            }
            let (mut left, mut right) = (left.max(lo), right.min(hi));
            theta[k] = x0;
            for _ in 0..MAX_SHRINKS {
                let x1 = left + (right - left) * rng.next_f64();
                let v = at(x1, &mut theta);
                if v > level {
                    current = v;
                    break;
                }
                theta[k] = x0;
                if x1 < x0 {
                    left = x1;
                } else {
                    right = x1;
                }
            }
        }
        out.push(to_hyper(&theta));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gp::{FittedGp, Noise};

    fn data() -> GpData {
        // A smooth function of the first input; the second is irrelevant.
        let xs: Vec<Vec<f64>> = (0..12)
            .map(|i| vec![i as f64 / 11.0, ((i * 7) % 12) as f64 / 11.0])
            .collect();
        let ys: Vec<f64> = xs.iter().map(|x| (3.0 * x[0]).sin()).collect();
        GpData::new(&xs, &ys).unwrap()
    }

    #[test]
    fn samples_stay_in_bounds_vary_and_repeat_with_the_seed() {
        let config = GpConfig {
            noise: Noise::Fitted {
                min: 1e-4,
                max: 0.25,
            },
            ..GpConfig::default()
        };
        let d = data();
        let fit = FittedGp::fit(d.clone(), &config, &mut Rng::new(1), None).unwrap();
        let a = sample_hypers(&d, &config, fit.hyper(), 30, &mut Rng::new(7));
        let b = sample_hypers(&d, &config, fit.hyper(), 30, &mut Rng::new(7));
        assert_eq!(a, b, "same seed, same chain");
        assert_eq!(a.len(), 30);
        let (lo, hi) = (config.length_scale.0.ln(), config.length_scale.1.ln());
        for h in &a {
            assert!(h.log_length_scales.iter().all(|l| *l >= lo && *l <= hi));
            assert!(log_marginal_likelihood_value(&d, h).unwrap().is_finite());
        }
        // The chain moves, and spends its time where the likelihood is: the relevant input keeps
        // a shorter length-scale than the irrelevant one in most samples.
        let first: Vec<f64> = a.iter().map(|h| h.log_length_scales[0]).collect();
        assert!(first.iter().any(|v| (v - first[0]).abs() > 1e-6));
        let shorter = a
            .iter()
            .filter(|h| h.log_length_scales[0] < h.log_length_scales[1])
            .count();
        assert!(shorter >= 20, "{shorter} of 30");
    }

    #[test]
    fn a_fixed_noise_stays_fixed_and_a_bad_start_is_recovered() {
        let config = GpConfig {
            noise: Noise::Fixed(0.02),
            ..GpConfig::default()
        };
        let d = data();
        // A start outside the bounds and of the wrong width.
        let start = Hyper {
            log_length_scales: vec![50.0],
            log_signal_var: -40.0,
            log_noise_var: 3.0,
        };
        let s = sample_hypers(&d, &config, &start, 5, &mut Rng::new(3));
        assert_eq!(
            s.len(),
            5,
            "a start outside the bounds is clamped into them"
        );
        let noise = s[0].log_noise_var;
        assert!(s.iter().all(|h| h.log_noise_var == noise));
        assert!(s.iter().all(|h| h.log_length_scales.len() == 2));
    }
}
