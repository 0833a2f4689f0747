//! Raw video frames as they move between capture, encoder, decoder and the UI.

/// A tightly packed 8-bit I420 (YUV 4:2:0) image: the Y plane (`width`×`height`), then U and
/// V (each `ceil(width/2)`×`ceil(height/2)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I420Frame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl I420Frame {
    /// A black frame.
    pub fn black(width: u32, height: u32) -> Self {
        let (y, c) = Self::plane_sizes(width, height);
        let mut data = vec![16u8; y + 2 * c];
        data[y..].fill(128);
        Self {
            width,
            height,
            data,
        }
    }

    /// Bytes in the Y plane and in each chroma plane.
    pub fn plane_sizes(width: u32, height: u32) -> (usize, usize) {
        let (w, h) = (width as usize, height as usize);
        (w * h, w.div_ceil(2) * h.div_ceil(2))
    }

    /// Each plane (Y, U, V) as (byte offset, byte length, width, height).
    pub fn planes(width: u32, height: u32) -> [(usize, usize, u32, u32); 3] {
        let (y, c) = Self::plane_sizes(width, height);
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        [(0, y, width, height), (y, c, cw, ch), (y + c, c, cw, ch)]
    }

    /// The luma value at (x, y).
    pub fn luma(&self, x: u32, y: u32) -> u8 {
        self.data[(y * self.width + x) as usize]
    }

    pub fn y_plane_mut(&mut self) -> &mut [u8] {
        let (y, _) = Self::plane_sizes(self.width, self.height);
        &mut self.data[..y]
    }

    /// Converts packed RGBA (e.g. a screen capture) to I420 (BT.601, limited range); chroma
    /// from the top-left pixel of each 2×2 block.
    pub fn from_rgba(width: u32, height: u32, rgba: &[u8]) -> Self {
        let (w, h) = (width as usize, height as usize);
        let mut f = Self::black(width, height);
        let (ysz, csz) = Self::plane_sizes(width, height);
        let cw = w.div_ceil(2);
        let (luma, chroma) = f.data.split_at_mut(ysz);
        let (u_plane, v_plane) = chroma.split_at_mut(csz);
        for (row, (src, dst)) in rgba
            .chunks_exact(w * 4)
            .zip(luma.chunks_exact_mut(w))
            .enumerate()
            .take(h)
        {
            for (px, y) in src.chunks_exact(4).zip(dst.iter_mut()) {
                let (r, g, b) = (i32::from(px[0]), i32::from(px[1]), i32::from(px[2]));
                *y = (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16).clamp(0, 255) as u8;
            }
            if row % 2 == 0 {
                let at = (row / 2) * cw;
                let us = &mut u_plane[at..at + cw];
                let vs = &mut v_plane[at..at + cw];
                for ((px, u), v) in src.chunks(8).zip(us.iter_mut()).zip(vs.iter_mut()) {
                    let (r, g, b) = (i32::from(px[0]), i32::from(px[1]), i32::from(px[2]));
                    *u = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128).clamp(0, 255) as u8;
                    *v = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128).clamp(0, 255) as u8;
                }
            }
        }
        f
    }
}
