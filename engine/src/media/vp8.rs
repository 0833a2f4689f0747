//! A small safe wrapper over libvpx's VP8 encoder and decoder (Debian's libvpx through
//! `env-libvpx-sys`). Realtime settings per DESIGN.md §6: CBR, no lag, one thread,
//! `cpu-used` -6 (libwebrtc's desktop speed), target bitrate changeable while running, keyframes
//! on demand.
#![allow(unsafe_code)] // FFI: every unsafe block below states why it is sound.

use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_uint, c_ulong};
use std::ptr;

use vpx_sys as vpx;

use super::frame::I420Frame;

#[derive(Debug, thiserror::Error)]
pub enum VpxError {
    #[error("libvpx {what} failed: {code:?}")]
    Call {
        what: &'static str,
        code: vpx::vpx_codec_err_t,
    },
    #[error("frame is {got_w}x{got_h}, the encoder was made for {want_w}x{want_h}")]
    Size {
        got_w: u32,
        got_h: u32,
        want_w: u32,
        want_h: u32,
    },
}

fn check(what: &'static str, code: vpx::vpx_codec_err_t) -> Result<(), VpxError> {
    if code == vpx::vpx_codec_err_t::VPX_CODEC_OK {
        Ok(())
    } else {
        Err(VpxError::Call { what, code })
    }
}

/// One encoded frame.
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    pub data: Vec<u8>,
    pub keyframe: bool,
}

/// Encoder settings.
#[derive(Clone, Copy, Debug)]
pub struct EncoderConfig {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

pub struct Vp8Encoder {
    ctx: vpx::vpx_codec_ctx_t,
    cfg: vpx::vpx_codec_enc_cfg_t,
    width: u32,
    height: u32,
    pts: i64,
}

// SAFETY: the codec context is only touched through `&mut self`; libvpx contexts may move
// between threads as long as they are not used from two at once.
unsafe impl Send for Vp8Encoder {}

impl Vp8Encoder {
    pub fn new(c: EncoderConfig) -> Result<Self, VpxError> {
        let mut cfg = MaybeUninit::<vpx::vpx_codec_enc_cfg_t>::zeroed();
        // SAFETY: `cfg` is a valid out-pointer for the default configuration; the VP8
        // interface is a static owned by libvpx.
        check("config_default", unsafe {
            vpx::vpx_codec_enc_config_default(vpx::vpx_codec_vp8_cx(), cfg.as_mut_ptr(), 0)
        })?;
        // SAFETY: initialised by the successful call above.
        let mut cfg = unsafe { cfg.assume_init() };
        cfg.g_w = c.width;
        cfg.g_h = c.height;
        cfg.g_timebase.num = 1;
        cfg.g_timebase.den = c.fps as c_int;
        cfg.g_threads = 1;
        cfg.g_lag_in_frames = 0;
        cfg.g_error_resilient = vpx::VPX_ERROR_RESILIENT_DEFAULT;
        cfg.rc_end_usage = vpx::vpx_rc_mode::VPX_CBR;
        cfg.rc_target_bitrate = c.bitrate_kbps;
        cfg.rc_min_quantizer = 4;
        cfg.rc_max_quantizer = 63;
        cfg.rc_undershoot_pct = 95;
        cfg.rc_overshoot_pct = 5;
        cfg.rc_buf_sz = 1000;
        cfg.rc_buf_initial_sz = 500;
        cfg.rc_buf_optimal_sz = 600;
        cfg.rc_dropframe_thresh = 25;
        cfg.kf_mode = vpx::vpx_kf_mode::VPX_KF_AUTO;
        cfg.kf_max_dist = c.fps * 3;
        let mut ctx = MaybeUninit::<vpx::vpx_codec_ctx_t>::zeroed();
        // SAFETY: valid pointers to a context to initialise and a complete configuration.
        check("enc_init", unsafe {
            vpx::vpx_codec_enc_init_ver(
                ctx.as_mut_ptr(),
                vpx::vpx_codec_vp8_cx(),
                &cfg,
                0,
                vpx::VPX_ENCODER_ABI_VERSION as c_int,
            )
        })?;
        // SAFETY: initialised by the successful call above.
        let mut ctx = unsafe { ctx.assume_init() };
        // Realtime speed, and keyframes of at most 3× an average frame (as WebRTC does): on a
        // capped link a full-size keyframe after every loss would starve the picture.
        for (id, value) in [
            (vpx::vp8e_enc_control_id::VP8E_SET_CPUUSED, -6),
            (
                vpx::vp8e_enc_control_id::VP8E_SET_MAX_INTRA_BITRATE_PCT,
                300,
            ),
        ] {
            // SAFETY: both controls take one int argument.
            let _ = unsafe { vpx::vpx_codec_control_(&mut ctx, id as c_int, value as c_int) };
        }
        Ok(Self {
            ctx,
            cfg,
            width: c.width,
            height: c.height,
            pts: 0,
        })
    }

