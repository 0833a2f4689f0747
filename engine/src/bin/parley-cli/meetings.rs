//! `meetings …` and `history`.

use parley_engine::credentials::Store;
use parley_engine::rest::Api;
use parley_shared::api::{CreateGuestLinkRequest, CreateMeetingRequest, Meeting, Role};

use crate::auth::{parse_code, Auth};
use crate::cli::MeetingsCmd;
use crate::exit::Res;
use crate::out_json;

pub async fn meetings(api: &Api, store: &Store, json: bool, cmd: MeetingsCmd) -> Res<()> {
    let auth = Auth::load(api, store)?;
    match cmd {
        MeetingsCmd::Create {
            title,
            passcode,
            waiting_room,
            allow_guests,
        } => {
            let req = CreateMeetingRequest {
                title,
                passcode,
                waiting_room,
                allow_guests,
            };
            let m = auth
                .call(async |t| api.create_meeting(&t, &req).await)
                .await?;
            if json {
                out_json(&m);
            } else {
                println!("{}", m.code);
            }
        }
        MeetingsCmd::List => {
            let mut cursor: Option<String> = None;
            loop {
                let c = cursor.clone();
                let page = auth
                    .call(async |t| api.meetings(&t, c.as_deref()).await)
                    .await?;
                for m in &page.meetings {
                    if json {
                        out_json(m);
                    } else {
                        println!(
                            "{}  {:<9} {:<11} {}",
                            m.code,
                            state(m),
                            role(m.my_role),
                            m.title
                        );
                    }
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        MeetingsCmd::Show { code } => {
            let code = parse_code(&code)?;
            let m = auth.call(async |t| api.meeting(&t, &code).await).await?;
            if json {
                out_json(&m);
            } else {
                println!("code:         {}", m.code);
                println!("title:        {}", m.title);
                println!("host:         {}", m.host.username);
                println!("state:        {}", state(&m));
                println!(
                    "passcode:     {}",
                    if m.has_passcode { "yes" } else { "no" }
                );
                println!(
                    "waiting room: {}",
                    if m.waiting_room { "yes" } else { "no" }
                );
                println!("locked:       {}", if m.locked { "yes" } else { "no" });
                println!("your role:    {}", role(m.my_role));
            }
        }
        MeetingsCmd::Guests { code, state } => {
            let code = parse_code(&code)?;
            let allowed = state == "on";
            let m = auth
                .call(async |t| api.set_guest_access(&t, &code, allowed).await)
                .await?;
            if json {
                out_json(&m);
            } else {
                println!(
                    "guests {} for {code}",
                    if m.allow_guests {
                        "allowed"
                    } else {
                        "not allowed"
                    }
                );
            }
        }
        MeetingsCmd::Link {
            code,
            label,
            single_use,
            hours,
        } => {
            let code = parse_code(&code)?;
            let req = CreateGuestLinkRequest {
                label,
                expires_in_hours: hours,
                single_use,
            };
            let made = auth
                .call(async |t| api.create_guest_link(&t, &code, &req).await)
                .await?;
            if json {
                out_json(&made);
            } else {
                // The secret goes in the fragment: browsers never send it to a server.
                let base = api.base().trim_end_matches('/');
                println!("{base}/j/{code}#g={}", made.token);
            }
        }
        MeetingsCmd::Links { code } => {
            let code = parse_code(&code)?;
            let list = auth
                .call(async |t| api.guest_links(&t, &code).await)
                .await?;
            for l in &list.links {
                if json {
                    out_json(l);
                } else {
                    let state = if l.revoked_at_ms.is_some() {
                        "revoked"
                    } else if l.single_use && l.uses > 0 {
                        "used"
                    } else {
                        "open"
                    };
                    let kind = if l.single_use {
                        "single-use"
                    } else {
                        "reusable"
                    };
                    println!(
                        "{}  {state:<7} {kind:<10} entered {:>3}  {}",
                        l.id, l.uses, l.label
                    );
                }
            }
        }
        MeetingsCmd::End { code } => {
            let code = parse_code(&code)?;
            auth.call(async |t| api.end_meeting(&t, &code).await)
                .await?;
            if !json {
                println!("ended {code}");
            }
        }
    }
    Ok(())
}

fn state(m: &Meeting) -> &'static str {
    match (m.started_at_ms, m.ended_at_ms) {
        (_, Some(_)) => "ended",
        (Some(_), None) => "started",
        (None, None) => "scheduled",
    }
}

pub fn role(r: Role) -> &'static str {
    match r {
        Role::Host => "host",
        Role::Cohost => "co-host",
        _ => "participant",
    }
}
