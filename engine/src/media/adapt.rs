//! Fitting the camera's picture to this computer's CPU, as libwebrtc's overuse detector does
//! for a browser: when capturing and encoding a frame take most of the time between frames,
//! the picture steps down in size; when they take little for a while, it steps back up.
//! Without it an overloaded sender falls behind: frames wait, latency grows and the whole
//! machine (the meeting window, the other participants' decoders) slows with it.
//!
//! The measure is the camera thread's busy share of wall time over 2-second windows: capture
//! (less the time a camera makes it wait for its next frame), scaling and encoding, timed by
//! the wall clock, so a machine busy with something else counts too. Steps alternate
//! 3/4 and 2/3 per side (1280×720 → 960×540 → 640×360 → 480×270 → 320×180), never below
//! 320×180 worth of pixels. Stepping down takes two busy windows in a row; stepping up takes
//! three quiet ones, and twice as many each time a step up had to be undone within 10 s (so a
//! machine on the edge does not flap between two sizes).

use std::time::Duration;

use super::frame::I420Frame;

/// The fewest pixels a stepped-down picture keeps (libwebrtc's floor too).
const MIN_PIXELS: u32 = 320 * 180;
/// How long each usage measurement runs.
const WINDOW: Duration = Duration::from_secs(2);
/// Busy windows in a row before stepping down.
const OVERUSE_WINDOWS: u32 = 2;
/// Quiet windows in a row before stepping up, at first; doubled after each undone step up.
const UNDERUSE_WINDOWS: u32 = 3;
const MAX_UNDERUSE_WINDOWS: u32 = 24;
/// A step up undone within this long counts as a mistake.
const QUICK_UNDO: Duration = Duration::from_secs(10);

/// Busy shares (% of wall time) that count as too much and as plenty of room.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuThresholds {
    pub high_pct: f32,
    pub low_pct: f32,
}

impl Default for CpuThresholds {
    /// libwebrtc's defaults for a software encoder.
    fn default() -> Self {
        Self {
            high_pct: 85.0,
            low_pct: 42.0,
        }
    }
}

/// What changed, for the application and the logs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adapted {
    pub width: u32,
    pub height: u32,
    /// The busy share of the window that decided it.
    pub busy_pct: f32,
}

pub struct CpuAdapter {
    limits: CpuThresholds,
    full: (u32, u32),
    level: u32,
    window_start: Option<Duration>,
    busy: Duration,
    over: u32,
    under: u32,
    under_needed: u32,
    stepped_up_at: Option<Duration>,
    last_pct: Option<f32>,
}

impl CpuAdapter {
    /// For a camera capturing `full` (width, height).
    pub fn new(full: (u32, u32), limits: CpuThresholds) -> Self {
        Self {
            limits,
            full,
            level: 0,
            window_start: None,
            busy: Duration::ZERO,
            over: 0,
            under: 0,
            under_needed: UNDERUSE_WINDOWS,
            stepped_up_at: None,
            last_pct: None,
        }
    }

    /// The size to send now.
    pub fn size(&self) -> (u32, u32) {
        size_at(self.full, self.level)
    }

    /// The last complete window's busy share, if one has completed.
    pub fn busy_pct(&self) -> Option<f32> {
        self.last_pct
    }

    /// Records one frame: it kept the camera thread busy for `busy`, and finished at `now`
    /// (any monotonic clock). Returns the new size when this frame completed a window that
    /// changes it.
    pub fn frame(&mut self, now: Duration, busy: Duration) -> Option<Adapted> {
        let Some(start) = self.window_start else {
            self.window_start = Some(now);
            return None;
        };
        self.busy += busy;
        let span = now.saturating_sub(start);
        if span < WINDOW {
            return None;
        }
        let pct = (100.0 * self.busy.as_secs_f32() / span.as_secs_f32()).min(100.0);
        self.last_pct = Some(pct);
        self.window_start = Some(now);
        self.busy = Duration::ZERO;
        if pct > self.limits.high_pct {
            self.under = 0;
            self.over += 1;
            if self.over < OVERUSE_WINDOWS || !self.can_step_down() {
                return None;
            }
            self.over = 0;
            if self
                .stepped_up_at
                .is_some_and(|t| now.saturating_sub(t) < QUICK_UNDO)
            {
                self.under_needed = (self.under_needed * 2).min(MAX_UNDERUSE_WINDOWS);
            }
            self.stepped_up_at = None;
            self.level += 1;
        } else if pct < self.limits.low_pct {
            self.over = 0;
            self.under += 1;
            if self.under < self.under_needed || self.level == 0 {
                return None;
            }
            self.under = 0;
            self.level -= 1;
            self.stepped_up_at = Some(now);
        } else {
            self.over = 0;
            self.under = 0;
            return None;
        }
        let (width, height) = self.size();
        Some(Adapted {
            width,
            height,
            busy_pct: pct,
        })
    }

