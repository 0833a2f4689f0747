"""An independent WebRTC peer (aiortc) in a Parley meeting, speaking Parley's own protocol.

It signs up over REST, joins over the WebSocket (`/api/ws`, subprotocol parley.v1), and meets
every other participant the way the protocol says: the newcomer offers, the others answer,
candidates trickle. Its tracks have aiortc's own ids (random UUIDs), nothing Parley chose. It
sends a moving 320x240 picture and a steady tone, records what it receives, chats, and writes
what it saw to OUT/result.json:

    python aiortc_peer.py --server http://127.0.0.1:PORT --code CODE --name alice \
        --tone 880 --seconds 8 --chat "hello from aiortc" --out DIR

OUT/<peer>.wav is the received audio (48 kHz mono, s16); OUT/<peer>-<n>.pgm every 15th
received picture's luma (for the test to read Parley's frame stamps from); result.json holds
frame counts per received video line (by mid), the chat lines received, and the tracks' ids.
Only loopback candidates are gathered (as parley-cli --loopback-only): the test never sends
media over another interface.
"""

import argparse
import asyncio
import fractions
import json
import math
import os
import struct
import time
import urllib.request
import wave

import aioice.ice
import av
import websockets
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

# Loopback only, like parley-cli --loopback-only (aioice leaves 127.0.0.1 out by default).
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

RATE = 48000
SAMPLES = 960  # 20 ms


class Tone(MediaStreamTrack):
    kind = "audio"

    def __init__(self, hz):
        super().__init__()
        self.hz = hz
        self.n = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.n * SAMPLES / RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        pcm = struct.pack(
            f"<{SAMPLES}h",
            *(
                int(9000 * math.sin(2 * math.pi * self.hz * (self.n * SAMPLES + i) / RATE))
                for i in range(SAMPLES)
            ),
        )
        frame = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES)
        frame.planes[0].update(pcm)
        frame.sample_rate = RATE
        frame.pts = self.n * SAMPLES
        frame.time_base = fractions.Fraction(1, RATE)
        self.n += 1
        return frame


