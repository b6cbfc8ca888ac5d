//! Boot-time measurement: boot N times, keep each run's figures, report medians.

use std::time::Duration;

use crate::config::QemuConfig;
use crate::error::HarnessError;
use crate::session::Sis;

/// One boot's figures, both measured from spawning QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootSample {
    /// To the first byte of console output (QEMU start-up plus the kernel's earliest output).
    pub first_output: Duration,
    /// To the first prompt.
    pub prompt: Duration,
}

/// The figures of every run, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootTimes {
    /// One sample per run.
    pub samples: Vec<BootSample>,
}

impl BootTimes {
    /// Median time to the first prompt (`None` without samples).
    pub fn median_prompt(&self) -> Option<Duration> {
        median(self.samples.iter().map(|sample| sample.prompt).collect())
    }

    /// Median time to the first output byte, from the same runs (`None` without samples).
    pub fn median_first_output(&self) -> Option<Duration> {
        median(self.samples.iter().map(|sample| sample.first_output).collect())
    }
}

/// Boots `runs` times, calling `on_sample` with the run number (from 1) after each boot.
///
/// Stops at the first failed boot.
pub fn measure_boot_times(
    config: &QemuConfig,
    runs: u32,
    mut on_sample: impl FnMut(u32, &BootSample),
) -> Result<BootTimes, HarnessError> {
    let mut times = BootTimes::default();
    for run in 1..=runs {
        let sis = Sis::boot(config)?;
        let sample = BootSample { first_output: sis.first_output_time(), prompt: sis.boot_time() };
        drop(sis);
        on_sample(run, &sample);
        times.samples.push(sample);
    }
    Ok(times)
}

/// The median; for an even count, the mean of the two middle values.
pub fn median(mut values: Vec<Duration>) -> Option<Duration> {
    values.sort_unstable();
    let middle = values.len() / 2;
    match values.len() {
        0 => None,
        count if count % 2 == 1 => Some(values[middle]),
        _ => Some((values[middle - 1] + values[middle]) / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milliseconds(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&value| Duration::from_millis(value)).collect()
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(milliseconds(&[300, 100, 200])), Some(Duration::from_millis(200)));
        assert_eq!(median(milliseconds(&[400, 100, 300, 200])), Some(Duration::from_millis(250)));
        assert_eq!(median(Vec::new()), None);
    }

    #[test]
    fn medians_come_from_the_same_samples() {
        let sample = |first, prompt| BootSample {
            first_output: Duration::from_millis(first),
            prompt: Duration::from_millis(prompt),
        };
        let times = BootTimes { samples: vec![sample(150, 400), sample(100, 350), sample(170, 900)] };
        assert_eq!(times.median_prompt(), Some(Duration::from_millis(400)));
        assert_eq!(times.median_first_output(), Some(Duration::from_millis(150)));
    }
}
