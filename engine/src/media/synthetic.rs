//! The synthetic camera: a moving pattern with the frame number and the capture time written
//! into the pixels as rows of black/white blocks (16×16, smaller on small pictures), so a
//! receiver can check order, gaps and latency from the decoded image alone.

use super::frame::I420Frame;

/// Sizes of one stamp block, largest first: 16 survives VP8 at low bitrates; small pictures
/// (160×120 and below) use smaller blocks so the stamp leaves room for the pattern.
const BLOCKS: [u32; 3] = [16, 8, 4];
/// 32 bits of frame number, 48 bits of capture time (ms), 8 bits of check.
const BITS: u32 = 32 + 48 + 8;

/// What a frame carries about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub frame: u32,
    /// Capture time, milliseconds since the Unix epoch.
    pub capture_ms: u64,
}

pub struct SyntheticVideo {
    width: u32,
    height: u32,
    frame: u32,
}

impl SyntheticVideo {
    /// Any size: the stamp takes at most half the picture, in the largest blocks that fit
    /// (none below 32×32 or so: such frames carry no stamp).
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            frame: 0,
        }
    }

    /// Draws the following frames at another size (the numbering goes on).
    pub fn resize(&mut self, width: u32, height: u32) {
        self.width = width;
        self.height = height;
    }

    /// The next frame, stamped with `capture_ms`.
    pub fn next_frame(&mut self, capture_ms: u64) -> I420Frame {
        let mut f = I420Frame::black(self.width, self.height);
        let (w, h) = (self.width, self.height);
        let n = self.frame;
        // A diagonal gradient that scrolls, and a bright square that moves across.
        {
            let y = f.y_plane_mut();
            let top = layout(w, h).map_or(0, |l| l.rows * l.block);
            // Plus sensor-like noise, so the encoder has real work (and a real bitrate) as
            // with a camera; a flat pattern would compress to almost nothing.
            let mut seed = n.wrapping_mul(0x9E37_79B9) | 1;
            for row in top..h {
                for col in 0..w {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    let noise = seed & 1;
                    y[(row * w + col) as usize] = (12 + ((col + row + n * 4) % 200) + noise) as u8;
                }
            }
            let side = (h / 5).max(8);
            let x0 = (n * 6) % w.saturating_sub(side).max(1);
            let y0 = top + (n * 3) % h.saturating_sub(top).saturating_sub(side).max(1);
            for row in y0..(y0 + side).min(h) {
                for col in x0..(x0 + side).min(w) {
                    y[(row * w + col) as usize] = 235;
                }
            }
        }
        write_stamp(
            &mut f,
            Stamp {
                frame: n,
                capture_ms,
            },
        );
        self.frame = self.frame.wrapping_add(1);
        f
    }
}

/// Where a stamp goes in a picture of this size.
#[derive(Clone, Copy)]
struct Layout {
    block: u32,
    per_row: u32,
    rows: u32,
}

/// The largest blocks whose stamp fits in the top half of the picture (None: none does).
fn layout(width: u32, height: u32) -> Option<Layout> {
    BLOCKS.into_iter().find_map(|block| {
        let per_row = width / block;
        let rows = BITS.div_ceil(per_row.max(1));
        (per_row > 0 && rows * block * 2 <= height).then_some(Layout {
            block,
            per_row,
            rows,
        })
    })
}

fn check_byte(frame: u32, ms: u64) -> u8 {
    let mut x = u64::from(frame) ^ ms.rotate_left(17) ^ 0xA5;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> 56) as u8
}

fn bits_of(s: Stamp) -> Vec<bool> {
    let mut v = Vec::with_capacity(BITS as usize);
    v.extend((0..32).rev().map(|i| s.frame >> i & 1 == 1));
    v.extend((0..48).rev().map(|i| s.capture_ms >> i & 1 == 1));
    let c = check_byte(s.frame, s.capture_ms);
    v.extend((0..8).rev().map(|i| c >> i & 1 == 1));
    v
}

fn write_stamp(f: &mut I420Frame, s: Stamp) {
    let w = f.width;
    let Some(Layout { block, per_row, .. }) = layout(f.width, f.height) else {
        return;
    };
    let y = f.y_plane_mut();
    for (i, bit) in bits_of(s).into_iter().enumerate() {
        let (bx, by) = (i as u32 % per_row, i as u32 / per_row);
        let v = if bit { 235 } else { 16 };
        for row in by * block..(by + 1) * block {
            for col in bx * block..(bx + 1) * block {
                y[(row * w + col) as usize] = v;
            }
        }
    }
}

/// Reads the stamp back from a (decoded) frame; `None` when the check byte does not match.
pub fn read_stamp(f: &I420Frame) -> Option<Stamp> {
    let Layout { block, per_row, .. } = layout(f.width, f.height)?;
    let (inner, side) = (block / 4, block / 2);
    let bit = |i: u32| {
        let (bx, by) = (i % per_row, i / per_row);
        // The block's centre half, averaged.
        let mut sum = 0u32;
        for row in by * block + inner..by * block + inner + side {
            for col in bx * block + inner..bx * block + inner + side {
                sum += u32::from(f.luma(col, row));
            }
        }
        sum / (side * side) > 125
    };
    let mut frame = 0u32;
    for i in 0..32 {
        frame = frame << 1 | u32::from(bit(i));
    }
    let mut ms = 0u64;
    for i in 32..80 {
        ms = ms << 1 | u64::from(bit(i));
    }
    let mut check = 0u8;
    for i in 80..88 {
        check = check << 1 | u8::from(bit(i));
    }
    (check == check_byte(frame, ms)).then_some(Stamp {
        frame,
        capture_ms: ms,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_back_and_the_picture_moves() {
        let mut s = SyntheticVideo::new(320, 240);
        let a = s.next_frame(1_700_000_000_123);
        let b = s.next_frame(1_700_000_000_156);
        assert_eq!(
            read_stamp(&a),
            Some(Stamp {
                frame: 0,
                capture_ms: 1_700_000_000_123
            })
        );
        assert_eq!(read_stamp(&b).unwrap().frame, 1);
        assert_ne!(
            a.data[320 * 200..],
            b.data[320 * 200..],
            "the picture moves"
        );
        assert_eq!(
            read_stamp(&I420Frame::black(320, 240)),
            None,
            "no stamp, no reading"
        );
    }

    /// Every size the CLI accepts (even, 16×16 to 3840×2160) draws without panicking; those
    /// with room for a stamp carry one that reads back (160×120 once panicked the camera).
    #[test]
    fn every_accepted_size_draws_and_small_ones_keep_their_stamp() {
        for (w, h) in [
            (16, 16),
            (32, 32),
            (64, 48),
            (160, 120),
            (176, 144),
            (240, 160),
            (320, 240),
            (3840, 2160),
            (3840, 16),
            (16, 2160),
        ] {
            let mut s = SyntheticVideo::new(w, h);
            let a = s.next_frame(1_700_000_000_000);
            let b = s.next_frame(1_700_000_000_033);
            assert_eq!((a.width, a.height), (w, h));
            if w >= 64 && h >= 48 {
                assert_eq!(read_stamp(&b).map(|s| s.frame), Some(1), "{w}x{h} stamped");
                assert_ne!(a.data, b.data, "{w}x{h} moves");
            }
        }
        let mut s = SyntheticVideo::new(640, 480);
        s.resize(160, 120);
        assert_eq!(read_stamp(&s.next_frame(5)).map(|s| s.capture_ms), Some(5));
    }
}
