//! What both soaks print and judge: a quantity at the start, after warm-up, at the end and
//! at its peak after warm-up, and whether it grew past the tolerance after warm-up.

/// One quantity a soak samples.
#[derive(Clone, Copy)]
pub struct Growth<'a> {
    pub name: &'a str,
    pub start: f64,
    pub warm: f64,
    pub end: f64,
    pub peak: f64,
    /// Decimals shown (RSS in MiB: 1; counts: 0).
    pub decimals: usize,
}

impl Growth<'_> {
    /// End over warm-up.
    pub fn ratio(&self) -> f64 {
        if self.warm > 0.0 {
            self.end / self.warm
        } else {
            f64::NAN
        }
    }

    /// What is wrong when the quantity grew more than `tolerance` (0.05: 5 %) after warm-up.
    pub fn grown(&self, tolerance: f64) -> Option<String> {
        (self.end > self.warm * (1.0 + tolerance)).then(|| {
            format!(
                "{} grew {:.1} % after warm-up ({:.d$} → {:.d$})",
                self.name,
                (self.ratio() - 1.0) * 100.0,
                self.warm,
                self.end,
                d = self.decimals
            )
        })
    }
}

/// A count read from four samples: at the start, after warm-up, at the end, the peak.
pub fn counted<'a, S>(name: &'a str, samples: [&S; 4], f: impl Fn(&S) -> u64) -> Growth<'a> {
    growth(name, samples.map(|s| f(s) as f64), 0)
}

/// As [`counted`], for a size read in KiB and shown in MiB.
pub fn in_mib<'a, S>(name: &'a str, samples: [&S; 4], f: impl Fn(&S) -> u64) -> Growth<'a> {
    growth(name, samples.map(|s| mib(f(s))), 1)
}

fn growth(name: &str, [start, warm, end, peak]: [f64; 4], decimals: usize) -> Growth<'_> {
    Growth {
        name,
        start,
        warm,
        end,
        peak,
        decimals,
    }
}

/// The Markdown table BENCHMARKS.md records: `title` heads the first column.
pub fn growth_table(title: &str, warmup_secs: u64, rows: &[Growth]) {
    println!(
        "| {title} | start | after warm-up ({warmup_secs} s) | end | end / warm-up | peak after warm-up |"
    );
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.d$} | {:.d$} | {:.d$} | {:.3} | {:.d$} |",
            r.name,
            r.start,
            r.warm,
            r.end,
            r.ratio(),
            r.peak,
            d = r.decimals
        );
    }
}

/// KiB as MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rss(warm: f64, end: f64) -> Growth<'static> {
        Growth {
            name: "RSS",
            start: 20.0,
            warm,
            end,
            peak: end,
            decimals: 1,
        }
    }

    #[test]
    fn growth_past_the_tolerance_is_named() {
        assert_eq!(rss(88.8, 93.2).grown(0.05), None);
        assert_eq!(
            rss(88.8, 95.3).grown(0.05).as_deref(),
            Some("RSS grew 7.3 % after warm-up (88.8 → 95.3)")
        );
        assert_eq!(rss(0.0, 0.0).grown(0.05), None);
    }
}
