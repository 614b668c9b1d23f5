//! Acquisition functions for minimisation, from a predicted mean and variance only: expected
//! improvement (EI), its logarithm computed stably far into the tail, and CherryPick's
//! runtime-constrained EI, P[T <= Tmax] * EI, with log T = log C - log(price).

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
const SQRT_2: f64 = std::f64::consts::SQRT_2;

/// Standard normal density.
pub fn norm_pdf(z: f64) -> f64 {
    INV_SQRT_2PI * (-0.5 * z * z).exp()
}

/// Standard normal distribution function, accurate in both tails (via erfc).
pub fn norm_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / SQRT_2)
}

/// ln of the standard normal distribution function, finite far into the lower tail.
pub fn log_norm_cdf(z: f64) -> f64 {
    if z > -5.0 {
        norm_cdf(z).ln()
    } else {
        // Phi(z) = phi(z) * R(-z), R the Mills ratio.
        -0.5 * z * z - LN_SQRT_2PI + mills_ratio(-z).ln()
    }
}

/// Mills ratio R(x) = (1 - Phi(x)) / phi(x) for x >= 0, by erfc where that keeps full relative
/// precision and by its continued fraction beyond.
fn mills_ratio(x: f64) -> f64 {
    if x < 5.0 {
        return 0.5 * libm::erfc(x / SQRT_2) / norm_pdf(x);
    }
    // R(x) = 1/(x + 1/(x + 2/(x + 3/(x + ...)))), evaluated from the tail; at x >= 5 sixty
    // terms are far more than enough for double precision.
    let mut t = x;
    for k in (1..=60).rev() {
        t = x + k as f64 / t;
    }
    1.0 / t
}

/// h(z) = phi(z) + z Phi(z): EI of a unit-variance prediction whose standardised improvement is z.
fn h(z: f64) -> f64 {
    norm_pdf(z) + z * norm_cdf(z)
}

/// ln h(z), stable for very negative z where h underflows.
fn log_h(z: f64) -> f64 {
    if z > -1.0 {
        return h(z).ln();
    }
    let x = -z;
    // h(-x) = phi(x) (1 - x R(x)); 1 - x R(x) loses about log10(x^2) digits to cancellation, so
    // past x = 1e4 use its asymptotic series 1/x^2 - 3/x^4 + 15/x^6 instead.
    let tail = if x < 1e4 {
        1.0 - x * mills_ratio(x)
    } else {
        let q = 1.0 / (x * x);
        q * (1.0 - 3.0 * q + 15.0 * q * q)
    };
    -0.5 * x * x - LN_SQRT_2PI + tail.ln()
}

/// Expected improvement below `best` of a Gaussian prediction (mean, variance), for minimisation.
pub fn expected_improvement(mean: f64, var: f64, best: f64) -> f64 {
    let sd = var.max(0.0).sqrt();
    if sd < 1e-12 {
        return (best - mean).max(0.0);
    }
    sd * h((best - mean) / sd)
}

/// ln of [`expected_improvement`]; finite wherever the variance is positive, however small EI
/// is, so candidates deep in the tail still rank correctly. `-inf` when EI is exactly zero.
pub fn log_expected_improvement(mean: f64, var: f64, best: f64) -> f64 {
    let sd = var.max(0.0).sqrt();
    if sd < 1e-12 {
        return (best - mean).max(0.0).ln();
    }
    sd.ln() + log_h((best - mean) / sd)
}

/// Probability that the runtime meets `max_runtime_s`, from a prediction of ln(cost in USD) and
/// the configuration's price per hour: ln T = ln C - ln(price per second).
pub fn prob_within_runtime(
    mean_log_cost: f64,
    var_log_cost: f64,
    price_per_hour: f64,
    max_runtime_s: f64,
) -> f64 {
    log_prob_within_runtime(mean_log_cost, var_log_cost, price_per_hour, max_runtime_s).exp()
}

/// ln of [`prob_within_runtime`].
pub fn log_prob_within_runtime(
    mean_log_cost: f64,
    var_log_cost: f64,
    price_per_hour: f64,
    max_runtime_s: f64,
) -> f64 {
    let mean_log_t = mean_log_cost - (price_per_hour / 3600.0).ln();
    let sd = var_log_cost.max(0.0).sqrt();
    let margin = max_runtime_s.ln() - mean_log_t;
    if sd < 1e-12 {
        return if margin >= 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
    }
    log_norm_cdf(margin / sd)
}