class Pattern(MediaStreamTrack):
    """A bright square moving over a scrolling gradient, 320x240 at 15 fps."""

    kind = "video"
    W, H, FPS = 320, 240, 15

    def __init__(self):
        super().__init__()
        self.n = 0
        self.start = None
        self.rows = [bytes((x + y) % 200 + 20 for x in range(2 * self.W)) for y in range(self.H)]

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.n / self.FPS
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        w, h, n = self.W, self.H, self.n
        shift = (n * 4) % w
        y = bytearray(b"".join(r[shift : shift + w] for r in self.rows))
        side, x0, y0 = 48, (n * 6) % (w - 48), (n * 3) % (h - 48)
        for row in range(y0, y0 + side):
            y[row * w + x0 : row * w + x0 + side] = b"\xeb" * side
        frame = av.VideoFrame(w, h, "yuv420p")
        frame.planes[0].update(bytes(y))
        frame.planes[1].update(b"\x80" * (w * h // 4))
        frame.planes[2].update(b"\x80" * (w * h // 4))
        frame.pts = n * (90000 // self.FPS)
        frame.time_base = fractions.Fraction(1, 90000)
        self.n += 1
        return frame


def fingerprint(sdp):
    """The DTLS fingerprint of a description: another one is another peer connection."""
    return next((l for l in sdp.splitlines() if l.startswith("a=fingerprint:")), None)


def post(base, path, body, token=None):
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


class Peer:
    def __init__(self, args):
        self.args = args
        self.links = {}  # peer id -> RTCPeerConnection
        self.pending_ice = {}  # peer id -> candidates before the remote description
        self.names = {}
        self.result = {"video": {}, "audio_frames": 0, "chat": [], "track_ids": [], "peers": []}
        self.wavs = {}
        self.connected = asyncio.Event()
        self.tasks = []

    def label(self, peer):
        return "".join(c if c.isalnum() or c == "-" else "_" for c in self.names.get(peer, peer))

    async def send(self, msg):
        await self.ws.send(json.dumps(msg))

    def new_link(self, peer, ice_servers):
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in ice_servers
        ]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.links[peer] = pc

        @pc.on("track")
        def on_track(track):
            mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None)
            self.tasks.append(asyncio.ensure_future(self.receive(peer, mid, track)))

        @pc.on("connectionstatechange")
        def on_state():
            if pc.connectionState == "connected":
                self.connected.set()

        return pc

    def add_tracks(self, pc):
        for track in (self.tone, self.pattern):
            pc.addTrack(track)

    async def receive(self, peer, mid, track):
        label = self.label(peer)
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            if track.kind == "audio":
                self.result["audio_frames"] += 1
                if label not in self.wavs:
                    w = wave.open(os.path.join(self.args.out, f"{label}.wav"), "wb")
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(frame.sample_rate)
                    self.wavs[label] = w
                pcm = bytes(frame.planes[0])[: frame.samples * 2 * len(frame.layout.channels)]
                if len(frame.layout.channels) == 2:  # keep the left channel
                    pcm = b"".join(pcm[i : i + 2] for i in range(0, len(pcm), 4))
                self.wavs[label].writeframes(pcm)
            else:
                seen = self.result["video"].setdefault(
                    str(mid), {"frames": 0, "width": 0, "height": 0, "peer": label}
                )
                seen["width"], seen["height"] = frame.width, frame.height
                if seen["frames"] % 15 == 0:
                    plane = frame.planes[0]
                    rows = bytes(plane)
                    luma = b"".join(
                        rows[r * plane.line_size : r * plane.line_size + frame.width]
                        for r in range(frame.height)
                    )
                    path = os.path.join(self.args.out, f"{label}-{mid}-{seen['frames']:06}.pgm")
                    with open(path, "wb") as f:
                        f.write(b"P5\n%d %d\n255\n" % (frame.width, frame.height) + luma)
                seen["frames"] += 1

    async def offer_to(self, peer, ice_servers):
        pc = self.new_link(peer, ice_servers)
        self.add_tracks(pc)
        await pc.setLocalDescription(await pc.createOffer())
        # aiortc gathers every candidate before it returns: they are in the SDP.
        await self.send({"type": "offer", "to": peer, "sdp": pc.localDescription.sdp})

    async def on_offer(self, peer, sdp):
        self.offers = getattr(self, "offers", 0) + 1
        with open(os.path.join(self.args.out, f"offer-{self.offers}.sdp"), "w") as f:
            f.write(sdp)
        pc = self.links.get(peer)
        if pc is not None and pc.remoteDescription is not None and (
            fingerprint(pc.remoteDescription.sdp) == fingerprint(sdp)
        ):
            # The same session offering again (an ICE restart, or a line added): renegotiate.
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await self.send({"type": "answer", "to": peer, "sdp": pc.localDescription.sdp})
            return
        old = self.links.pop(peer, None)
        if old:
            await old.close()
        pc = self.new_link(peer, self.ice_servers)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        self.add_tracks(pc)
        await pc.setLocalDescription(await pc.createAnswer())
        await self.send({"type": "answer", "to": peer, "sdp": pc.localDescription.sdp})
        await self.flush_ice(peer)

    async def flush_ice(self, peer):
        for c in self.pending_ice.pop(peer, []):
            await self.add_ice(peer, c)

    async def add_ice(self, peer, c):
        pc = self.links.get(peer)
        if pc is None or pc.remoteDescription is None:
            self.pending_ice.setdefault(peer, []).append(c)
            return
        text = c["candidate"]
        if not text:
            return
        cand = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
        cand.sdpMid = c.get("sdp_mid")
        cand.sdpMLineIndex = c.get("sdp_mline_index")
        await pc.addIceCandidate(cand)

    async def run(self):
        a = self.args
        os.makedirs(a.out, exist_ok=True)
        password = a.name + "-Str0ng-Passphrase"
        reg = post(
            a.server,
            "/api/auth/register",
            {"username": a.name, "email": a.name + "@example.org", "password": password},
        )
        token = reg["tokens"]["access_token"]
        self.tone, self.pattern = Tone(a.tone), Pattern()
        self.result["track_ids"] = [self.tone.id, self.pattern.id]
        ws_url = a.server.replace("http", "ws", 1) + "/api/ws"
        async with websockets.connect(
            ws_url,
            subprotocols=["parley.v1"],
            additional_headers={"Authorization": "Bearer " + token},
        ) as ws:
            self.ws = ws
            await self.send({"type": "join", "code": a.code, "display_name": a.name})
            reader = asyncio.ensure_future(self.read())
            await asyncio.wait_for(self.connected.wait(), 30)
            await asyncio.sleep(1)
            await self.send({"type": "chat", "client_msg_id": "aiortc-1", "text": a.chat})
            await asyncio.sleep(a.seconds)
            await self.send({"type": "leave"})
            reader.cancel()
        for pc in self.links.values():
            await pc.close()
        for t in self.tasks:
            t.cancel()
        for w in self.wavs.values():
            w.close()
        with open(os.path.join(a.out, "result.json"), "w") as f:
            json.dump(self.result, f, indent=1)

    async def read(self):
        async for raw in self.ws:
            m = json.loads(raw)
            t = m["type"]
            if t == "welcome":
                self.ice_servers = m["ice_servers"]
                for p in m["participants"]:
                    self.names[p["peer_id"]] = p["display_name"]
                    self.result["peers"].append(p["display_name"])
                print("joined", flush=True)
                await self.send(
                    {"type": "media_state", "audio": True, "video": True, "screen": False}
                )
                # The newcomer offers to everyone already there.
                for p in m["participants"]:
                    await self.offer_to(p["peer_id"], self.ice_servers)
            elif t == "peer_joined":
                p = m["participant"]
                self.names[p["peer_id"]] = p["display_name"]
                self.result["peers"].append(p["display_name"])
            elif t == "offer":
                await self.on_offer(m["from"], m["sdp"])
            elif t == "answer":
                pc = self.links.get(m["from"])
                if pc:
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"], type="answer"))
                    await self.flush_ice(m["from"])
            elif t == "ice":
                await self.add_ice(m["from"], m["candidate"])
            elif t == "chat":
                msg = m["message"]
                self.result["chat"].append(f"{msg['sender_name']}: {msg['text']}")
            elif t == "error":
                self.result.setdefault("errors", []).append(m["code"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--code", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--tone", type=float, default=880.0)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--chat", default="hello from aiortc")
    p.add_argument("--out", required=True)
    asyncio.run(Peer(p.parse_args()).run())


if __name__ == "__main__":
    main()
