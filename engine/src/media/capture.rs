//! Video capture sources behind one trait: the synthetic test pattern, a camera (nokhwa, format
//! negotiated towards the size and rate asked for), and a monitor or window (xcap). Capture APIs
//! block, so every source lives on its own thread (the call's capture threads, `call::send`); frames come out as
//! I420 with even dimensions, the encoder's input.

use nokhwa::pixel_format::RgbAFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, FrameFormat, RequestedFormat, RequestedFormatType, Resolution,
};

use super::devices::DeviceError;
use super::frame::I420Frame;
use super::synthetic::SyntheticVideo;

/// A source of video frames. Not `Send`: camera handles must stay on the thread that opened
/// them, so sources are built on their capture thread.
pub trait VideoCapture {
    /// The next frame; `capture_ms` is the wall-clock time it is taken (the synthetic source
    /// stamps it into the pixels). Blocks at most about one frame interval.
    fn capture(&mut self, capture_ms: u64) -> Result<I420Frame, DeviceError>;

    /// How long the last `capture` call waited for a device rather than worked (a camera
    /// hands out frames at its own pace); the rest of its time is work the CPU adapter counts.
    fn waited(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Asks for frames of this size from the next one on; false when the source cannot (its
    /// frames are then scaled).
    fn set_size(&mut self, _width: u32, _height: u32) -> bool {
        false
    }
}

impl VideoCapture for SyntheticVideo {
    fn capture(&mut self, capture_ms: u64) -> Result<I420Frame, DeviceError> {
        Ok(self.next_frame(capture_ms))
    }

    /// The pattern is drawn at the new size, so its stamp stays readable.
    fn set_size(&mut self, width: u32, height: u32) -> bool {
        self.resize(width, height);
        true
    }
}

/// A camera, as the device list shows it. `id` is stable across replugging on the same port
/// (the backend's device path or unique id), so a saved choice finds the camera again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraInfo {
    pub id: String,
    pub name: String,
}

/// macOS asks the user before an app may use a camera, and nokhwa must be initialised (which
/// asks, once) before it lists or opens one. Waits for the answer; elsewhere there is nothing
/// to ask.
fn camera_permission() -> Result<(), DeviceError> {
    #[cfg(target_os = "macos")]
    {
        if nokhwa::nokhwa_check() {
            return Ok(());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        nokhwa::nokhwa_initialize(move |granted| {
            let _ = tx.send(granted);
        });
        match rx.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(true) => Ok(()),
            _ => Err(DeviceError::CameraDenied),
        }
    }
    #[cfg(not(target_os = "macos"))]
    Ok(())
}

/// The cameras nokhwa can see (empty when there are none).
pub fn cameras() -> Result<Vec<CameraInfo>, DeviceError> {
    camera_permission()?;
    let list = nokhwa::query(ApiBackend::Auto).map_err(|e| DeviceError::Camera(e.to_string()))?;
    Ok(list
        .into_iter()
        .map(|c| CameraInfo {
            id: if c.misc().is_empty() {
                c.index().as_string()
            } else {
                c.misc()
            },
            name: c.human_name(),
        })
        .collect())
}

/// A real camera. Frames are decoded to RGBA by nokhwa (MJPEG or YUYV, whatever the camera
/// gives at the negotiated format), then converted to I420.
pub struct CameraCapture {
    camera: nokhwa::Camera,
    /// How long the last capture waited for the device's frame.
    waited: std::time::Duration,
}

impl CameraCapture {
    /// Opens the camera whose id or name is `wanted` (None: the first one), asking for the
    /// closest format to `width`×`height` at `fps`.
    pub fn open(
        wanted: Option<&str>,
        width: u32,
        height: u32,
        fps: u32,
    ) -> Result<Self, DeviceError> {
        camera_permission()?;
        let list =
            nokhwa::query(ApiBackend::Auto).map_err(|e| DeviceError::Camera(e.to_string()))?;
        let info = match wanted {
            None | Some("default") => list.into_iter().next().ok_or(DeviceError::NoCamera)?,
            Some(w) => {
                let names: Vec<String> = list.iter().map(|c| c.human_name()).collect();
                list.into_iter()
                    .find(|c| c.misc() == w || c.human_name() == w || c.index().as_string() == w)
                    .ok_or_else(|| DeviceError::UnknownCamera {
                        name: w.to_owned(),
                        available: names.join(", "),
                    })?
            }
        };
        let res = Resolution::new(width, height);
        // MJPEG first (what webcams give at 30 fps), then YUYV, then whatever the camera has.
        let requests = [
            RequestedFormatType::Closest(CameraFormat::new(res, FrameFormat::MJPEG, fps)),
            RequestedFormatType::Closest(CameraFormat::new(res, FrameFormat::YUYV, fps)),
            RequestedFormatType::AbsoluteHighestFrameRate,
        ];
        let mut last = String::new();
        for req in requests {
            match nokhwa::Camera::new(
                info.index().clone(),
                RequestedFormat::new::<RgbAFormat>(req),
            ) {
                Ok(mut camera) => {
                    camera
                        .open_stream()
                        .map_err(|e| DeviceError::Camera(e.to_string()))?;
                    tracing::info!(format = %camera.camera_format(), "camera open");
                    return Ok(Self {
                        camera,
                        waited: std::time::Duration::ZERO,
                    });
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(DeviceError::Camera(last))
    }
}

impl VideoCapture for CameraCapture {
    fn capture(&mut self, _capture_ms: u64) -> Result<I420Frame, DeviceError> {
        // A frame error on an open stream is the camera going away (unplugged).
        let asked = std::time::Instant::now();
        let buf = self.camera.frame().map_err(|_| DeviceError::CameraGone)?;
        self.waited = asked.elapsed();
        let rgba = buf
            .decode_image::<RgbAFormat>()
            .map_err(|e| DeviceError::Camera(e.to_string()))?;
        Ok(rgba_to_i420(
            rgba.width(),
            rgba.height(),
            rgba.as_raw(),
            u32::MAX,
        ))
    }

    fn waited(&self) -> std::time::Duration {
        self.waited
    }
}

impl Drop for CameraCapture {
    fn drop(&mut self) {
        let _ = self.camera.stop_stream();
    }
}

/// What to share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScreenTarget {
    /// A monitor by id (None: the primary one).
    Monitor(Option<u32>),
    /// A window by id.
    Window(u32),
}

/// A screen target that is not `monitor`, `monitor:ID` or `window:ID`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadTarget(String);

impl std::str::FromStr for ScreenTarget {
    type Err = BadTarget;

    /// `monitor` (the primary one), `monitor:ID` or `window:ID`, as `parley-cli devices` lists.
    fn from_str(s: &str) -> Result<Self, BadTarget> {
        let id = |v: &str| {
            v.parse::<u32>()
                .map_err(|_| BadTarget(format!("{v:?} is not a number")))
        };
        match s.split_once(':') {
            None if s == "monitor" || s == "screen" => Ok(Self::Monitor(None)),
            Some(("monitor", v)) => Ok(Self::Monitor(Some(id(v)?))),
            Some(("window", v)) => Ok(Self::Window(id(v)?)),
            _ => Err(BadTarget(format!(
                "{s:?}: use monitor, monitor:ID or window:ID"
            ))),
        }
    }
}

impl std::fmt::Display for ScreenTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Monitor(None) => write!(f, "monitor"),
            Self::Monitor(Some(id)) => write!(f, "monitor:{id}"),
            Self::Window(id) => write!(f, "window:{id}"),
        }
    }
}