/// CherryPick's constrained acquisition: P[T <= Tmax] * EI, on log cost.
pub fn constrained_expected_improvement(
    mean_log_cost: f64,
    var_log_cost: f64,
    best_log_cost: f64,
    price_per_hour: f64,
    max_runtime_s: f64,
) -> f64 {
    prob_within_runtime(mean_log_cost, var_log_cost, price_per_hour, max_runtime_s)
        * expected_improvement(mean_log_cost, var_log_cost, best_log_cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn ei_matches_closed_form_values() {
        // mean 0, sd 1, best 0: EI = phi(0) = 1/sqrt(2 pi).
        assert!(close(
            expected_improvement(0.0, 1.0, 0.0),
            0.398_942_280_401_432_7,
            1e-14
        ));
        // mean 0.5, variance 4 (sd 2), best 0: z = -0.25,
        // EI = 2 (phi(-0.25) - 0.25 Phi(-0.25)) = 2 (0.386668116802849 - 0.25 * 0.401293674317076).
        let want = 2.0 * (0.386_668_116_802_849 - 0.25 * 0.401_293_674_317_076);
        assert!(close(expected_improvement(0.5, 4.0, 0.0), want, 1e-12));
        // Zero variance: plain improvement.
        assert_eq!(expected_improvement(1.0, 0.0, 3.0), 2.0);
        assert_eq!(expected_improvement(3.0, 0.0, 1.0), 0.0);
        // Far above the incumbent EI vanishes but stays >= 0.
        assert!(expected_improvement(50.0, 1.0, 0.0) >= 0.0);
    }

    #[test]
    fn log_ei_agrees_where_ei_is_representable_and_stays_finite_beyond() {
        for &(m, v, b) in &[
            (0.0, 1.0, 0.0),
            (0.5, 4.0, 0.0),
            (3.0, 1.0, 0.0),
            (-2.0, 0.3, 0.0),
            (10.0, 1.0, 0.0),
            (25.0, 1.0, 0.0),
        ] {
            let ei = expected_improvement(m, v, b);
            let lei = log_expected_improvement(m, v, b);
            assert!(close(lei, ei.ln(), 1e-9), "m={m}: {lei} vs {}", ei.ln());
        }
        // z = -40: EI underflows to 0 but ln EI follows the asymptote
        // -z^2/2 - ln sqrt(2 pi) - 2 ln|z| + ln(1 - 3/z^2 + 15/z^4).
        let z: f64 = -40.0;
        let asym = -0.5 * z * z - LN_SQRT_2PI - 2.0 * z.abs().ln()
            + (1.0 - 3.0 / (z * z) + 15.0 / z.powi(4)).ln();
        let lei = log_expected_improvement(40.0, 1.0, 0.0);
        assert!((lei - asym).abs() < 1e-6, "{lei} vs {asym}");
        // Monotone in the tail and finite at z = -1e6.
        let mut prev = f64::INFINITY;
        for k in 1..60 {
            let m = k as f64 * 20.0;
            let l = log_expected_improvement(m, 1.0, 0.0);
            assert!(l.is_finite() && l < prev, "not decreasing at mean {m}");
            prev = l;
        }
        assert!(log_expected_improvement(1e6, 1.0, 0.0).is_finite());
        assert_eq!(log_expected_improvement(1.0, 0.0, 0.0), f64::NEG_INFINITY);
    }

    #[test]
    fn normal_tails_are_accurate() {
        assert!(close(norm_cdf(-1.0), 0.158_655_253_931_457_05, 1e-14));
        // Phi(-10) = 7.619853024160527e-24.
        assert!(close(
            log_norm_cdf(-10.0),
            (7.619_853_024_160_527e-24f64).ln(),
            1e-12
        ));
        assert!(close(
            log_norm_cdf(-3.0),
            (0.001_349_898_031_630_094_6f64).ln(),
            1e-12
        ));
        assert!(log_norm_cdf(-200.0).is_finite());
    }

    #[test]
    fn constrained_ei_multiplies_by_the_runtime_probability() {
        // Price 3.6 $/h = 0.001 $/s; ln cost mean ln(1.0) -> ln T mean ln(1000 s).
        let (m, v, best) = (0.0, 0.25, 0.2);
        // Tmax = 1000 s: exactly at the median runtime, P = 0.5.
        let p = prob_within_runtime(m, v, 3.6, 1000.0);
        assert!(close(p, 0.5, 1e-14));
        let c = constrained_expected_improvement(m, v, best, 3.6, 1000.0);
        assert!(close(c, 0.5 * expected_improvement(m, v, best), 1e-14));
        // Tmax = 1000 e s: two standard deviations (sd 0.5) above -> Phi(2) = 0.9772498680518208.
        let p = prob_within_runtime(m, v, 3.6, 1000.0 * (1.0f64).exp());
        assert!(close(p, 0.977_249_868_051_820_8, 1e-12));
        // Certain predictions: a step.
        assert_eq!(prob_within_runtime(0.0, 0.0, 3.6, 999.0), 0.0);
        assert_eq!(prob_within_runtime(0.0, 0.0, 3.6, 1001.0), 1.0);
    }
}
