// A Socket.IO 4 signaling server as a Node conferencing backend writes one: rooms per meeting,
// offer/answer/ice relayed to one socket, chat to the rest of the room (acknowledged to its
// sender). The same workload as Parley's server gets (bench/src/signaling.rs), minus Parley's
// authentication, validation and stored chat history. Listens on 127.0.0.1:$PORT.
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const server = http.createServer();
const io = new Server(server, { transports: ["websocket"], serveClient: false });
let seq = 0;

io.on("connection", (socket) => {
  let room = null;
  socket.on("join", ({ code, name }) => {
    if (room || typeof code !== "string") return;
    room = code;
    const peers = [...(io.sockets.adapter.rooms.get(room) ?? [])];
    socket.join(room);
    socket.data.name = name;
    socket.emit("welcome", { peer_id: socket.id, participants: peers.map((id) => ({ peer_id: id })) });
    socket.to(room).emit("peer_joined", { peer_id: socket.id, name });
  });
  for (const type of ["offer", "answer", "ice"]) {
    socket.on(type, (msg) => {
      if (!room || !msg || typeof msg.to !== "string") return;
      const { to, ...rest } = msg;
      io.to(to).emit(type, { ...rest, from: socket.id });
    });
  }
  socket.on("chat", (msg, ack) => {
    if (!room || !msg || typeof msg.text !== "string") return;
    seq += 1;
    const message = { seq, sender: socket.id, text: msg.text, at: Date.now() };
    socket.to(room).emit("chat", { message });
    if (typeof ack === "function") ack({ client_msg_id: msg.client_msg_id, seq });
  });
  socket.on("disconnect", () => {
    if (room) socket.to(room).emit("peer_left", { peer_id: socket.id });
  });
});

server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