/// A monitor or window that can be shared, as a picker shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenInfo {
    pub target: ScreenTarget,
    pub name: String,
    pub width: u32,
    pub height: u32,
}

fn screen_err(e: xcap::XCapError) -> DeviceError {
    DeviceError::Screen(e.to_string())
}

/// macOS lets an app see other apps' windows only with the user's Screen Recording
/// permission; without it a capture shows the wallpaper and the menu bar, nothing else, and
/// no error says why. Asks once (the system's prompt; it opens System Settings), and says
/// what to do when it is not granted. Elsewhere there is nothing to ask.
fn screen_permission() -> Result<(), DeviceError> {
    #[cfg(target_os = "macos")]
    {
        #[link(name = "CoreGraphics", kind = "framework")]
        extern "C" {
            // Both since macOS 10.15; Parley's minimum is 11.
            fn CGPreflightScreenCaptureAccess() -> bool;
            fn CGRequestScreenCaptureAccess() -> bool;
        }
        // SAFETY: neither takes arguments nor hands back memory; they read the privacy
        // settings and, for the request, show the system's prompt.
        #[allow(unsafe_code)]
        let granted = unsafe { CGPreflightScreenCaptureAccess() || CGRequestScreenCaptureAccess() };
        if !granted {
            return Err(DeviceError::ScreenDenied);
        }
    }
    Ok(())
}

