//! Robust statistics for the perf gate: median, MAD spread, Student-t quantiles, bounds.
//!
//! Everything here is pure and works on log-scale values where the gate needs relative
//! spreads: a 3 % spread means the same on a 20 ms step and on a 20 s step.

/// Scale that turns a median absolute deviation into a normal-consistent standard deviation.
pub const MAD_SCALE: f64 = 1.4826;

/// Lowest relative spread the gate assumes. A history of identical values (MAD 0) would
/// otherwise make any change "significant"; 1 % is below what a shared runner can resolve.
pub const SPREAD_FLOOR: f64 = 0.01;

/// Median of `values`; `None` when empty. NaNs must have been filtered by the caller.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Median absolute deviation from the median (unscaled); `None` when empty.
pub fn mad(values: &[f64]) -> Option<f64> {
    let m = median(values)?;
    let dev: Vec<f64> = values.iter().map(|x| (x - m).abs()).collect();
    median(&dev)
}

/// Between-run spread of log values: `MAD × 1.4826`, floored at [`SPREAD_FLOOR`].
pub fn robust_spread(log_values: &[f64]) -> f64 {
    mad(log_values)
        .map(|m| m * MAD_SCALE)
        .unwrap_or(SPREAD_FLOOR)
        .max(SPREAD_FLOOR)
}

/// Natural log of the gamma function (Lanczos approximation, g = 7, 9 terms; ~1e-15 relative).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the series in its accurate range.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = COEF[0];
    let t = x + G + 0.5;
    for (i, c) in COEF.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Continued fraction for the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const EPS: f64 = 1e-15;
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// Regularised incomplete beta function I_x(a, b) for x in [0, 1].
pub fn reg_inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The continued fraction converges fast only on one side of the mean; use symmetry.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Cumulative distribution of Student's t with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * reg_inc_beta(df / 2.0, 0.5, x);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// Quantile of Student's t: the `t` with `P(T <= t) = p`, for `p` in (0, 1) and `df > 0`.
///
/// Inverts the exact CDF by bisection (60 halvings of a bracket found by doubling): slower
/// than a closed-form approximation but accurate to ~1e-12 for every `df`, and the gate
/// needs one value per history length, not per measurement.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0, "quantile probability must be in (0, 1)");
    assert!(df > 0.0, "degrees of freedom must be positive");
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }
    if p == 0.5 {
        return 0.0;
    }
    let mut hi = 1.0;
    while student_t_cdf(hi, df) < p {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-13 * hi.max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// One-sided prediction bound (log scale) for a new observation given a history of `n`
/// values with spread `s`: `t_{confidence, n-1} × s × sqrt(1 + 1/n)`. `None` for n < 2,
/// where no spread can be estimated, and for a confidence outside (0.5, 1) (a user setting:
/// it must not panic the quantile).
pub fn prediction_bound(s: f64, n: usize, confidence: f64) -> Option<f64> {
    if n < 2 || !(confidence > 0.5 && confidence < 1.0) {
        return None;
    }
    let nf = n as f64;
    Some(student_t_quantile(confidence, nf - 1.0) * s * (1.0 + 1.0 / nf).sqrt())
}

/// Minimum detectable effect as a fraction (0.12 = 12 %) from a log-scale bound.
pub fn mde_fraction(bound: f64) -> f64 {
    bound.exp() - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn mad_and_spread() {
        // deviations from 3: 2,1,0,1,97 -> median 1
        assert_eq!(mad(&[1.0, 2.0, 3.0, 4.0, 100.0]), Some(1.0));
        assert!((robust_spread(&[1.0, 2.0, 3.0, 4.0, 100.0]) - 1.4826).abs() < 1e-12);
        assert_eq!(robust_spread(&[0.5, 0.5, 0.5]), SPREAD_FLOOR);
        assert_eq!(robust_spread(&[]), SPREAD_FLOOR);
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-13);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn t_quantiles_match_tables() {
        // (p, df, table value to 3 decimals)
        let table = [
            (0.99, 1.0, 31.821),
            (0.99, 2.0, 6.965),
            (0.99, 4.0, 3.747),
            (0.99, 5.0, 3.365),
            (0.99, 10.0, 2.764),
            (0.99, 19.0, 2.539),
            (0.99, 30.0, 2.457),
            (0.99, 120.0, 2.358),
            (0.975, 10.0, 2.228),
            (0.95, 3.0, 2.353),
            (0.995, 19.0, 2.861),
        ];
        for (p, df, want) in table {
            let got = student_t_quantile(p, df);
            assert!(
                (got - want).abs() < 6e-4,
                "t({p}, {df}) = {got}, want {want}"
            );
        }
        // Large df tends to the normal quantile 2.3263.
        assert!((student_t_quantile(0.99, 1e7) - 2.326_348).abs() < 1e-4);
        assert!((student_t_quantile(0.01, 19.0) + 2.539).abs() < 6e-4);
    }

    #[test]
    fn bound_and_mde() {
        assert_eq!(prediction_bound(0.03, 1, 0.99), None);
        assert_eq!(prediction_bound(0.03, 20, 1.0), None);
        assert_eq!(prediction_bound(0.03, 20, f64::NAN), None);
        let b = prediction_bound(0.03, 20, 0.99).expect("n >= 2");
        assert!((b - 2.539_483 * 0.03 * 1.05f64.sqrt()).abs() < 1e-5);
        assert!((mde_fraction(b) - (b.exp() - 1.0)).abs() < 1e-15);
    }

    proptest! {
        #[test]
        fn quantile_inverts_cdf(p in 0.501f64..0.9999, df in 1.0f64..200.0) {
            let t = student_t_quantile(p, df);
            prop_assert!((student_t_cdf(t, df) - p).abs() < 1e-9);
        }

        #[test]
        fn quantile_decreases_with_df(p in 0.9f64..0.999, df in 1.0f64..100.0) {
            prop_assert!(student_t_quantile(p, df) > student_t_quantile(p, df + 1.0));
        }

        #[test]
        fn spread_is_scale_free_in_log_space(v in proptest::collection::vec(1.0f64..1000.0, 3..30), k in 0.1f64..10.0) {
            let a: Vec<f64> = v.iter().map(|x| x.ln()).collect();
            let b: Vec<f64> = v.iter().map(|x| (x * k).ln()).collect();
            prop_assert!((robust_spread(&a) - robust_spread(&b)).abs() < 1e-9);
            prop_assert!(robust_spread(&a) >= SPREAD_FLOOR);
        }

        #[test]
        fn median_is_between_min_and_max(v in proptest::collection::vec(-1e6f64..1e6, 1..50)) {
            let m = median(&v).expect("non-empty");
            let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(m >= lo && m <= hi);
        }
    }
}
