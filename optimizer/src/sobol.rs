//! Sobol low-discrepancy points (Joe-Kuo direction numbers, Gray-code order) with a seeded random
//! digital shift, for initial designs. Dimensions beyond the table fall back to seeded uniforms.

use crate::rng::Rng;

const BITS: u32 = 32;

/// (degree s, coefficient a, initial direction numbers m_1..m_s) for dimensions 2..; dimension 1
/// is the van der Corput sequence. From Joe and Kuo's new-joe-kuo-6.21201 table.
const TABLE: &[(u32, u32, &[u32])] = &[
    (1, 0, &[1]),
    (2, 1, &[1, 3]),
    (3, 1, &[1, 3, 1]),
    (3, 2, &[1, 1, 1]),
    (4, 1, &[1, 1, 3, 3]),
    (4, 4, &[1, 3, 5, 13]),
    (5, 2, &[1, 1, 5, 5, 17]),
    (5, 4, &[1, 1, 5, 5, 5]),
    (5, 7, &[1, 1, 7, 11, 19]),
    (5, 11, &[1, 1, 5, 1, 1]),
    (5, 13, &[1, 1, 1, 3, 11]),
    (5, 14, &[1, 3, 5, 5, 31]),
    (6, 1, &[1, 3, 3, 9, 7, 49]),
    (6, 13, &[1, 1, 1, 15, 21, 21]),
    (6, 16, &[1, 3, 1, 13, 27, 49]),
];

/// Maximum dimension with true Sobol coordinates.
pub const MAX_SOBOL_DIM: usize = TABLE.len() + 1;

fn direction_numbers(dim: usize) -> Vec<u32> {
    let mut v = vec![0u32; BITS as usize];
    if dim == 0 {
        for (i, vi) in v.iter_mut().enumerate() {
            *vi = 1 << (BITS - 1 - i as u32);
        }
        return v;
    }
    let (s, a, m) = TABLE[dim - 1];
    let s = s as usize;
    for i in 0..s.min(BITS as usize) {
        v[i] = m[i] << (BITS - 1 - i as u32);
    }
    for i in s..BITS as usize {
        let mut x = v[i - s] ^ (v[i - s] >> s);
        for k in 1..s {
            if (a >> (s - 1 - k)) & 1 == 1 {
                x ^= v[i - k];
            }
        }
        v[i] = x;
    }
    v
}

/// The first `n` points of a `dim`-dimensional Sobol sequence in [0, 1)^dim, digitally shifted by
/// seeded random bits so each seed gives a different, equally well spread design.
pub fn sobol_points(n: usize, dim: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = Rng::derive(seed, 0x736f_626f);
    let shifts: Vec<u32> = (0..dim).map(|_| (rng.next_u64() >> 32) as u32).collect();
    let dirs: Vec<Option<Vec<u32>>> = (0..dim)
        .map(|j| (j < MAX_SOBOL_DIM).then(|| direction_numbers(j)))
        .collect();
    let mut state = vec![0u32; dim];
    let mut out = Vec::with_capacity(n);
    let scale = 1.0 / (1u64 << BITS) as f64;
    for i in 0..n {
        if i > 0 {
            // Gray code: flip the direction number of the lowest zero bit of i - 1.
            let c = (!(i - 1)).trailing_zeros() as usize;
            for (st, d) in state.iter_mut().zip(&dirs) {
                if let Some(d) = d {
                    *st ^= d[c.min(BITS as usize - 1)];
                }
            }
        }
        out.push(
            (0..dim)
                .map(|j| match dirs[j] {
                    Some(_) => (state[j] ^ shifts[j]) as f64 * scale,
                    None => rng.next_f64(),
                })
                .collect(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_of_2_to_the_k_points_stratifies_each_axis() {
        // A (0, m, 1)-net property per coordinate: the first 2^k points put exactly one point in
        // each interval [j / 2^k, (j + 1) / 2^k), shift or no shift.
        for seed in [0u64, 7] {
            let pts = sobol_points(64, MAX_SOBOL_DIM, seed);
            for k in [1u32, 3, 6] {
                let m = 1usize << k;
                for d in 0..MAX_SOBOL_DIM {
                    let mut hit = vec![0; m];
                    for p in &pts[..m] {
                        hit[(p[d] * m as f64) as usize] += 1;
                    }
                    assert!(
                        hit.iter().all(|&h| h == 1),
                        "dim {d}, 2^{k} points: {hit:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn unshifted_start_matches_the_textbook_sequence_and_seeds_differ() {
        // Dimension 2 of the unshifted sequence in Gray-code order: 0, 0.5, 0.25, 0.75.
        let d = direction_numbers(1);
        let mut x = 0u32;
        let mut seq = vec![0.0];
        for i in 1..4usize {
            x ^= d[(!(i - 1)).trailing_zeros() as usize];
            seq.push(x as f64 / 4294967296.0);
        }
        assert_eq!(seq, vec![0.0, 0.5, 0.25, 0.75]);
        assert_ne!(sobol_points(3, 3, 1), sobol_points(3, 3, 2));
        assert_eq!(sobol_points(3, 3, 1), sobol_points(3, 3, 1));
        assert_eq!(sobol_points(5, 20, 1)[4].len(), 20);
    }
}