/// Monitors, then windows (windows are listed only where a window manager publishes them).
pub fn screens() -> Result<Vec<ScreenInfo>, DeviceError> {
    screen_permission()?;
    let mut out = Vec::new();
    for m in xcap::Monitor::all().map_err(screen_err)? {
        out.push(ScreenInfo {
            target: ScreenTarget::Monitor(m.id().ok()),
            name: m.name().unwrap_or_else(|_| "screen".into()),
            width: m.width().unwrap_or(0),
            height: m.height().unwrap_or(0),
        });
    }
    for w in xcap::Window::all().unwrap_or_default() {
        if w.is_minimized().unwrap_or(false) {
            continue;
        }
        let (Ok(id), Ok(title)) = (w.id(), w.title()) else {
            continue;
        };
        out.push(ScreenInfo {
            target: ScreenTarget::Window(id),
            name: title,
            width: w.width().unwrap_or(0),
            height: w.height().unwrap_or(0),
        });
    }
    Ok(out)
}

/// A still of a monitor or window, at most `max_width` wide, as PNG bytes (for a picker).
pub fn thumbnail(target: &ScreenTarget, max_width: u32) -> Result<Vec<u8>, DeviceError> {
    let cap = ScreenCapture::open(target, max_width)?;
    let img = match &cap.what {
        Shared::Monitor(m) => m.capture_image().map_err(screen_err)?,
        Shared::Window(w) => w.capture_image().map_err(|_| DeviceError::ScreenGone)?,
    };
    let (w, h) = (img.width().max(1), img.height().max(1));
    let tw = w.min(max_width.max(1));
    let th = (u64::from(h) * u64::from(tw) / u64::from(w)).max(1) as u32;
    let small = xcap::image::imageops::thumbnail(&img, tw, th);
    let mut png = Vec::new();
    small
        .write_to(
            &mut std::io::Cursor::new(&mut png),
            xcap::image::ImageFormat::Png,
        )
        .map_err(|e| DeviceError::Screen(e.to_string()))?;
    Ok(png)
}

enum Shared {
    Monitor(xcap::Monitor),
    Window(xcap::Window),
}

/// A monitor or window through xcap, scaled down to at most `max_width` wide.
pub struct ScreenCapture {
    what: Shared,
    max_width: u32,
}

impl ScreenCapture {
    pub fn open(target: &ScreenTarget, max_width: u32) -> Result<Self, DeviceError> {
        screen_permission()?;
        let what = match target {
            ScreenTarget::Monitor(id) => {
                let all = xcap::Monitor::all().map_err(screen_err)?;
                let found = match id {
                    Some(id) => all.into_iter().find(|m| m.id().ok() == Some(*id)),
                    None => {
                        let primary = all.iter().position(|m| m.is_primary().unwrap_or(false));
                        let i = primary.unwrap_or(0);
                        all.into_iter().nth(i)
                    }
                };
                Shared::Monitor(found.ok_or(DeviceError::NoScreen)?)
            }
            ScreenTarget::Window(id) => Shared::Window(
                xcap::Window::all()
                    .map_err(screen_err)?
                    .into_iter()
                    .find(|w| w.id().ok() == Some(*id))
                    .ok_or(DeviceError::NoScreen)?,
            ),
        };
        Ok(Self { what, max_width })
    }
}

impl VideoCapture for ScreenCapture {
    fn capture(&mut self, _capture_ms: u64) -> Result<I420Frame, DeviceError> {
        let img = match &self.what {
            Shared::Monitor(m) => m.capture_image().map_err(screen_err)?,
            // A window that cannot be captured any more has been closed.
            Shared::Window(w) => w.capture_image().map_err(|_| DeviceError::ScreenGone)?,
        };
        Ok(rgba_to_i420(
            img.width(),
            img.height(),
            img.as_raw(),
            self.max_width,
        ))
    }
}

