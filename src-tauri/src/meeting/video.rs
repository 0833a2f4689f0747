//! Video for the webview: binary packets over a Tauri channel, never JSON, and no more in
//! flight per track than the UI can draw.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parley_engine::media::frame::I420Frame;
use tauri::ipc::{Channel, InvokeResponseBody, IpcResponse};

/// Frames of one track handed to the webview and not yet reported drawn; beyond this, that
/// track's frames are dropped rather than queued: a busy UI is sent only what it can draw
/// (receiving a frame costs the webview as much as drawing it), and shows fresh pictures.
const MAX_FRAMES_IN_FLIGHT: u32 = 2;
/// Video packet kinds (byte 1 of a packet).
pub const KIND_CAMERA: u8 = 0;
pub const KIND_SCREEN: u8 = 1;
pub const KIND_SELF: u8 = 2;

/// One video frame for the webview: `[format, kind, width u16 LE, height u16 LE, id length, id
/// bytes…, pixels]`, the pixels tightly packed as I420 (Y, U, V planes; format 1) or RGBA
/// (format 2). The TypeScript side (`ui/src/lib/video.ts`) reads the same layout.
pub struct VideoPacket(pub Vec<u8>);

/// How the webview gets its pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, specta::Type)]
#[serde(rename_all = "lowercase")]
pub enum VideoFormat {
    /// For a WebGL shader: a third of RGBA's bytes, converted on the GPU.
    I420,
    /// For a 2D canvas (`putImageData`), converted here with SIMD: for a webview without
    /// WebGL, or on a machine without a GPU, where WebGL would run in software.
    Rgba,
}

impl VideoFormat {
    /// What to send a UI that asked for `asked`: RGBA where GL is software (the UI cannot
    /// tell: WebKit names no real renderer to pages); `PARLEY_VIDEO_FORMAT=i420|rgba`
    /// overrides both (measurements).
    pub fn for_this_machine(asked: Self) -> Self {
        match std::env::var("PARLEY_VIDEO_FORMAT").as_deref() {
            Ok("i420") => Self::I420,
            Ok("rgba") => Self::Rgba,
            _ if software_gl() => Self::Rgba,
            _ => asked,
        }
    }
}

/// No GPU to render with: on Linux, no DRM render node (`/dev/dri/renderD*`), so GL is
/// Mesa's software rasteriser. Elsewhere the webview's own GPU checks are trusted.
pub fn software_gl() -> bool {
    if !cfg!(target_os = "linux") {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/dev/dri") else {
        return true;
    };
    !dir.flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
}

impl IpcResponse for VideoPacket {
    fn body(self) -> tauri::Result<InvokeResponseBody> {
        Ok(InvokeResponseBody::Raw(self.0))
    }
}

impl specta::Type for VideoPacket {
    fn inline(_: &mut specta::TypeCollection, _: specta::Generics) -> specta::datatype::DataType {
        // Arrives in JavaScript as an ArrayBuffer; specta has no name for that.
        specta::datatype::DataType::Unknown
    }
}

/// Builds a [`VideoPacket`].
pub fn packet(format: VideoFormat, kind: u8, peer: &str, frame: &I420Frame) -> Vec<u8> {
    // At most 255 bytes, cut where a character ends (the page decodes it as UTF-8).
    let mut end = peer.len().min(255);
    while !peer.is_char_boundary(end) {
        end -= 1;
    }
    let id = &peer.as_bytes()[..end];
    let (w, h) = (frame.width.min(65535), frame.height.min(65535));
    let pixels = match format {
        VideoFormat::I420 => frame.data.len(),
        VideoFormat::Rgba => w as usize * h as usize * 4,
    };
    let mut out = Vec::with_capacity(7 + id.len() + pixels);
    out.push(match format {
        VideoFormat::I420 => 1,
        VideoFormat::Rgba => 2,
    });
    out.push(kind);
    out.extend_from_slice(&(w as u16).to_le_bytes());
    out.extend_from_slice(&(h as u16).to_le_bytes());
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    match format {
        VideoFormat::I420 => out.extend_from_slice(&frame.data),
        VideoFormat::Rgba => {
            let start = out.len();
            out.resize(start + pixels, 255);
            if i420_to_rgba(frame, &mut out[start..]).is_err() {
                out.truncate(start); // a malformed frame: the UI skips a short packet
            }
        }
    }
    out
}

/// BT.601 limited range, as the engine's encoder and decoder use.
fn i420_to_rgba(frame: &I420Frame, rgba: &mut [u8]) -> Result<(), yuv::YuvError> {
    let (w, h) = (frame.width, frame.height);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let y_len = (w * h) as usize;
    let c_len = (cw * ch) as usize;
    let data = &frame.data;
    if data.len() < y_len + 2 * c_len {
        return Err(yuv::YuvError::PointerOverflow);
    }
    let image = yuv::YuvPlanarImage {
        y_plane: &data[..y_len],
        y_stride: w,
        u_plane: &data[y_len..y_len + c_len],
        u_stride: cw,
        v_plane: &data[y_len + c_len..y_len + 2 * c_len],
        v_stride: cw,
        width: w,
        height: h,
    };
    yuv::yuv420_to_rgba(
        &image,
        rgba,
        w * 4,
        yuv::YuvRange::Limited,
        yuv::YuvStandardMatrix::Bt601,
    )
}

