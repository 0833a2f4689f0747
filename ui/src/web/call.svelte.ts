// The browser's side of a Parley call: the room's WebSocket (the token rides in the
// subprotocol list, since a page cannot set an Authorization header), one RTCPeerConnection
// per participant with the engine's three lines in its order (audio, camera, screen: the
// newcomer offers, DESIGN.md §3), the page's camera, microphone and screen. It keeps the
// meeting screen's store (lib/room.svelte.ts) as the desktop app's Rust side does, so the
// same Meeting.svelte draws both.

import type { HostActionArg, ParticipantView, RoomView, WaitingView } from "../bindings";
import type { Backend } from "../lib/backend";
import { store } from "../lib/room.svelte";
import { KIND_CAMERA, KIND_SCREEN, KIND_SELF, trackKey } from "../lib/video";
import { candidateFromWire, candidateToWire, dbfs, KINDS, lineKinds, loudest, mergeChat, reconnectDelay, type Kind } from "./logic";
import { streams } from "./streams.svelte";

/** An error a screen shows, with the server's stable code. */
export class CallError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

interface Participant {
  peer_id: string;
  user_id: string;
  display_name: string;
  role: "host" | "cohost" | "participant";
  media: { audio: boolean; video: boolean; screen: boolean };
  hand_raised: boolean;
  guest?: boolean;
}

interface Link {
  pc: RTCPeerConnection;
  /** Our transceiver per kind, once the line exists. */
  lines: Partial<Record<Kind, RTCRtpTransceiver>>;
  pendingIce: RTCIceCandidateInit[];
  audio?: HTMLAudioElement;
  level?: AnalyserNode;
  state: ParticipantView["link"];
}

export interface JoinOptions {
  server: string;
  code: string;
  title: string;
  name: string;
  token: string;
  passcode?: string | null;
  camera: boolean;
  mic: boolean;
  /** Devices chosen before joining (null: the browser's default). */
  cameraId?: string | null;
  micId?: string | null;
}

const ENDED: Record<string, string> = {
  left: "You left the meeting.",
  meeting_ended: "The meeting has ended.",
  removed: "A host removed you from the meeting.",
  denied: "The host did not let you in.",
};

export class BrowserCall implements Backend {
  readonly kind = "browser" as const;
  private ws: WebSocket | null = null;
  private people = new Map<string, Participant>();
  private waiting: WaitingView[] = [];
  private links = new Map<string, Link>();
  private me: string | null = null;
  private role: Participant["role"] = "participant";
  private locked = false;
  private status: RoomView["status"] = "joining";
  private ended: string | null = null;
  private endedMessage: string | null = null;
  private hand = false;
  private resume: string | null = null;
  private lastSeq = 0;
  private ice: RTCIceServer[] = [];
  private tracks: Partial<Record<Kind, MediaStreamTrack>> = {};
  private micOn = false;
  private attempt = 0;
  private closing = false;
  private pendingChat = new Map<string, string>();
  private audioCtx: AudioContext | null = null;
  private meter: AnalyserNode | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private token: string;

  constructor(private opts: JoinOptions) {
    this.token = opts.token;
  }

  /** Opens the devices asked for (a missing one is said, not fatal) and joins. */
  async start() {
    if (this.opts.mic) await this.openMic(this.opts.micId ?? null).catch((e) => this.deviceFailed("microphone", e));
    if (this.opts.camera) await this.openCamera(this.opts.cameraId ?? null).catch((e) => this.deviceFailed("camera", e));
    this.micOn = this.opts.mic && !!this.tracks.audio;
    if (this.tracks.audio) this.tracks.audio.enabled = this.micOn;
    this.publish();
    this.connect();
    this.timer = setInterval(() => this.levels(), 100);
    // Closing the tab or going elsewhere is leaving, not a dropped connection to resume.
    addEventListener("pagehide", () => {
      if (this.status !== "ended") this.send({ type: "leave" });
    });
  }

  // ---- devices -------------------------------------------------------------------------

  private deviceFailed(what: string, e: unknown) {
    store.notify("warning", `No ${what}: ${e instanceof Error ? e.message : String(e)}`);
  }

