//! Arithmetic on reel-write's telemetry (README, "Writing") for `reel stats`:
//! the least-squares rate of a run and the verdict on a run much slower
//! than its history.

/// A run slower than this share of its history's median is flagged.
pub const SLOW: f64 = 0.7;

/// The slope of the least-squares line through `points`; `None` with fewer
/// than two distinct x values.
pub fn fit(points: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    let n = points.clone().count() as f64;
    if n < 2.0 {
        return None;
    }
    let (sx, sy) = points
        .clone()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    (den > 0.0).then(|| num / den)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// A flag when `rate` is well below the median of `history`.
pub fn slower_than(rate: f64, history: &[f64], what: &str) -> Option<String> {
    let m = median(history.to_vec())?;
    (rate < SLOW * m).then(|| {
        format!(
            "{:.0} % of the median of {what} ({})",
            100.0 * rate / m,
            mbs(m)
        )
    })
}

pub fn mbs(rate: f64) -> String {
    format!("{:.1} MB/s", rate / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_finds_the_slope_of_noisy_points() {
        // 300 MB/s with an alternating ±20 MB error.
        let points: Vec<(f64, f64)> = (0..100)
            .map(|i| {
                let t = i as f64 * 5.0;
                (t, 300e6 * t + if i % 2 == 0 { 20e6 } else { -20e6 })
            })
            .collect();
        let slope = fit(points.iter().copied()).unwrap();
        assert!((slope - 300e6).abs() < 1e6, "{slope}");
        assert_eq!(fit([(1.0, 5.0)].into_iter()), None);
        assert_eq!(fit([(1.0, 5.0), (1.0, 7.0)].into_iter()), None);
    }

    #[test]
    fn a_run_well_below_its_history_is_flagged() {
        assert!(slower_than(100e6, &[300e6, 310e6, 290e6], "x").is_some());
        assert!(slower_than(280e6, &[300e6, 310e6, 290e6], "x").is_none());
        assert!(
            slower_than(1.0, &[], "x").is_none(),
            "no history, no verdict"
        );
    }
}
