//! Correlation (design §6): "do we see a side effect on B every time we modify A?"
//!
//! For A events at times `t` in `[from, to)` and a window `W`, an A event is a *hit* when a B
//! event lies in `(t, t + W]`. Equivalently, `t` lies in the union `U` of the intervals
//! `[b - W, b)` over all B events. The *baseline* is the fraction of `[from, to)` covered by
//! `U`: the probability that a moment picked at random in the range is followed by B within
//! `W`. If A were unrelated to B, each A event would be a hit with that probability, so the
//! number of hits would follow Binomial(|A|, baseline); the p-value is the chance of at least
//! as many hits under that model.
//!
//! B events up to `W` after `to` count (an A event just before `to` can be followed by one);
//! B events before `from` cannot follow any A event in the range and play no part.

use jiff::{SignedDuration, Timestamp};

/// The outcome of a correlation.
#[derive(Clone, Debug, PartialEq)]
pub struct Correlation {
    /// A events followed by B within the window.
    pub hits: usize,
    pub a_count: usize,
    /// B events in `[from, to)`.
    pub b_count: usize,
    /// `hits / a_count`; `None` without A events.
    pub hit_rate: Option<f64>,
    /// Fraction of the range covered by `U`.
    pub baseline: f64,
    /// `hit_rate / baseline`; `None` when either is undefined or the baseline is 0.
    pub lift: Option<f64>,
    /// P(X ≥ hits) for X ~ Binomial(a_count, baseline).
    pub p_value: f64,
    /// For each A event, in the order given, the index in `b` of the first B event that
    /// followed it within the window.
    pub first_follower: Vec<Option<usize>>,
}

/// Correlates A times with B times. Both slices must be sorted ascending; `a` should hold
/// the A events in `[from, to)` and `b` the B events in `[from, to + window]`.
pub fn correlate(
    a: &[Timestamp],
    b: &[Timestamp],
    window: SignedDuration,
    from: Timestamp,
    to: Timestamp,
) -> Correlation {
    let window_micros = micros(window);
    let first_follower: Vec<Option<usize>> = a
        .iter()
        .map(|t| {
            let first_after = b.partition_point(|b| b <= t);
            b.get(first_after)
                .filter(|b| b.as_microsecond() - t.as_microsecond() <= window_micros)
                .map(|_| first_after)
        })
        .collect();
    let hits = first_follower.iter().filter(|f| f.is_some()).count();
    let b_count = b.iter().filter(|b| **b >= from && **b < to).count();
    let baseline = coverage(b, window_micros, from.as_microsecond(), to.as_microsecond());
    let a_count = a.len();
    let hit_rate = (a_count > 0).then(|| hits as f64 / a_count as f64);
    let lift = hit_rate
        .filter(|_| baseline > 0.0)
        .map(|rate| rate / baseline);
    Correlation {
        hits,
        a_count,
        b_count,
        hit_rate,
        baseline,
        lift,
        p_value: binomial_upper_tail(a_count as u64, hits as u64, baseline),
        first_follower,
    }
}

impl Correlation {
    /// The finding in plain words, e.g. "8 of 10 changes matching A were followed within 1h
    /// by B (baseline 11%): 7.3× more often than chance, p = 2e-7".
    pub fn verdict(&self, window: &str) -> String {
        let Some(hit_rate) = self.hit_rate else {
            return "No event matches A in this range: there is nothing to correlate.".to_owned();
        };
        if self.baseline == 0.0 {
            return format!(
                "No event matching B follows any moment of the range within {window}: B never \
                 happened after A ({} changes matching A).",
                self.a_count
            );
        }
        let changes = if self.a_count == 1 {
            "change"
        } else {
            "changes"
        };
        let was = if self.a_count == 1 { "was" } else { "were" };
        let head = format!(
            "{} of {} {changes} matching A {was} followed within {window} by B (baseline {})",
            self.hits,
            self.a_count,
            percent(self.baseline)
        );
        if self.baseline >= 0.999 {
            return format!(
                "{head}: B happens so often that almost every moment is followed by B within \
                 {window}; use a shorter window to learn anything."
            );
        }
        let lift = self.lift.unwrap_or(0.0);
        let comparison = if hit_rate > self.baseline {
            format!("{lift:.1}× more often than chance")
        } else if hit_rate < self.baseline {
            format!("less often than chance ({lift:.1}×)")
        } else {
            "exactly as often as chance".to_owned()
        };
        format!("{head}: {comparison}, p = {}", format_p_value(self.p_value))
    }
}

