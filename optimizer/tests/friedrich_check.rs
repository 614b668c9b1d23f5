//! What the friedrich crate's Matern 5/2 kernel (`Matern2`) offers, checked against our own GP:
//! it is isotropic (one length-scale for all dimensions, so no ARD), and its length-scale gradient
//! disagrees with finite differences, so likelihood fits that follow it go astray. Its kernel
//! values themselves are right. These assertions record what is true of friedrich 0.6.

use friedrich::kernel::{Kernel, Matern2};
use nalgebra::RowDVector;
use optimizer::gp::{kernel, Hyper};

fn row(v: &[f64]) -> RowDVector<f64> {
    RowDVector::from_row_slice(v)
}

#[test]
fn friedrich_matern52_values_match_ours_for_an_isotropic_kernel() {
    let (ls, ampl) = (0.7, 1.3);
    let k = Matern2::new(ls, ampl);
    let ours = Hyper {
        log_length_scales: vec![ls.ln(); 3],
        log_signal_var: ampl.ln(),
        log_noise_var: 0.0,
        log_warp: vec![],
    };
    for (a, b) in [
        ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
        ([0.1, 0.5, 0.9], [0.3, 0.2, 0.4]),
        ([1.0, 0.0, 0.5], [0.0, 1.0, 0.5]),
    ] {
        let theirs = k.kernel(&row(&a), &row(&b));
        let mine = kernel(&a, &b, &ours);
        assert!((theirs - mine).abs() < 1e-12, "{theirs} vs {mine}");
    }
}

#[test]
fn friedrich_matern52_has_one_length_scale_for_all_dimensions() {
    let k = Matern2::default();
    // Two parameters whatever the input width: length-scale and amplitude.
    assert_eq!(k.nb_parameters(), 2);
    assert_eq!(k.get_parameters().len(), 2);
    // Isotropic: moving 0.4 along dimension 0 or along dimension 2 gives the same covariance, so
    // no dimension can be declared irrelevant. Our ARD kernel tells them apart.
    let o = [0.0, 0.0, 0.0];
    let along0 = k.kernel(&row(&o), &row(&[0.4, 0.0, 0.0]));
    let along2 = k.kernel(&row(&o), &row(&[0.0, 0.0, 0.4]));
    assert_eq!(along0, along2);
    let ard = Hyper {
        log_length_scales: vec![0.0, 0.0, 3.0],
        log_signal_var: 0.0,
        log_noise_var: 0.0,
        log_warp: vec![],
    };
    assert!(kernel(&o, &[0.0, 0.0, 0.4], &ard) > kernel(&o, &[0.4, 0.0, 0.0], &ard) + 0.1);
}

#[test]
fn friedrich_matern52_length_scale_gradient_disagrees_with_finite_differences() {
    let (ls, ampl) = (0.8, 1.5);
    let eps = 1e-6;
    let fd = |a: &[f64], b: &[f64], which: usize| {
        let mut p = [ls, ampl];
        p[which] += eps;
        let up = Matern2::new(p[0], p[1]).kernel(&row(a), &row(b));
        p[which] -= 2.0 * eps;
        let down = Matern2::new(p[0], p[1]).kernel(&row(a), &row(b));
        (up - down) / (2.0 * eps)
    };
    let k = Matern2::new(ls, ampl);
    let mut wrong = 0;
    let pairs: [([f64; 2], [f64; 2]); 4] = [
        ([0.0, 0.0], [0.0, 0.0]),
        ([0.0, 0.0], [0.3, 0.0]),
        ([0.2, 0.1], [0.7, 0.5]),
        ([0.0, 0.0], [1.0, 1.0]),
    ];
    for (a, b) in pairs {
        let g = k.gradient(&row(&a), &row(&b));
        // The amplitude derivative is right ...
        let fa = fd(&a, &b, 1);
        assert!((g[1] - fa).abs() < 1e-6, "amplitude: {} vs {fa}", g[1]);
        // ... the length-scale derivative is not.
        let fl = fd(&a, &b, 0);
        if (g[0] - fl).abs() > 1e-3 * (1.0 + fl.abs()) {
            wrong += 1;
        }
    }
    // At distance 0 the kernel does not depend on the length-scale at all (true derivative 0),
    // yet friedrich reports ampl * (2 l / 3 + 1).
    let g0 = k.gradient(&row(&[0.0, 0.0]), &row(&[0.0, 0.0]))[0];
    assert!((g0 - ampl * (2.0 * ls / 3.0 + 1.0)).abs() < 1e-12);
    assert!(fd(&[0.0, 0.0], &[0.0, 0.0], 0).abs() < 1e-9);
    assert_eq!(
        wrong,
        pairs.len(),
        "friedrich's length-scale gradient was right somewhere"
    );
}
