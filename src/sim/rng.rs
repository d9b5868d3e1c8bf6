//! The simulators' random numbers: ChaCha8 from `rand_chacha`, whose stream for a seed is
//! fixed (documented as reproducible across platforms and releases), so a seed always gives
//! the same synthetic calls.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded generator with the two draws the simulators need.
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    pub fn seeded(seed: u64) -> SimRng {
        SimRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n.max(1))
    }

    /// True with probability `p` percent.
    pub fn chance(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_numbers() {
        let draw = |seed| {
            let mut r = SimRng::seeded(seed);
            (0..8).map(|_| r.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert!(draw(1).iter().all(|n| *n < 1000));
        assert_eq!(SimRng::seeded(1).below(0), 0);
    }
}
