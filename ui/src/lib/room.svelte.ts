// The meeting room's state in the UI: the latest RoomView from Rust, the chat, levels,
// reactions and notices, kept from the typed events (see src-tauri/src/meeting.rs).

import { commands, events, type ChatEvent, type RoomView } from "../bindings";

export interface ChatItem {
  key: string;
  id: string;
  /** The server's order (0 while pending). */
  seq: number;
  sender: string;
  /** Sent by a guest from the invite link: their name is their own word. */
  guest: boolean;
  text: string;
  at_ms: number;
  mine: boolean;
  pending: boolean;
}

export interface Reaction {
  id: number;
  name: string;
  emoji: string;
}

export interface Notice {
  id: number;
  level: string;
  text: string;
  /** A button beside the text: "device_settings" opens the audio and video settings. */
  action: string | null;
}

const idle: RoomView = {
  code: "", title: "", status: "idle", ended: null, ended_message: null, me: null, my_name: "",
  my_role: "participant", mic: false, camera: false, screen: false, hand: false, has_mic: false,
  has_camera: false, locked: false, participants: [], waiting: [], share_name: null,
};

class RoomStore {
  room: RoomView = $state(idle);
  chat: ChatItem[] = $state([]);
  unread = $state(0);
  chatOpen = $state(false);
  levels: Record<string, number> = $state({});
  mic = $state(-100);
  activeSpeaker: string | null = $state(null);
  reactions: Reaction[] = $state([]);
  notices: Notice[] = $state([]);
  /** The desktop app keeps what was read per meeting (set in start; the browser keeps nothing). */
  private markRead: ((seq: number) => void) | null = null;
  private readUpTo = 0;
  /** A notice's button asked for the audio and video settings. */
  settingsWanted = $state(false);
  private next = 1;
  private started = false;

  start() {
    if (this.started) return;
    this.started = true;
    this.markRead = (seq) => void commands.markChatRead(seq);
    void events.roomEvent.listen((e) => {
      const r = e.payload;
      if (r.code !== this.room.code && r.status === "joining") {
        this.chat = [];
        this.unread = 0;
        this.readUpTo = 0;
      }
      this.room = r;
    });
    void events.chatEvent.listen((e) => this.addChat(e.payload));
    void events.levelsEvent.listen((e) => {
      this.levels = Object.fromEntries(e.payload.peers);
      this.mic = e.payload.mic;
      this.activeSpeaker = e.payload.active_speaker;
    });
    void events.reactionEvent.listen((e) => {
      const r = { id: this.next++, name: e.payload.name, emoji: e.payload.emoji };
      this.reactions = [...this.reactions, r];
      setTimeout(() => (this.reactions = this.reactions.filter((x) => x.id !== r.id)), 4000);
    });
    void events.noticeEvent.listen((e) => this.notify(e.payload.level, e.payload.text, e.payload.action));
    void commands.room().then((r) => {
      if (r.status === "ok") this.room = r.data;
    });
  }

  notify(level: string, text: string, action: string | null = null) {
    // Said once: the same words already showing are not stacked again.
    if (this.notices.some((x) => x.text === text)) return;
    const n = { id: this.next++, level, text, action };
    this.notices = [...this.notices, n];
    // A notice with a button stays long enough to reach it.
    setTimeout(() => this.dismiss(n.id), action ? 12000 : 6000);
  }

  dismiss(id: number) {
    this.notices = this.notices.filter((x) => x.id !== id);
  }

  private addChat(e: ChatEvent) {
    const m = e.message;
    const item: ChatItem = {
      key: e.client_msg_id ?? m.id,
      id: m.id,
      seq: m.seq,
      sender: m.sender,
      guest: m.guest,
      text: m.text,
      at_ms: m.at_ms,
      mine: e.mine,
      pending: e.pending,
    };
    const i = this.chat.findIndex((c) => c.key === item.key || (!e.pending && c.id === m.id));
    if (i >= 0) {
      this.chat[i] = item;
      return;
    }
    this.chat = [...this.chat, item].sort((a, b) => a.at_ms - b.at_ms);
    if (this.chatOpen) this.read(m.seq);
    else if (!e.mine && !e.read) this.unread++;
  }

  openChat(open: boolean) {
    this.chatOpen = open;
    if (open) {
      this.unread = 0;
      this.read(Math.max(0, ...this.chat.map((c) => c.seq)));
    }
  }

  /** Everything up to `seq` has been seen (the chat panel is open). */
  private read(seq: number) {
    if (seq > this.readUpTo) {
      this.readUpTo = seq;
      this.markRead?.(seq);
    }
  }
}

export const store = new RoomStore();
