//! Voice activity: each participant's level (dBFS of their decoded audio) and which of them is
//! the active speaker. Someone is speaking when their smoothed level is above -50 dBFS; the
//! active speaker is the loudest speaker, and changes only when the current one has been quiet
//! for 800 ms or someone else is 6 dB louder, so a cough or a word of agreement does not make
//! the video grid jump.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::audio::rms;

/// Level of an audio frame in dBFS (-100 for silence).
pub fn level_dbfs(samples: &[f32]) -> f32 {
    let r = rms(samples);
    if r <= 1e-5 {
        -100.0
    } else {
        (20.0 * r.log10()).max(-100.0)
    }
}

const SPEAKING_DBFS: f32 = -50.0;
const QUIET_HOLD: Duration = Duration::from_millis(800);
const LOUDER_DB: f32 = 6.0;

#[derive(Default)]
pub struct ActiveSpeaker {
    /// Smoothed level and when the participant was last heard speaking.
    levels: HashMap<String, (f32, Option<Instant>)>,
    current: Option<String>,
}

impl ActiveSpeaker {
    /// Takes a participant's latest frame level; returns the new active speaker when it
    /// changed.
    pub fn update(&mut self, who: &str, dbfs: f32, now: Instant) -> Option<Option<String>> {
        let e = self.levels.entry(who.to_owned()).or_insert((-100.0, None));
        // Fast attack, slow release.
        e.0 = if dbfs > e.0 {
            0.5 * e.0 + 0.5 * dbfs
        } else {
            0.9 * e.0 + 0.1 * dbfs
        };
        if e.0 > SPEAKING_DBFS {
            e.1 = Some(now);
        }
        let speaking = |(level, last): &(f32, Option<Instant>)| {
            *level > SPEAKING_DBFS || last.is_some_and(|t| now.duration_since(t) < QUIET_HOLD)
        };
        let loudest = self
            .levels
            .iter()
            .filter(|(_, v)| speaking(v))
            .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
            .map(|(k, v)| (k.clone(), v.0));
        let current_level = self
            .current
            .as_ref()
            .and_then(|c| self.levels.get(c))
            .filter(|v| speaking(v))
            .map(|v| v.0);
        let next = match (current_level, loudest) {
            (_, None) => None,
            (None, Some((who, _))) => Some(who),
            (Some(cur), Some((who, level))) if level > cur + LOUDER_DB => Some(who),
            (Some(_), Some(_)) => self.current.clone(),
        };
        if next == self.current {
            return None;
        }
        self.current = next.clone();
        Some(next)
    }

    pub fn remove(&mut self, who: &str) {
        self.levels.remove(who);
        if self.current.as_deref() == Some(who) {
            self.current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_in_dbfs() {
        assert_eq!(level_dbfs(&[0.0; 960]), -100.0);
        let full: Vec<f32> = (0..960)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert!(level_dbfs(&full).abs() < 0.01);
        let quiet: Vec<f32> = full.iter().map(|s| s * 0.01).collect();
        assert!((level_dbfs(&quiet) + 40.0).abs() < 0.01);
    }

    #[test]
    fn the_loudest_talker_becomes_active_without_flapping() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut s = ActiveSpeaker::default();
        let mut changes = Vec::new();
        // 0–2 s: Ann talks, Bob silent. 2–2.3 s: Bob says "yes" while Ann goes on.
        // 2.5–5 s: Ann stops, Bob talks.
        for i in 0..250u64 {
            let t = i * 20;
            let ann = if t < 2500 { -20.0 } else { -100.0 };
            let bob = if (2000..2300).contains(&t) || t >= 2500 {
                -22.0
            } else {
                -100.0
            };
            for (who, level) in [("ann", ann), ("bob", bob)] {
                if let Some(c) = s.update(who, level, at(t)) {
                    changes.push((t, c));
                }
            }
        }
        let who: Vec<Option<&str>> = changes.iter().map(|(_, c)| c.as_deref()).collect();
        assert_eq!(who, [Some("ann"), Some("bob")], "{changes:?}");
        let switched = changes[1].0;
        assert!(
            (2500..3600).contains(&switched),
            "Bob takes over after Ann's hold: {switched} ms"
        );
        s.remove("bob");
        assert_eq!(
            s.update("ann", -100.0, at(6000)),
            None,
            "nobody active already"
        );
    }
}
