// Serves call.html on 127.0.0.1 and keeps the page's latest report; GET /stats returns it.
// Usage: node server.js PORT
const http = require('http');
const fs = require('fs');
const path = require('path');
const port = +process.argv[2] || 0;
let last = {};
let bitrate = [];
const server = http.createServer((req, res) => {
  if (req.method === 'POST') {
    let body = '';
    req.on('data', c => (body += c));
    req.on('end', () => {
      try {
        const v = JSON.parse(body);
        if (req.url === '/bitrate') bitrate.push(v); else last = v;
      } catch (_) {}
      res.end('ok');
    });
    return;
  }
  if (req.url === '/stats') {
    // Video bitrate sent by one side over the last 5 reports, kbit/s.
    const b = bitrate.slice(-6);
    const kbps = b.length > 1 ? ((b[b.length - 1].bytesSent - b[0].bytesSent) * 8) / (b[b.length - 1].t - b[0].t) : 0;
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify({ ...last, sendKbps: Math.round(kbps) }));
  }
  res.setHeader('content-type', 'text/html');
  res.end(fs.readFileSync(path.join(__dirname, 'call.html')));
});
server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
