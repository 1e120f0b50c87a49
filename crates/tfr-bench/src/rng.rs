//! A small deterministic pseudo-random generator (SplitMix64), so a seed gives the same history
//! on every machine and every version of every dependency.
//!
//! SplitMix64 passes the usual statistical test batteries, needs eight bytes of state and can
//! be seeded from any number, which lets each event draw from a generator of its own, derived
//! from the seed and its index: any event can be regenerated alone, in any order.

/// SplitMix64: a 64-bit state advanced by a fixed odd constant, then mixed.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 output function: a bijective mix of the 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for one item of a stream: independent of the generators of other streams
    /// and other indexes of the same seed.
    pub fn for_item(seed: u64, stream: u64, index: u64) -> Self {
        Self::new(mix(
            mix(seed ^ mix(stream.wrapping_add(GOLDEN_GAMMA))) ^ index
        ))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// A uniform number in `[0, 1)`, with 53 bits of precision.
    pub fn unit(&mut self) -> f64 {
        // The top 53 bits fill a double's mantissa exactly.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, bound)` (`bound` > 0), without modulo bias worth mentioning:
    /// the multiply-shift method, exact to within 2^-64 per value.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A uniform integer in `[low, high]`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A uniformly chosen element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A discrete distribution over `0..n` given by weights, sampled by binary search on the
/// cumulative weights.
#[derive(Clone, Debug)]
pub struct Weighted {
    cumulative: Vec<f64>,
}

impl Weighted {
    pub fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let cumulative = weights
            .into_iter()
            .map(|weight| {
                total += weight;
                total
            })
            .collect();
        Self { cumulative }
    }

    /// Zipf's law over `n` ranks: rank `r` (from 0) has weight `1 / (r + 1)^exponent`.
    pub fn zipf(n: usize, exponent: f64) -> Self {
        Self::new((1..=n).map(|rank| 1.0 / (rank as f64).powf(exponent)))
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let target = rng.unit() * total;
        self.cumulative
            .partition_point(|cumulative| *cumulative <= target)
            .min(self.cumulative.len().saturating_sub(1))
    }

    /// The probability of index `i`.
    pub fn probability(&self, i: usize) -> f64 {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let before = if i == 0 { 0.0 } else { self.cumulative[i - 1] };
        (self.cumulative[i] - before) / total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers() {
        let a: Vec<u64> = (0..5).map(|_| Rng::new(7).next_u64()).collect();
        let mut rng = Rng::new(7);
        assert_eq!(a[0], rng.next_u64());
        let mut x = Rng::for_item(1, 2, 3);
        let mut y = Rng::for_item(1, 2, 3);
        assert_eq!(x.next_u64(), y.next_u64());
        assert_ne!(
            Rng::for_item(1, 2, 3).next_u64(),
            Rng::for_item(1, 2, 4).next_u64()
        );
        assert_ne!(
            Rng::for_item(1, 2, 3).next_u64(),
            Rng::for_item(1, 3, 3).next_u64()
        );
    }

    #[test]
    fn known_splitmix64_values() {
        // First outputs of SplitMix64 seeded with 0, as published with the algorithm.
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn ranges_hold() {
        let mut rng = Rng::new(99);
        for _ in 0..10_000 {
            let unit = rng.unit();
            assert!((0.0..1.0).contains(&unit));
            assert!(rng.below(7) < 7);
            assert!((3..=5).contains(&rng.between(3, 5)));
        }
    }

    #[test]
    fn zipf_is_skewed_and_complete() {
        let zipf = Weighted::zipf(200, 1.0);
        let mut rng = Rng::new(1);
        let mut counts = [0u32; 200];
        for _ in 0..100_000 {
            counts[zipf.sample(&mut rng)] += 1;
        }
        assert!(counts[0] > counts[9] * 5);
        assert!(counts[199] > 0);
        let p: f64 = (0..200).map(|i| zipf.probability(i)).sum();
        assert!((p - 1.0).abs() < 1e-9);
    }
}