/// Where frames go, and how many of each track the UI has not drawn yet.
#[derive(Default)]
pub struct Frames {
    out: std::sync::Mutex<Option<(Channel<VideoPacket>, VideoFormat)>>,
    /// Frames in flight per track (`peer/kind`).
    in_flight: std::sync::Mutex<HashMap<String, u32>>,
    /// Frames dropped because the UI was behind (for the rendering figures).
    pub dropped: AtomicU64,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Frames {
    pub fn set_channel(&self, channel: Channel<VideoPacket>, format: VideoFormat) {
        *lock(&self.out) = Some((channel, format));
        lock(&self.in_flight).clear();
    }

    /// The UI is done (drew or skipped) with one frame of each track named (`peer/kind`).
    pub fn done(&self, tracks: &[String]) {
        let mut in_flight = lock(&self.in_flight);
        for t in tracks {
            if let Some(n) = in_flight.get_mut(t) {
                *n = n.saturating_sub(1);
            }
        }
    }

    pub fn send(&self, kind: u8, peer: &str, frame: &I420Frame) {
        let out = lock(&self.out);
        let Some((channel, format)) = out.as_ref() else {
            return;
        };
        let track = format!("{peer}/{kind}");
        {
            let mut in_flight = lock(&self.in_flight);
            let n = in_flight.entry(track.clone()).or_insert(0);
            if *n >= MAX_FRAMES_IN_FLIGHT {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            *n += 1;
        }
        if channel
            .send(VideoPacket(packet(*format, kind, peer, frame)))
            .is_err()
        {
            self.done(&[track]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of one colour (Y, U, V), `w`×`h`.
    fn flat(w: u32, h: u32, (y, u, v): (u8, u8, u8)) -> I420Frame {
        let (ys, cs) = ((w * h) as usize, (w.div_ceil(2) * h.div_ceil(2)) as usize);
        let mut data = vec![y; ys + 2 * cs];
        data[ys..ys + cs].fill(u);
        data[ys + cs..].fill(v);
        I420Frame {
            width: w,
            height: h,
            data,
        }
    }

    fn header(p: &[u8]) -> (u8, u8, u16, u16, &str, &[u8]) {
        let id_len = p[6] as usize;
        (
            p[0],
            p[1],
            u16::from_le_bytes([p[2], p[3]]),
            u16::from_le_bytes([p[4], p[5]]),
            std::str::from_utf8(&p[7..7 + id_len]).unwrap(),
            &p[7 + id_len..],
        )
    }

    #[test]
    fn i420_packets_carry_the_planes_as_they_are() {
        let f = flat(4, 2, (81, 90, 240));
        let p = packet(VideoFormat::I420, KIND_SCREEN, "peer-1", &f);
        let (format, kind, w, h, id, pixels) = header(&p);
        assert_eq!((format, kind, w, h, id), (1, KIND_SCREEN, 4, 2, "peer-1"));
        assert_eq!(pixels, &f.data[..]);
    }

    #[test]
    fn a_long_peer_id_is_cut_where_a_character_ends() {
        let f = flat(2, 2, (16, 128, 128));
        let long = "😀".repeat(70); // 280 bytes; 255 would split the 64th emoji
        let p = packet(VideoFormat::I420, KIND_SCREEN, &long, &f);
        let (_, _, _, _, id, pixels) = header(&p); // header() decodes the id as UTF-8
        assert_eq!(id, "😀".repeat(63));
        assert_eq!(pixels, &f.data[..]);
    }

    #[test]
    fn rgba_packets_hold_bt601_limited_range_colours() {
        // BT.601 limited range: (16,128,128) black, (235,128,128) white, (81,90,240) red.
        for ((y, u, v), want) in [
            ((16, 128, 128), [0u8, 0, 0]),
            ((235, 128, 128), [255, 255, 255]),
            ((81, 90, 240), [255, 0, 0]),
            ((145, 54, 34), [0, 255, 0]),
        ] {
            // Odd sizes: the chroma planes round up.
            let p = packet(VideoFormat::Rgba, KIND_CAMERA, "p", &flat(5, 3, (y, u, v)));
            let (format, _, w, h, _, pixels) = header(&p);
            assert_eq!((format, w, h), (2, 5, 3));
            assert_eq!(pixels.len(), 5 * 3 * 4);
            for px in pixels.chunks(4) {
                for c in 0..3 {
                    let d = (px[c] as i32 - want[c] as i32).abs();
                    assert!(d <= 3, "{:?} from {:?}, want {want:?}", px, (y, u, v));
                }
                assert_eq!(px[3], 255);
            }
        }
    }

    #[test]
    fn a_short_frame_makes_a_packet_without_pixels() {
        let mut f = flat(8, 8, (16, 128, 128));
        f.data.truncate(10);
        let p = packet(VideoFormat::Rgba, KIND_CAMERA, "p", &f);
        let (format, _, w, h, _, pixels) = header(&p);
        assert_eq!((format, w, h, pixels.len()), (2, 8, 8, 0));
    }
}