    fn can_step_down(&self) -> bool {
        let (w, h) = size_at(self.full, self.level + 1);
        w * h >= MIN_PIXELS
    }
}

/// The size `level` steps below `full`: factors 3/4, 1/2, 3/8, 1/4… per side, even numbers.
fn size_at((w, h): (u32, u32), level: u32) -> (u32, u32) {
    let halvings = level / 2;
    let (num, den) = if level % 2 == 1 { (3, 4) } else { (1, 1) };
    let side = |s: u32| ((u64::from(s) * num / den) >> halvings) as u32 & !1;
    (side(w).max(2), side(h).max(2))
}

/// Scales I420 frames to another size (bilinear, each plane on its own; SIMD where the CPU has
/// it). Keeps its buffers between frames.
pub struct Scaler {
    resizer: fast_image_resize::Resizer,
    options: fast_image_resize::ResizeOptions,
}

impl Default for Scaler {
    fn default() -> Self {
        Self {
            resizer: fast_image_resize::Resizer::new(),
            options: fast_image_resize::ResizeOptions::new().resize_alg(
                fast_image_resize::ResizeAlg::Convolution(fast_image_resize::FilterType::Bilinear),
            ),
        }
    }
}

impl Scaler {
    /// `frame` at `width`×`height` (the same frame when it already is).
    pub fn scale(&mut self, frame: I420Frame, width: u32, height: u32) -> I420Frame {
        if (frame.width, frame.height) == (width, height) {
            return frame;
        }
        use fast_image_resize::images::{Image, ImageRef};
        use fast_image_resize::PixelType;
        let mut out = I420Frame::black(width, height);
        let from = I420Frame::planes(frame.width, frame.height);
        let to = I420Frame::planes(width, height);
        for ((at, len, sw, sh), (dat, dlen, dw, dh)) in from.into_iter().zip(to) {
            let src = &frame.data[at..at + len];
            let dst = &mut out.data[dat..dat + dlen];
            // Both views are exactly their planes' sizes; U8 has no alignment to break.
            let (Ok(src), Ok(mut dst)) = (
                ImageRef::new(sw, sh, src, PixelType::U8),
                Image::from_slice_u8(dw, dh, dst, PixelType::U8),
            ) else {
                unreachable!("plane views match their sizes");
            };
            if let Err(e) = self.resizer.resize(&src, &mut dst, &self.options) {
                tracing::warn!(error = %e, "scaling a frame failed");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 25 fps: 50 frames make exactly one 2-second window.
    const PERIOD: Duration = Duration::from_millis(40);

    /// An adapter for `full` whose first window has begun.
    fn adapter(full: (u32, u32)) -> (CpuAdapter, Duration) {
        let mut a = CpuAdapter::new(full, CpuThresholds::default());
        assert_eq!(a.frame(Duration::ZERO, Duration::ZERO), None);
        (a, Duration::ZERO)
    }

    /// Feeds `n` windows of frames, each busy for `pct` % of the frame time; every change.
    fn windows(a: &mut CpuAdapter, t: &mut Duration, n: u32, pct: f32) -> Vec<(u32, u32)> {
        let mut changes = Vec::new();
        for _ in 0..n * 50 {
            *t += PERIOD;
            if let Some(c) = a.frame(*t, PERIOD.mul_f32(pct / 100.0)) {
                changes.push((c.width, c.height));
            }
        }
        changes
    }

    #[test]
    fn steps_alternate_three_quarters_and_two_thirds_down_to_320x180() {
        let sizes: Vec<_> = (0..5).map(|l| size_at((1280, 720), l)).collect();
        assert_eq!(
            sizes,
            [(1280, 720), (960, 540), (640, 360), (480, 270), (320, 180)]
        );
        assert_eq!(size_at((640, 480), 1), (480, 360));
        assert_eq!(size_at((641, 481), 1), (480, 360), "even sides");
    }

    #[test]
    fn a_busy_camera_steps_down_after_two_windows_and_stops_at_the_floor() {
        let (mut a, mut t) = adapter((1280, 720));
        assert_eq!(
            windows(&mut a, &mut t, 1, 95.0),
            [],
            "one busy window is not enough"
        );
        assert_eq!(windows(&mut a, &mut t, 1, 95.0), [(960, 540)]);
        assert_eq!(
            windows(&mut a, &mut t, 15, 95.0),
            [(640, 360), (480, 270), (320, 180)]
        );
        assert_eq!(a.size(), (320, 180));
        assert!(a.busy_pct().is_some_and(|p| (94.0..96.0).contains(&p)));
    }

    #[test]
    fn between_the_thresholds_nothing_changes() {
        let (mut a, mut t) = adapter((640, 480));
        assert_eq!(windows(&mut a, &mut t, 30, 60.0), []);
        // A busy window between calm ones resets the count.
        for _ in 0..5 {
            assert_eq!(windows(&mut a, &mut t, 1, 95.0), []);
            assert_eq!(windows(&mut a, &mut t, 1, 60.0), []);
        }
        assert_eq!(a.size(), (640, 480));
        // Quiet at full size: nothing to step up to.
        assert_eq!(windows(&mut a, &mut t, 30, 10.0), []);
    }

    #[test]
    fn a_quiet_camera_steps_back_up_and_a_quick_undo_doubles_the_wait() {
        let (mut a, mut t) = adapter((640, 480));
        assert_eq!(windows(&mut a, &mut t, 2, 95.0), [(480, 360)]);
        // Three quiet windows bring it back.
        assert_eq!(windows(&mut a, &mut t, 2, 20.0), []);
        assert_eq!(windows(&mut a, &mut t, 1, 20.0), [(640, 480)]);
        // Busy again at once: down, and the next step up waits six quiet windows.
        assert_eq!(windows(&mut a, &mut t, 2, 95.0), [(480, 360)]);
        assert_eq!(windows(&mut a, &mut t, 5, 20.0), []);
        assert_eq!(windows(&mut a, &mut t, 1, 20.0), [(640, 480)]);
        // A step up that holds for longer than 10 s was no mistake: the wait stays.
        assert_eq!(windows(&mut a, &mut t, 6, 60.0), []);
        assert_eq!(windows(&mut a, &mut t, 2, 95.0), [(480, 360)]);
        assert_eq!(windows(&mut a, &mut t, 5, 20.0), []);
        assert_eq!(windows(&mut a, &mut t, 1, 20.0), [(640, 480)]);
    }

    #[test]
    fn small_pictures_are_left_alone() {
        let (mut a, mut t) = adapter((320, 240));
        assert_eq!(windows(&mut a, &mut t, 15, 100.0), []);
    }

    #[test]
    fn scaling_keeps_colours_and_sizes() {
        // Left half white, right half black luma; chroma a flat colour.
        let (w, h) = (640, 480);
        let mut f = I420Frame::black(w, h);
        for row in 0..h {
            for col in 0..w / 2 {
                f.data[(row * w + col) as usize] = 235;
            }
        }
        let (ysz, csz) = I420Frame::plane_sizes(w, h);
        f.data[ysz..ysz + csz].fill(90);
        f.data[ysz + csz..].fill(200);
        let mut s = Scaler::default();
        let out = s.scale(f, 480, 360);
        assert_eq!((out.width, out.height), (480, 360));
        let (ysz, csz) = I420Frame::plane_sizes(480, 360);
        assert_eq!(out.data.len(), ysz + 2 * csz);
        assert_eq!(out.luma(10, 100), 235);
        assert_eq!(out.luma(470, 300), 16);
        assert!(out.data[ysz..ysz + csz].iter().all(|&u| u == 90));
        assert!(out.data[ysz + csz..].iter().all(|&v| v == 200));
        // The same size is passed through untouched.
        let same = s.scale(out.clone(), 480, 360);
        assert_eq!(same, out);
    }
}
