//! Media: raw frames, fitting the camera to the CPU, the synthetic camera, the VP8 codec and
//! its RTP framing, audio (tones, Opus, analysis, microphones converted to 48 kHz mono), reordering, jitter and rate control.

pub mod adapt;
pub mod aec;
pub mod audio;
pub mod capture;
pub mod devices;
pub mod frame;
pub mod jitter;
pub mod level;
pub mod rate;
pub mod reorder;
pub mod resample;
pub mod synthetic;
pub mod vp8;
pub mod vp8_rtp;