/// A fraction as a percentage with the precision it deserves: `11%`, `0.4%`, `0.002%`.
pub fn percent(fraction: f64) -> String {
    let value = fraction * 100.0;
    if value == 0.0 || value >= 10.0 {
        format!("{value:.0}%")
    } else if value >= 1.0 {
        format!("{value:.1}%")
    } else {
        // Two significant digits below 1%.
        let decimals = (1.0 - value.log10().floor()).clamp(1.0, 12.0) as usize;
        format!("{value:.decimals$}%")
    }
}

/// A p-value as people write it: `0.03`, `2e-7`, `< 1e-300`.
pub fn format_p_value(p: f64) -> String {
    if p <= 0.0 {
        "< 1e-300".to_owned()
    } else if p >= 0.001 {
        let text = format!("{p:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{p:.0e}")
    }
}

fn micros(duration: SignedDuration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// Fraction of `[from, to)` covered by the union of `[b - w, b)`, `b` sorted ascending.
fn coverage(b: &[Timestamp], w: i64, from: i64, to: i64) -> f64 {
    if to <= from {
        return 0.0;
    }
    let mut covered: i128 = 0;
    let mut current: Option<(i64, i64)> = None;
    for b in b {
        let end = b.as_microsecond().min(to);
        let start = b.as_microsecond().saturating_sub(w).max(from);
        if start >= end {
            continue;
        }
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                covered += i128::from(e - s);
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = current {
        covered += i128::from(e - s);
    }
    covered as f64 / (i128::from(to) - i128::from(from)) as f64
}

/// P(X ≥ k) for X ~ Binomial(n, p), computed in log space so it stays accurate for large `n`
/// and tiny probabilities. Sums run from the starting term away from the mode, where terms
/// only shrink, so nothing overflows.
pub fn binomial_upper_tail(n: u64, k: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (ln_p, ln_q) = (p.ln(), (-p).ln_1p());
    let ln_term = |i: u64| ln_choose(n, i) + i as f64 * ln_p + (n - i) as f64 * ln_q;
    let mean = n as f64 * p;
    if k as f64 > mean {
        // Upper tail from k up: each term is the previous times (n-i)/(i+1) * p/q < 1.
        sum_from(
            ln_term(k),
            k,
            n,
            |i| ((n - i) as f64 / (i + 1) as f64).ln() + ln_p - ln_q,
            true,
        )
        .clamp(0.0, 1.0)
    } else {
        // 1 - lower tail, summed from k-1 down.
        let lower = sum_from(
            ln_term(k - 1),
            k - 1,
            n,
            |i| (i as f64 / (n - i + 1) as f64).ln() + ln_q - ln_p,
            false,
        );
        (1.0 - lower).clamp(0.0, 1.0)
    }
}

/// Sums terms starting at `exp(ln_first)` (index `start`), each next term's log being the
/// previous one's plus `ln_ratio(i)`, moving up (to `n`) or down (to 0), until terms vanish.
fn sum_from(ln_first: f64, start: u64, n: u64, ln_ratio: impl Fn(u64) -> f64, up: bool) -> f64 {
    let mut relative_sum = 1.0_f64;
    let mut ln_relative = 0.0_f64;
    let mut i = start;
    loop {
        let next = if up {
            if i >= n {
                break;
            }
            ln_relative += ln_ratio(i);
            i + 1
        } else {
            if i == 0 {
                break;
            }
            ln_relative += ln_ratio(i);
            i - 1
        };
        i = next;
        let term = ln_relative.exp();
        relative_sum += term;
        if term < relative_sum * 1e-17 {
            break;
        }
    }
    (ln_first + relative_sum.ln()).exp()
}

/// ln C(n, k).
fn ln_choose(n: u64, k: u64) -> f64 {
    let k = k.min(n - k);
    (1..=k).map(|j| ((n - k + j) as f64 / j as f64).ln()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + minutes * 60).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-300)
    }

    #[test]
    fn exact_binomial_tails() {
        // Small cases checked by hand: P(X >= 2), n = 3, p = 0.5 is 4/8.
        assert!(close(binomial_upper_tail(3, 2, 0.5), 0.5));
        assert!(close(binomial_upper_tail(3, 3, 0.5), 0.125));
        assert!(close(
            binomial_upper_tail(10, 1, 0.1),
            1.0 - 0.9f64.powi(10)
        ));
        // n = 10, p = 0.11, k = 8: sum of C(10,i) p^i q^(10-i) for i = 8..10.
        let p: f64 = 0.11;
        let expected =
            45.0 * p.powi(8) * (1.0 - p).powi(2) + 10.0 * p.powi(9) * (1.0 - p) + p.powi(10);
        assert!(close(binomial_upper_tail(10, 8, p), expected));
        assert_eq!(binomial_upper_tail(10, 0, 0.3), 1.0);
        assert_eq!(binomial_upper_tail(10, 11, 0.3), 0.0);
        assert_eq!(binomial_upper_tail(10, 3, 0.0), 0.0);
        assert_eq!(binomial_upper_tail(10, 3, 1.0), 1.0);
    }

    #[test]
    fn large_n_stays_finite_and_monotone() {
        let n = 1_000_000;
        let mut previous = 1.0;
        for k in [
            0, 1_000, 99_000, 100_000, 101_000, 105_000, 200_000, 1_000_000,
        ] {
            let tail = binomial_upper_tail(n, k, 0.1);
            assert!(
                tail.is_finite() && (0.0..=1.0).contains(&tail),
                "{k}: {tail}"
            );
            assert!(tail <= previous, "{k}");
            previous = tail;
        }
        // Around the mean, the tail is about one half.
        let middle = binomial_upper_tail(n, 100_000, 0.1);
        assert!((0.49..0.51).contains(&middle), "{middle}");
    }

    #[test]
    fn hits_baseline_and_followers() {
        // Range: 0..1000 min. Window 10 min. B at 105, 305, 500. A at 100 (hit), 300 (hit),
        // 495 (hit: 500 is 5 min later), 700 (no B after).
        let a = [at(100), at(300), at(495), at(700)];
        let b = [at(105), at(305), at(500)];
        let result = correlate(&a, &b, SignedDuration::from_mins(10), at(0), at(1000));
        assert_eq!(result.hits, 3);
        assert_eq!(result.a_count, 4);
        assert_eq!(result.b_count, 3);
        assert_eq!(result.first_follower, vec![Some(0), Some(1), Some(2), None]);
        assert!(close(result.baseline, 30.0 / 1000.0));
        assert!(close(result.hit_rate.unwrap(), 0.75));
        assert!(close(result.lift.unwrap(), 25.0));
    }

    #[test]
    fn window_edges() {
        // (t, t + W]: a B at exactly t does not follow it, a B at exactly t + W does.
        let w = SignedDuration::from_mins(10);
        let same = correlate(&[at(100)], &[at(100)], w, at(0), at(1000));
        assert_eq!(same.hits, 0);
        let edge = correlate(&[at(100)], &[at(110)], w, at(0), at(1000));
        assert_eq!(edge.hits, 1);
        let late = correlate(&[at(100)], &[at(111)], w, at(0), at(1000));
        assert_eq!(late.hits, 0);
    }

    #[test]
    fn overlapping_intervals_are_counted_once_and_clipped() {
        let w = SignedDuration::from_mins(10);
        // B at 5 (interval clipped to [0,5)), 20 and 25 (overlap: [10,25)), 1005 (after the
        // range: [995,1000) inside it).
        let b = [at(5), at(20), at(25), at(1005)];
        let result = correlate(&[], &b, w, at(0), at(1000));
        assert!(close(result.baseline, (5.0 + 15.0 + 5.0) / 1000.0));
        assert_eq!(result.b_count, 3);
        assert_eq!(result.hit_rate, None);
        assert_eq!(result.lift, None);
        assert_eq!(result.p_value, 1.0);
    }

    #[test]
    fn verdicts() {
        let w = SignedDuration::from_mins(10);
        // 8 of 10 A events followed by B; B otherwise rare.
        let a: Vec<Timestamp> = (0..10).map(|i| at(i * 1000)).collect();
        let b: Vec<Timestamp> = (0..8).map(|i| at(i * 1000 + 5)).collect();
        let result = correlate(&a, &b, w, at(0), at(10_000));
        assert_eq!(
            result.verdict("10m"),
            format!(
                "8 of 10 changes matching A were followed within 10m by B (baseline 0.75%): 106.7× more often than chance, p = {}",
                format_p_value(result.p_value)
            )
        );
        assert!(result.p_value < 1e-12);
        assert!(
            correlate(&[], &b, w, at(0), at(10))
                .verdict("10m")
                .starts_with("No event matches A")
        );
        assert!(
            correlate(&a, &[], w, at(0), at(10_000))
                .verdict("10m")
                .starts_with("No event matching B")
        );
    }

    /// The worked example of `docs/correlation.md`.
    #[test]
    fn worked_example_of_the_docs() {
        let day = |d: i64, h: i64, m: i64| at((d - 1) * 1440 + h * 60 + m);
        let a: Vec<Timestamp> = (1..=10).map(|d| day(d, 10, 0)).collect();
        let mut b: Vec<Timestamp> = (1..=8).map(|d| day(d, 10, 10)).collect();
        b.push(day(3, 3, 0));
        b.push(day(9, 18, 0));
        b.sort();
        let result = correlate(
            &a,
            &b,
            SignedDuration::from_hours(1),
            day(1, 0, 0),
            day(11, 0, 0),
        );
        assert_eq!((result.hits, result.a_count, result.b_count), (8, 10, 10));
        assert!(close(result.baseline, 1.0 / 24.0));
        assert!((result.lift.unwrap() - 19.2).abs() < 1e-9);
        let q: f64 = 23.0 / 24.0;
        let p: f64 = 1.0 / 24.0;
        let exact = 45.0 * p.powi(8) * q.powi(2) + 10.0 * p.powi(9) * q + p.powi(10);
        assert!((result.p_value - exact).abs() < 1e-12 * exact);
        assert!((result.p_value - 3.790_965e-10).abs() < 1e-15);
        assert_eq!(
            result.verdict("1h"),
            "8 of 10 changes matching A were followed within 1h by B (baseline 4.2%): 19.2× more often than chance, p = 4e-10"
        );
    }

    #[test]
    fn number_formats() {
        assert_eq!(percent(0.11), "11%");
        assert_eq!(percent(0.034), "3.4%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.0075), "0.75%");
        assert_eq!(percent(0.000_021), "0.0021%");
        assert_eq!(format_p_value(0.031_41), "0.031");
        assert_eq!(format_p_value(0.5), "0.5");
        assert_eq!(format_p_value(2.3e-7), "2e-7");
        assert_eq!(format_p_value(0.0), "< 1e-300");
    }

    #[test]
    fn no_b_events_and_huge_windows() {
        let none = correlate(
            &[at(1), at(2)],
            &[],
            SignedDuration::from_mins(10),
            at(0),
            at(100),
        );
        assert_eq!((none.hits, none.baseline, none.lift), (0, 0.0, None));
        assert_eq!(none.p_value, 1.0);
        // A window longer than the range covers all of it: the test can say nothing.
        let huge = correlate(
            &[at(10)],
            &[at(150)],
            SignedDuration::from_hours(10),
            at(0),
            at(100),
        );
        assert_eq!(huge.baseline, 1.0);
        assert_eq!(huge.p_value, 1.0);
    }
}
