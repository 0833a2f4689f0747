//! What a line typed in a meeting means: chat, or a slash command.

use parley_engine::media::capture::ScreenTarget;
use parley_engine::room::HostAction;

pub const HELP: &str = "type to chat; commands: /who /hand /lower /react EMOJI /camera on|off /mic on|off \
/camera|/mic|/speaker DEVICE /share [monitor|monitor:ID|window:ID] /unshare /mute NAME /remove NAME \
/promote NAME /admit NAME /deny NAME /lock /unlock /noguests /end /leave (start a chat line with // to send a literal /)";

/// A device switch: on, off, or another device by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Switch {
    On,
    Off,
    Device(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// An empty line: nothing happens.
    Nothing,
    Chat(String),
    Leave,
    Help,
    Who,
    Hand(bool),
    React(String),
    Camera(Switch),
    Mic(Switch),
    /// Another speaker (None: the system default).
    Speaker(Option<String>),
    Share(ScreenTarget),
    Unshare,
    Lock,
    Unlock,
    /// Turn guest entry off, sending away the guests still waiting.
    NoGuests,
    End,
    /// A host action on the participant of this name.
    Host(HostAction, String),
    /// Not understood: what to tell the user.
    Invalid(String),
}

impl Line {
    /// Whether it needs a call with media (not a chat-only join).
    pub fn needs_media(&self) -> bool {
        matches!(
            self,
            Line::Camera(_) | Line::Mic(_) | Line::Speaker(_) | Line::Share(_) | Line::Unshare
        )
    }
}

pub fn parse(line: &str) -> Line {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Line::Nothing;
    }
    if let Some(literal) = line.strip_prefix("//") {
        return Line::Chat(format!("/{literal}"));
    }
    let Some(cmd) = line.strip_prefix('/') else {
        return Line::Chat(line.to_string());
    };
    let (verb, arg) = cmd.split_once(' ').unwrap_or((cmd, ""));
    let arg = arg.trim();
    let switch = || match arg {
        "" | "on" => Switch::On,
        "off" => Switch::Off,
        name => Switch::Device(name.to_string()),
    };
    match verb {
        "leave" | "quit" => Line::Leave,
        "help" => Line::Help,
        "who" => Line::Who,
        "hand" => Line::Hand(true),
        "lower" => Line::Hand(false),
        "react" if arg.is_empty() => Line::Invalid("/react needs an emoji: /react 👍".into()),
        "react" => Line::React(arg.to_string()),
        "camera" => Line::Camera(switch()),
        "mic" => Line::Mic(switch()),
        "speaker" => Line::Speaker((!arg.is_empty()).then(|| arg.to_string())),
        "share" if arg.is_empty() || arg == "on" => Line::Share(ScreenTarget::Monitor(None)),
        "share" => match arg.parse() {
            Ok(target) => Line::Share(target),
            Err(e) => Line::Invalid(format!("/share: {e}")),
        },
        "unshare" => Line::Unshare,
        "lock" => Line::Lock,
        "unlock" => Line::Unlock,
        "noguests" => Line::NoGuests,
        "end" => Line::End,
        verb => match HostAction::parse(verb) {
            Some(_) if arg.is_empty() => Line::Invalid(format!("/{verb} whom? /{verb} NAME")),
            Some(action) => Line::Host(action, arg.to_string()),
            None => Line::Invalid(format!("unknown command /{verb}; {HELP}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_mean_what_the_help_says() {
        let table: &[(&str, Line)] = &[
            ("", Line::Nothing),
            ("   \r", Line::Nothing),
            ("hello there", Line::Chat("hello there".into())),
            ("  spaced  ", Line::Chat("  spaced  ".into())),
            ("//etc/motd", Line::Chat("/etc/motd".into())),
            ("/leave", Line::Leave),
            ("/quit", Line::Leave),
            ("/help", Line::Help),
            ("/who", Line::Who),
            ("/hand", Line::Hand(true)),
            ("/lower", Line::Hand(false)),
            ("/react 🎉", Line::React("🎉".into())),
            ("/camera", Line::Camera(Switch::On)),
            ("/camera off", Line::Camera(Switch::Off)),
            (
                "/camera synthetic",
                Line::Camera(Switch::Device("synthetic".into())),
            ),
            ("/mic on", Line::Mic(Switch::On)),
            (
                "/mic USB Headset",
                Line::Mic(Switch::Device("USB Headset".into())),
            ),
            ("/speaker", Line::Speaker(None)),
            (
                "/speaker Monitor 2",
                Line::Speaker(Some("Monitor 2".into())),
            ),
            ("/share", Line::Share(ScreenTarget::Monitor(None))),
            (
                "/share monitor:2",
                Line::Share(ScreenTarget::Monitor(Some(2))),
            ),
            ("/share window:77", Line::Share(ScreenTarget::Window(77))),
            ("/unshare", Line::Unshare),
            ("/lock", Line::Lock),
            ("/unlock", Line::Unlock),
            ("/noguests", Line::NoGuests),
            ("/end", Line::End),
            ("/admit Wes", Line::Host(HostAction::Admit, "Wes".into())),
            ("/deny  Wes ", Line::Host(HostAction::Deny, "Wes".into())),
            ("/mute Bob", Line::Host(HostAction::Mute, "Bob".into())),
            ("/remove Bob", Line::Host(HostAction::Remove, "Bob".into())),
            (
                "/promote Ann Lee",
                Line::Host(HostAction::Promote, "Ann Lee".into()),
            ),
        ];
        for (input, want) in table {
            assert_eq!(&parse(input), want, "{input:?}");
        }
        for bad in ["/react", "/mute", "/share screen:1", "/teleport", "/"] {
            assert!(matches!(parse(bad), Line::Invalid(_)), "{bad:?}");
        }
        assert!(parse("/camera off").needs_media());
        assert!(!parse("/hand").needs_media());
    }
}
