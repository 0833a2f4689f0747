//! The command line: what parley-cli accepts.

use clap::{Parser, Subcommand};

use crate::media::parse_video_size;

#[derive(Parser)]
#[command(
    name = "parley-cli",
    version,
    about = "Parley from the command line: accounts, meetings, chat.",
    after_help = "Exit codes: 0 ok, 1 local failure, 2 usage, 3 not signed in, 4 refused by the server, \
                  5 server unreachable / connection lost, 6 meeting ended, removed or not admitted."
)]
pub struct Cli {
    /// The Parley server.
    #[arg(
        long,
        env = "PARLEY_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// Print JSON (one object per line) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create an account (the password is prompted for, or read from the first line of stdin).
    Register {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
    },
    /// Confirm your e-mail address with the 6-digit code you were sent.
    Verify {
        code: String,
        /// The address (default: the signed-in account's).
        #[arg(long)]
        email: Option<String>,
    },
    /// Sign in with username or e-mail (password prompted, or the first line of stdin).
    Login { login: String },
    /// Sign out and forget the stored tokens.
    Logout,
    /// Show the signed-in account.
    Whoami,
    /// Create, list, show and end meetings.
    #[command(subcommand)]
    Meetings(MeetingsCmd),
    /// Join a meeting: prints what happens, sends each line of stdin as chat
    /// (`/help` lists the commands). Ends at end of input, `/leave` or Ctrl-C.
    Join {
        code: String,
        /// Name shown to the others (default: your username).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        passcode: Option<String>,
        /// Do not read stdin; stay until the meeting ends or Ctrl-C.
        #[arg(long)]
        listen: bool,
        /// Send video: `default` (the first camera), a camera id or name from `devices`, or
        /// `synthetic` (a moving pattern stamped with frame number and time).
        #[arg(long, value_name = "SOURCE")]
        camera: Option<String>,
        /// Share a screen from the start: `monitor` (the primary one), `monitor:ID` or
        /// `window:ID` from `devices`. `/share` and `/unshare` toggle it in the meeting.
        #[arg(long, value_name = "TARGET")]
        screen: Option<String>,
        /// Send audio: `default` (the system microphone), a device name from `devices`,
        /// `tone:HZ` (a sine tone) or `none`.
        #[arg(long, value_name = "SOURCE")]
        mic: Option<String>,
        /// Play the others: `default` or a device name from `devices`.
        #[arg(long, value_name = "DEVICE")]
        speaker: Option<String>,
        /// Turn off echo cancellation, noise suppression and gain control on the microphone.
        #[arg(long)]
        raw_mic: bool,
        /// Suppress noise with RNNoise (nnnoiseless) instead of WebRTC's suppressor: stronger
        /// on keyboards and other non-steady noise, a little more CPU.
        #[arg(long)]
        rnnoise: bool,
        /// Write what arrives here: one WAV per peer, `frames.csv` (peer, kind, frame,
        /// capture and arrival time), and a PGM snapshot of every 30th frame.
        #[arg(long, value_name = "DIR")]
        record_dir: Option<std::path::PathBuf>,
        /// Gather only loopback ICE candidates (tests and single-machine demos).
        #[arg(long)]
        loopback_only: bool,
        /// Camera picture size and rate, `WIDTHxHEIGHT@FPS` (default 640x480@30).
        #[arg(long, value_name = "WxH@FPS", value_parser = parse_video_size)]
        video: Option<(u32, u32, u32)>,
        /// Most bits per second for the camera's video, kbit/s (default 800).
        #[arg(long, value_name = "KBPS", value_parser = clap::value_parser!(u32).range(50..=20_000))]
        video_kbps: Option<u32>,
        /// Always send the camera's full size, even when this computer cannot keep up with
        /// encoding it (by default the picture steps down then, and back up when it can).
        #[arg(long)]
        no_cpu_adaptation: bool,
    },
    /// List cameras, microphones, speakers and shareable screens.
    Devices,
    /// Print a meeting's chat history.
    History {
        code: String,
        #[arg(long, default_value_t = 0)]
        after_seq: i64,
    },
}

#[derive(Subcommand)]
pub enum MeetingsCmd {
    /// Create a meeting; prints its code.
    Create {
        title: String,
        #[arg(long)]
        passcode: Option<String>,
        #[arg(long)]
        waiting_room: bool,
        /// Let people without an account join through the invite link.
        #[arg(long)]
        allow_guests: bool,
    },
    /// Meetings you host or joined, newest first.
    List,
    /// One meeting's details.
    Show { code: String },
    /// End a meeting for everyone (host only).
    End { code: String },
    /// Let guests in through the invite link (`on`), or stop it (`off`: the guests waiting
    /// are sent away).
    Guests {
        code: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Make a personal guest link for one person; prints the link (its secret is shown once).
    Link {
        code: String,
        /// Who it is for, as you will recognise it in `meetings links`.
        label: String,
        /// The link lets one person in, once.
        #[arg(long)]
        single_use: bool,
        /// Hours until it stops working (1-168; default: until revoked or the meeting ends).
        #[arg(long)]
        hours: Option<u32>,
    },
    /// A meeting's personal guest links and how many people entered with each.
    Links { code: String },
}