  private async openMic(id: string | null) {
    const s = await navigator.mediaDevices.getUserMedia({
      audio: { deviceId: id ? { exact: id } : undefined, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    this.setTrack("audio", s.getAudioTracks()[0] ?? null);
    this.watchMic();
  }

  private async openCamera(id: string | null) {
    const s = await navigator.mediaDevices.getUserMedia({
      video: { deviceId: id ? { exact: id } : undefined, width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } },
    });
    this.setTrack("camera", s.getVideoTracks()[0] ?? null);
  }

  /** Puts `track` on every participant's line for `kind` (no renegotiation: the lines exist). */
  private setTrack(kind: Kind, track: MediaStreamTrack | null) {
    const old = this.tracks[kind];
    if (old && old !== track) old.stop();
    if (track) this.tracks[kind] = track;
    else delete this.tracks[kind];
    if (kind === "audio" && track) track.enabled = this.micOn;
    for (const l of this.links.values()) void l.lines[kind]?.sender.replaceTrack(track ?? null);
    if (kind === "camera") streams.set(trackKey("self", KIND_SELF), track ? new MediaStream([track]) : null);
  }

  private watchMic() {
    const t = this.tracks.audio;
    if (!t) return;
    const ctx = this.context();
    const src = ctx.createMediaStreamSource(new MediaStream([t]));
    this.meter = ctx.createAnalyser();
    this.meter.fftSize = 1024;
    src.connect(this.meter);
  }

  private context(): AudioContext {
    this.audioCtx ??= new AudioContext();
    void this.audioCtx.resume();
    return this.audioCtx;
  }

  /** dBFS of an analyser's latest block. */
  private static db(a: AnalyserNode): number {
    const buf = new Float32Array(a.fftSize);
    a.getFloatTimeDomainData(buf);
    return dbfs(buf);
  }

  private levels() {
    store.mic = this.micOn && this.meter ? BrowserCall.db(this.meter) : -100;
    const peers: Record<string, number> = {};
    for (const [id, l] of this.links) if (l.level) peers[id] = BrowserCall.db(l.level);
    store.levels = peers;
    const speaker = loudest(peers);
    if (speaker) store.activeSpeaker = speaker;
  }

  // ---- the room's socket -----------------------------------------------------------------

  private wsUrl() {
    return `${this.opts.server.replace(/^http/, "ws")}/api/ws`;
  }

  private connect() {
    const ws = new WebSocket(this.wsUrl(), ["parley.v1", `parley.auth.${this.token}`]);
    this.ws = ws;
    ws.onopen = () => {
      this.send({
        type: "join",
        code: this.opts.code,
        display_name: this.opts.name,
        passcode: this.opts.passcode ?? null,
        resume_token: this.resume,
        after_seq: this.lastSeq,
      });
    };
    ws.onmessage = (e) => {
      try {
        void this.onMessage(JSON.parse(String(e.data)));
      } catch {
        /* not JSON: ignore */
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closing || this.status === "ended") return;
      if (this.status === "joining" && this.attempt === 0 && !this.resume) {
        return this.finish("connection_lost", "Could not reach the meeting.");
      }
      // Lost: keep our place (the resume token) and try again, backing off.
      this.status = "reconnecting";
      this.publish();
      setTimeout(() => this.connect(), reconnectDelay(this.attempt++));
    };
  }

  private send(msg: object) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private async onMessage(m: Record<string, any>) {
    switch (m.type) {
      case "ice_servers": {
        // Renewed TURN credentials (a guest's last an hour): new connections and ICE
        // restarts of the ones we have use them.
        this.ice = (m.ice_servers ?? []).map((s: any) => ({ urls: s.urls, username: s.username, credential: s.credential }));
        for (const l of this.links.values()) {
          try {
            l.pc.setConfiguration({ ...l.pc.getConfiguration(), iceServers: this.ice });
          } catch {
            // A closing connection: nothing to renew.
          }
        }
        break;
      }
      case "welcome": {
        this.attempt = 0;
        this.me = m.peer_id;
        this.role = m.role;
        this.locked = m.locked;
        this.resume = m.resume_token;
        this.ice = (m.ice_servers ?? []).map((s: any) => ({ urls: s.urls, username: s.username, credential: s.credential }));
        this.status = "in";
        const now = new Set<string>();
        for (const p of m.participants as Participant[]) {
          if (p.peer_id === this.me) continue;
          now.add(p.peer_id);
          this.people.set(p.peer_id, p);
        }
        for (const id of [...this.people.keys()]) if (!now.has(id)) this.drop(id);
        this.publish();
        this.sendMedia();
        if (this.hand) this.send({ type: "hand", raised: true });
        // The newcomer offers to everyone already there (a resumed socket keeps its links).
        for (const id of now) if (!this.links.has(id)) await this.offer(id);
        break;
      }
      case "waiting":
        this.status = "waiting";
        this.publish();
        break;
      case "waiting_peer":
        this.waiting = [...this.waiting.filter((w) => w.peer_id !== m.peer_id), { peer_id: m.peer_id, name: m.display_name, guest: !!m.guest }];
        this.publish();
        break;
      case "waiting_done":
        this.waiting = this.waiting.filter((w) => w.peer_id !== m.peer_id);
        this.publish();
        break;
      case "peer_joined":
        if (m.participant.peer_id !== this.me) {
          this.people.set(m.participant.peer_id, m.participant);
          this.publish();
        }
        break;
      case "peer_left":
        this.drop(m.peer_id);
        this.publish();
        break;
      case "offer":
        await this.answer(m.from, m.sdp);
        break;
      case "answer": {
        const l = this.links.get(m.from);
        if (l && l.pc.signalingState === "have-local-offer") {
          await l.pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
          this.mapLines(l);
          await this.flushIce(l);
        }
        break;
      }
      case "ice": {
        const l = this.links.get(m.from);
        if (!l) break;
        const c = candidateFromWire(m.candidate);
        if (l.pc.remoteDescription) await l.pc.addIceCandidate(c).catch(() => {});
        else l.pendingIce.push(c);
        break;
      }
      case "chat":
        this.lastSeq = Math.max(this.lastSeq, m.message.seq);
        this.addChat(m.message, false, null);
        break;
      case "chat_ack": {
        this.lastSeq = Math.max(this.lastSeq, m.seq);
        const text = this.pendingChat.get(m.client_msg_id);
        this.pendingChat.delete(m.client_msg_id);
        if (text !== undefined) {
          this.addChat({ id: m.id, seq: m.seq, sender: "", sender_name: this.opts.name, text, at_ms: Date.now() }, false, m.client_msg_id, true);
        }
        break;
      }
      case "media_state": {
        const p = this.people.get(m.peer_id);
        if (p) p.media = m.media;
        this.publish();
        break;
      }
      case "hand": {
        const p = this.people.get(m.peer_id);
        if (p) p.hand_raised = m.raised;
        if (m.peer_id === this.me) this.hand = m.raised;
        this.publish();
        break;
      }
      case "reaction": {
        const name = m.peer_id === this.me ? "You" : this.people.get(m.peer_id)?.display_name ?? "Someone";
        const r = { id: Date.now() + Math.random(), name, emoji: m.emoji };
        store.reactions = [...store.reactions, r];
        setTimeout(() => (store.reactions = store.reactions.filter((x) => x.id !== r.id)), 4000);
        break;
      }
      case "role_changed":
        if (m.peer_id === this.me) this.role = m.role;
        else {
          const p = this.people.get(m.peer_id);
          if (p) p.role = m.role;
        }
        this.publish();
        break;
      case "lock_changed":
        this.locked = m.locked;
        this.publish();
        break;
      case "muted_by_host":
        this.micOn = false;
        if (this.tracks.audio) this.tracks.audio.enabled = false;
        this.sendMedia();
        this.publish();
        store.notify("warning", "A host muted your microphone.");
        break;
      case "removed":
        this.finish("removed");
        break;
      case "denied":
        this.finish("denied");
        break;
      case "meeting_ended":
        this.finish("meeting_ended");
        break;
      case "server_shutdown":
        // The server restarts: the socket closes and we come back with our resume token.
        store.notify("info", "The server is restarting; reconnecting…");
        break;
      case "reauth_required":
        // A guest's token lives as long as its session: nothing to renew it with here.
        break;
      case "error":
        if (this.status === "joining" || this.status === "waiting") this.finish(m.code, m.message);
        else store.notify("error", m.message);
        break;
    }
  }

  private addChat(
    msg: { id: string; seq: number; sender: string; sender_name: string; guest?: boolean; text: string; at_ms: number },
    pending: boolean,
    clientId: string | null,
    mine = false,
  ) {
    // Chat history arrives as chat messages after welcome; ours are known by our user id.
    const own = mine || (this.me !== null && this.myUser() === msg.sender);
    const item = {
      key: clientId ?? msg.id,
      id: msg.id,
      seq: msg.seq,
      sender: msg.sender_name,
      guest: msg.guest === true,
      text: msg.text,
      at_ms: msg.at_ms,
      mine: own,
      pending,
    };
    const { list, added } = mergeChat(store.chat, item);
    store.chat = list;
    if (added && !store.chatOpen && !own) store.unread++;
  }

  private myUser(): string | null {
    return this.userId;
  }
  userId: string | null = null;

  private finish(code: string, message?: string) {
    this.status = "ended";
    this.ended = code;
    this.endedMessage = message ?? ENDED[code] ?? "The meeting is over for you.";
    this.closing = true;
    this.ws?.close();
    this.ws = null;
    for (const id of [...this.links.keys()]) this.dropLink(id);
    for (const t of Object.values(this.tracks)) t?.stop();
    this.tracks = {};
    streams.clear();
    if (this.timer) clearInterval(this.timer);
    void this.audioCtx?.close();
    this.audioCtx = null;
    this.publish();
  }

  // ---- peer connections ------------------------------------------------------------------

  private link(peer: string): Link {
    let l = this.links.get(peer);
    if (l) return l;
    const pc = new RTCPeerConnection({ iceServers: this.ice, bundlePolicy: "max-bundle" });
    const link: Link = { pc, lines: {}, pendingIce: [], state: "new" };
    l = link;
    this.links.set(peer, link);
    pc.onicecandidate = (e) => {
      if (!e.candidate) return;
      this.send({ type: "ice", to: peer, candidate: candidateToWire(e.candidate) });
    };
    pc.onconnectionstatechange = () => {
      link.state = pc.connectionState as ParticipantView["link"];
      this.publish();
    };
    pc.ontrack = (e) => this.onTrack(peer, link, e);
    return link;
  }

  /** Which of our kinds each transceiver carries: by line order and media kind, never by ids. */
  private mapLines(l: Link) {
    const t = l.pc.getTransceivers().filter((x) => x.mid !== null || x.currentDirection !== "stopped");
    lineKinds(t.map((x) => x.receiver.track.kind)).forEach((kind, i) => {
      if (kind) l.lines[kind] = t[i];
    });
  }

  private async offer(peer: string) {
    const l = this.link(peer);
    for (const kind of KINDS) {
      l.lines[kind] = l.pc.addTransceiver(kind === "audio" ? "audio" : "video", {
        direction: "sendrecv",
        streams: [],
      });
      await l.lines[kind]!.sender.replaceTrack(this.tracks[kind] ?? null);
    }
    const o = await l.pc.createOffer();
    await l.pc.setLocalDescription(o);
    this.send({ type: "offer", to: peer, sdp: l.pc.localDescription!.sdp });
  }

  private async answer(peer: string, sdp: string) {
    const l = this.link(peer);
    await l.pc.setRemoteDescription({ type: "offer", sdp });
    this.mapLines(l);
    for (const kind of KINDS) {
      const x = l.lines[kind];
      if (!x) continue;
      x.direction = "sendrecv";
      await x.sender.replaceTrack(this.tracks[kind] ?? null);
    }
    const a = await l.pc.createAnswer();
    await l.pc.setLocalDescription(a);
    this.send({ type: "answer", to: peer, sdp: l.pc.localDescription!.sdp });
    await this.flushIce(l);
  }

  private async flushIce(l: Link) {
    const q = l.pendingIce.splice(0);
    for (const c of q) await l.pc.addIceCandidate(c).catch(() => {});
  }

  private onTrack(peer: string, l: Link, e: RTCTrackEvent) {
    if (!Object.values(l.lines).includes(e.transceiver)) this.mapLines(l);
    const kind = (Object.entries(l.lines).find(([, x]) => x === e.transceiver)?.[0] ?? null) as Kind | null;
    const track = e.track;
    if (kind === "audio") {
      const stream = new MediaStream([track]);
      // Chromium feeds a remote stream to Web Audio only while a media element plays it.
      const el = l.audio ?? document.createElement("audio");
      el.autoplay = true;
      el.srcObject = stream;
      el.dataset.peer = peer;
      if (!el.isConnected) document.body.appendChild(el);
      void el.play().catch(() => {});
      l.audio = el;
      const ctx = this.context();
      l.level = ctx.createAnalyser();
      l.level.fftSize = 1024;
      ctx.createMediaStreamSource(stream).connect(l.level);
    } else if (kind === "camera" || kind === "screen") {
      streams.set(trackKey(peer, kind === "camera" ? KIND_CAMERA : KIND_SCREEN), new MediaStream([track]));
    }
  }

  private dropLink(peer: string) {
    const l = this.links.get(peer);
    if (!l) return;
    l.pc.close();
    l.audio?.remove();
    this.links.delete(peer);
    streams.set(trackKey(peer, KIND_CAMERA), null);
    streams.set(trackKey(peer, KIND_SCREEN), null);
  }

  private drop(peer: string) {
    this.people.delete(peer);
    this.dropLink(peer);
  }

  // ---- the room as the meeting screen sees it ---------------------------------------------

  private publish() {
    const participants: ParticipantView[] = [...this.people.values()].map((p) => ({
      peer_id: p.peer_id,
      user_id: p.user_id,
      name: p.display_name,
      role: p.role,
      mic: p.media.audio,
      camera: p.media.video,
      screen: p.media.screen,
      hand: p.hand_raised,
      link: this.links.get(p.peer_id)?.state ?? "new",
      send_kbps: null,
      guest: !!p.guest,
    }));
    store.room = {
      code: this.opts.code,
      title: this.opts.title,
      status: this.status,
      ended: this.ended,
      ended_message: this.endedMessage,
      me: this.me,
      my_name: this.opts.name,
      my_role: this.role,
      mic: this.micOn,
      camera: !!this.tracks.camera,
      screen: !!this.tracks.screen,
      hand: this.hand,
      has_mic: !!this.tracks.audio,
      has_camera: true,
      locked: this.locked,
      participants,
      waiting: this.waiting,
      share_name: this.tracks.screen ? this.tracks.screen.label || "your screen" : null,
    };
  }

  private sendMedia() {
    this.send({ type: "media_state", audio: this.micOn, video: !!this.tracks.camera, screen: !!this.tracks.screen });
  }

  // ---- Backend: what the meeting screen asks ---------------------------------------------

  async setMic(on: boolean) {
    if (on && !this.tracks.audio) await this.openMic(null);
    this.micOn = on;
    if (this.tracks.audio) this.tracks.audio.enabled = on;
    this.sendMedia();
    this.publish();
  }

  async setCamera(on: boolean) {
    if (on) await this.openCamera(this.opts.cameraId ?? null);
    else this.setTrack("camera", null);
    this.sendMedia();
    this.publish();
  }

  async raiseHand(up: boolean) {
    this.hand = up;
    this.send({ type: "hand", raised: up });
    this.publish();
  }

  async react(emoji: string) {
    this.send({ type: "reaction", emoji });
  }

  async startShare() {
    const s = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
    const t = s.getVideoTracks()[0];
    if (!t) return;
    t.onended = () => void this.stopShare();
    this.setTrack("screen", t);
    streams.set(trackKey("self", KIND_SCREEN), new MediaStream([t]));
    this.sendMedia();
    this.publish();
  }

  async stopShare() {
    this.setTrack("screen", null);
    streams.set(trackKey("self", KIND_SCREEN), null);
    this.sendMedia();
    this.publish();
  }

  async sendChat(text: string) {
    if (!this.ws || this.status !== "in") throw new CallError("not_in_meeting", "Not connected: try again in a moment.");
    const id = crypto.randomUUID();
    this.pendingChat.set(id, text);
    this.send({ type: "chat", client_msg_id: id, text });
    this.addChat({ id, seq: 0, sender: this.userId ?? "", sender_name: this.opts.name, text, at_ms: Date.now() }, true, id, true);
  }

  async hostAction(action: HostActionArg, peer: string | null) {
    if (peer) this.send({ type: action, peer });
    else this.send({ type: action });
  }

  async leave() {
    this.send({ type: "leave" });
    this.finish("left");
  }

  /** Devices to choose from, for the settings dialog. */
  async devices(): Promise<MediaDeviceInfo[]> {
    return navigator.mediaDevices.enumerateDevices();
  }

  async chooseCamera(id: string) {
    this.opts.cameraId = id;
    if (this.tracks.camera) await this.openCamera(id);
  }

  async chooseMic(id: string) {
    this.opts.micId = id;
    await this.openMic(id);
  }

  /** Where we play the others (Chromium: setSinkId). */
  async chooseSpeaker(id: string) {
    for (const l of this.links.values()) {
      const el = l.audio as (HTMLAudioElement & { setSinkId?: (id: string) => Promise<void> }) | undefined;
      await el?.setSinkId?.(id);
    }
  }
}