/// RGBA to I420 with even dimensions (odd edges cropped), halved until at most `max_width`
/// wide (2×2 box filter: cheap, and sharp enough for text at the sizes shared).
pub fn rgba_to_i420(width: u32, height: u32, rgba: &[u8], max_width: u32) -> I420Frame {
    let (mut w, mut h) = (width as usize, height as usize);
    let mut owned: Option<Vec<u8>> = None;
    while w > max_width as usize && w >= 4 && h >= 4 {
        let src = owned.as_deref().unwrap_or(rgba);
        let (nw, nh) = (w / 2, h / 2);
        let mut dst = vec![0u8; nw * nh * 4];
        for y in 0..nh {
            for x in 0..nw {
                for c in 0..4 {
                    let at = |yy: usize, xx: usize| u32::from(src[(yy * w + xx) * 4 + c]);
                    let sum = at(2 * y, 2 * x)
                        + at(2 * y, 2 * x + 1)
                        + at(2 * y + 1, 2 * x)
                        + at(2 * y + 1, 2 * x + 1);
                    dst[(y * nw + x) * 4 + c] = (sum / 4) as u8;
                }
            }
        }
        owned = Some(dst);
        (w, h) = (nw, nh);
    }
    let src = owned.as_deref().unwrap_or(rgba);
    let (ew, eh) = (w & !1, h & !1);
    if ew == w {
        return I420Frame::from_rgba(ew as u32, eh as u32, &src[..ew * eh * 4]);
    }
    let mut cropped = Vec::with_capacity(ew * eh * 4);
    for row in 0..eh {
        cropped.extend_from_slice(&src[row * w * 4..(row * w + ew) * 4]);
    }
    I420Frame::from_rgba(ew as u32, eh as u32, &cropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgba(w: u32, h: u32, px: [u8; 4]) -> Vec<u8> {
        px.repeat((w * h) as usize)
    }

    #[test]
    fn screen_targets_parse_and_print() {
        for s in ["monitor", "monitor:7", "window:41943041"] {
            assert_eq!(s.parse::<ScreenTarget>().unwrap().to_string(), s);
        }
        assert!("window".parse::<ScreenTarget>().is_err());
        assert!("monitor:x".parse::<ScreenTarget>().is_err());
    }

    #[test]
    fn odd_sizes_are_cropped_to_even() {
        let f = rgba_to_i420(641, 361, &rgba(641, 361, [255, 255, 255, 255]), 4096);
        assert_eq!((f.width, f.height), (640, 360));
        assert_eq!(f.luma(639, 359), 235);
    }

    #[test]
    fn wide_screens_are_halved_until_they_fit() {
        let (w, h) = (2560u32, 1440u32);
        let mut px = rgba(w, h, [0, 0, 0, 255]);
        // Right half white: after two halvings the right half of the result is white.
        for y in 0..h {
            for x in w / 2..w {
                let i = ((y * w + x) * 4) as usize;
                px[i..i + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        let f = rgba_to_i420(w, h, &px, 1280);
        assert_eq!((f.width, f.height), (1280, 720));
        assert_eq!(f.luma(100, 100), 16);
        assert_eq!(f.luma(1000, 100), 235);
    }

    #[test]
    fn no_camera_is_a_clear_error() {
        // This machine (and CI) has no camera: the list is empty and opening says so.
        let list = cameras().expect("enumeration itself must work");
        match CameraCapture::open(None, 640, 480, 30) {
            Err(DeviceError::NoCamera) => assert!(list.is_empty()),
            Err(e) => panic!("unexpected error: {e}"),
            // A developer machine with a camera: the list names it.
            Ok(_) => assert!(!list.is_empty()),
        }
        assert_eq!(DeviceError::NoCamera.to_string(), "no camera found");
        match CameraCapture::open(Some("Nonexistent Cam"), 640, 480, 30) {
            Err(DeviceError::UnknownCamera { name, .. }) => assert_eq!(name, "Nonexistent Cam"),
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("opened a camera that is not there"),
        }
    }
}
