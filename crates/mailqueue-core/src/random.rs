//! Randomness is injected like time: the retry jitter asks a [`Jitter`],
//! so a test can fix the sample and know the next retry's time.

/// A source of uniform samples in `[0, 1)`.
pub trait Jitter: Send + Sync + 'static {
    fn sample(&self) -> f64;
}

/// The same sample every time.
#[derive(Clone, Copy, Debug)]
pub struct FixedJitter(pub f64);

impl Jitter for FixedJitter {
    fn sample(&self) -> f64 {
        self.0.clamp(0.0, 1.0)
    }
}