    pub fn bitrate_kbps(&self) -> u32 {
        self.cfg.rc_target_bitrate
    }

    /// The frame size this encoder takes.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Changes the target bitrate from the next frame on.
    pub fn set_bitrate_kbps(&mut self, kbps: u32) -> Result<(), VpxError> {
        self.cfg.rc_target_bitrate = kbps.max(30);
        // SAFETY: live context, complete configuration.
        check("config_set", unsafe {
            vpx::vpx_codec_enc_config_set(&mut self.ctx, &self.cfg)
        })
    }

    /// Encodes one frame (a keyframe when `force_keyframe`). A frame the rate control drops
    /// yields nothing.
    pub fn encode(
        &mut self,
        frame: &I420Frame,
        force_keyframe: bool,
    ) -> Result<Vec<EncodedFrame>, VpxError> {
        if frame.width != self.width || frame.height != self.height {
            return Err(VpxError::Size {
                got_w: frame.width,
                got_h: frame.height,
                want_w: self.width,
                want_h: self.height,
            });
        }
        let mut img = MaybeUninit::<vpx::vpx_image_t>::zeroed();
        // SAFETY: wraps (does not copy or free) `frame.data`, which holds a tightly packed
        // I420 image of exactly this size and outlives the encode call below.
        let wrapped = unsafe {
            vpx::vpx_img_wrap(
                img.as_mut_ptr(),
                vpx::vpx_img_fmt::VPX_IMG_FMT_I420,
                frame.width as c_uint,
                frame.height as c_uint,
                1,
                frame.data.as_ptr() as *mut u8,
            )
        };
        if wrapped.is_null() {
            return Err(VpxError::Call {
                what: "img_wrap",
                code: vpx::vpx_codec_err_t::VPX_CODEC_INVALID_PARAM,
            });
        }
        let flags = if force_keyframe {
            vpx::VPX_EFLAG_FORCE_KF as vpx::vpx_enc_frame_flags_t
        } else {
            0
        };
        // SAFETY: live context; `wrapped` points at `img`, valid for this call.
        check("encode", unsafe {
            vpx::vpx_codec_encode(
                &mut self.ctx,
                wrapped,
                self.pts,
                1,
                flags,
                vpx::VPX_DL_REALTIME as c_ulong,
            )
        })?;
        self.pts += 1;
        let mut out = Vec::new();
        let mut iter: vpx::vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: live context and iterator owned by this loop; the packet stays valid
            // until the next call on the context, and is copied out before that.
            let pkt = unsafe { vpx::vpx_codec_get_cx_data(&mut self.ctx, &mut iter) };
            if pkt.is_null() {
                break;
            }
            // SAFETY: non-null packet from libvpx; `frame` is the active union member for
            // VPX_CODEC_CX_FRAME_PKT.
            unsafe {
                if (*pkt).kind == vpx::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    let f = (*pkt).data.frame;
                    let data =
                        std::slice::from_raw_parts(f.buf as *const u8, f.sz as usize).to_vec();
                    out.push(EncodedFrame {
                        data,
                        keyframe: f.flags & vpx::VPX_FRAME_IS_KEY != 0,
                    });
                }
            }
        }
        Ok(out)
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` and is destroyed once.
        unsafe {
            vpx::vpx_codec_destroy(&mut self.ctx);
        }
    }
}

pub struct Vp8Decoder {
    ctx: vpx::vpx_codec_ctx_t,
}

// SAFETY: as for the encoder: used only through `&mut self`.
unsafe impl Send for Vp8Decoder {}

impl Vp8Decoder {
    pub fn new() -> Result<Self, VpxError> {
        let cfg = vpx::vpx_codec_dec_cfg_t {
            threads: 1,
            w: 0,
            h: 0,
        };
        let mut ctx = MaybeUninit::<vpx::vpx_codec_ctx_t>::zeroed();
        // SAFETY: valid out-pointer and configuration.
        check("dec_init", unsafe {
            vpx::vpx_codec_dec_init_ver(
                ctx.as_mut_ptr(),
                vpx::vpx_codec_vp8_dx(),
                &cfg,
                0,
                vpx::VPX_DECODER_ABI_VERSION as c_int,
            )
        })?;
        Ok(Self {
            // SAFETY: initialised by the successful call above.
            ctx: unsafe { ctx.assume_init() },
        })
    }

    /// Decodes one compressed frame into I420 frames (normally one).
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<I420Frame>, VpxError> {
        // SAFETY: live context; `data` is valid for its length during the call.
        check("decode", unsafe {
            vpx::vpx_codec_decode(
                &mut self.ctx,
                data.as_ptr(),
                data.len() as c_uint,
                ptr::null_mut(),
                0,
            )
        })?;
        let mut out = Vec::new();
        let mut iter: vpx::vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: live context; the image stays valid until the next decode call and is
            // copied out before that.
            let img = unsafe { vpx::vpx_codec_get_frame(&mut self.ctx, &mut iter) };
            if img.is_null() {
                break;
            }
            // SAFETY: non-null I420 image from libvpx with valid planes and strides.
            out.push(unsafe { copy_image(&*img) });
        }
        Ok(out)
    }
}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe {
            vpx::vpx_codec_destroy(&mut self.ctx);
        }
    }
}

/// Copies a libvpx image (strided planes) into a packed frame.
///
/// # Safety
/// `img` must be a valid 8-bit I420 image whose planes cover `d_w`×`d_h` at their strides.
unsafe fn copy_image(img: &vpx::vpx_image_t) -> I420Frame {
    let (w, h) = (img.d_w as usize, img.d_h as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut data = Vec::with_capacity(w * h + 2 * cw * ch);
    for (plane, pw, ph) in [(0usize, w, h), (1, cw, ch), (2, cw, ch)] {
        let stride = img.stride[plane] as usize;
        let base = img.planes[plane];
        for row in 0..ph {
            // SAFETY: guaranteed by the caller: row `row` of this plane has `pw` bytes.
            let line = unsafe { std::slice::from_raw_parts(base.add(row * stride), pw) };
            data.extend_from_slice(line);
        }
    }
    I420Frame {
        width: w as u32,
        height: h as u32,
        data,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::media::synthetic::{read_stamp, SyntheticVideo};

    #[test]
    fn frames_survive_encode_and_decode_with_their_stamps() {
        let mut src = SyntheticVideo::new(320, 240);
        let mut enc = Vp8Encoder::new(EncoderConfig {
            width: 320,
            height: 240,
            fps: 30,
            bitrate_kbps: 500,
        })
        .unwrap();
        let mut dec = Vp8Decoder::new().unwrap();
        let mut decoded = Vec::new();
        for i in 0..30u32 {
            let frame = src.next_frame(1_000 + u64::from(i) * 33);
            for e in enc.encode(&frame, i == 0).unwrap() {
                if i == 0 {
                    assert!(e.keyframe, "first frame is a keyframe");
                }
                decoded.extend(dec.decode(&e.data).unwrap());
            }
        }
        assert!(decoded.len() >= 25, "decoded {} of 30", decoded.len());
        let stamps: Vec<_> = decoded.iter().map(|f| read_stamp(f).unwrap()).collect();
        assert_eq!(stamps[0].frame, 0);
        assert_eq!(stamps[0].capture_ms, 1_000);
        assert!(stamps.windows(2).all(|w| w[1].frame > w[0].frame));
        assert_eq!((decoded[0].width, decoded[0].height), (320, 240));
        // A keyframe on demand.
        let f = src.next_frame(5_000);
        let out = enc.encode(&f, true).unwrap();
        assert!(out.iter().any(|e| e.keyframe));
        // The bitrate can change while running.
        enc.set_bitrate_kbps(150).unwrap();
        assert_eq!(enc.bitrate_kbps(), 150);
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        let mut dec = Vp8Decoder::new().unwrap();
        assert!(dec.decode(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3]).is_err());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod rate_tests {
    use super::*;
    use crate::media::synthetic::SyntheticVideo;

    /// kbit/s the encoder produces over `frames` frames at 30 fps.
    fn produced(enc: &mut Vp8Encoder, src: &mut SyntheticVideo, frames: u32) -> f64 {
        let mut bytes = 0usize;
        for i in 0..frames {
            for e in enc.encode(&src.next_frame(u64::from(i)), false).unwrap() {
                bytes += e.data.len();
            }
        }
        bytes as f64 * 8.0 / 1000.0 / (f64::from(frames) / 30.0)
    }

    #[test]
    fn output_follows_the_target_bitrate() {
        let mut src = SyntheticVideo::new(320, 240);
        let mut enc = Vp8Encoder::new(EncoderConfig {
            width: 320,
            height: 240,
            fps: 30,
            bitrate_kbps: 800,
        })
        .unwrap();
        let high = produced(&mut enc, &mut src, 90);
        enc.set_bitrate_kbps(150).unwrap();
        produced(&mut enc, &mut src, 30);
        let low = produced(&mut enc, &mut src, 90);
        eprintln!("vp8 output: {high:.0} kbit/s at target 800, {low:.0} at target 150");
        assert!(low < 200.0, "{low:.0} kbit/s at a 150 target");
        // A keyframe on demand stays within a few average frames (150 kbit/s / 30 fps ≈ 625 B).
        let key = enc.encode(&src.next_frame(0), true).unwrap();
        let size = key.iter().map(|e| e.data.len()).sum::<usize>();
        eprintln!("vp8 keyframe at 150 kbit/s: {size} bytes");
        assert!(size < 8 * 625, "keyframe of {size} bytes");
    }
}
