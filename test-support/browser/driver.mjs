// A browser under remote control for the browser tests (parley_test_support::browser):
// Debian's Chromium through Debian's chromedriver (W3C WebDriver) and Firefox ESR over
// WebDriver BiDi (puppeteer-core, which downloads no browser), headless, with the browser's
// fake camera and microphone (Chromium: a Y4M/WAV pair; Firefox: its own fakes) and its
// screen picker answered (Chromium: its fake picker takes the tab; Firefox: with permission
// prompts off it takes the whole screen at once, which a headless Firefox has none of, so
// `--display :N` runs it with a window on that X display, a private Xvfb).
// One JSON command per stdin line, one JSON answer per stdout line: {"ok":true,"value":…}
// or {"ok":false,"error":"…"}.
//
//   node driver.mjs chromium|firefox [--y4m FILE] [--wav FILE] [--display :N]
//
// Commands: goto {url}; time_join {url, name} (the join benchmark's measure, ms);
// click {text, timeout_ms} (a button or link by its visible text, exact);
// type {selector, text}; wait_text {text, timeout_ms} (anywhere in the page);
// eval {js} (an async function body's value, JSON); screenshot {path}; logs; close.

import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

const [kind, ...rest] = process.argv.slice(2);
const opt = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const display = opt("--display");
// A window on the given display, or none.
const headless = !display;
const env = display ? { ...process.env, DISPLAY: display } : process.env;

const xpathText = (text) => `//*[self::button or self::a][normalize-space(.)=${JSON.stringify(text)}]`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** The page condition the join benchmark waits for: a remote video tile presented a frame. */
const FIRST_REMOTE_FRAME =
  "[...document.querySelectorAll('figure.tile video')].some((v) => !v.classList.contains('mirror') && Number(v.dataset.frames ?? 0) >= 1)";

// ---- Firefox ESR: WebDriver BiDi through puppeteer-core -----------------------------------

async function firefox() {
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: process.env.PARLEY_FIREFOX ?? "/usr/bin/firefox-esr",
    headless,
    env,
    protocol: "webDriverBiDi",
    args: ["--width=1280", "--height=800"],
    extraPrefsFirefox: {
      "media.navigator.streams.fake": true,
      "media.navigator.permission.disabled": true,
      "media.getusermedia.screensharing.enabled": true,
      "media.getdisplaymedia.enabled": true,
      // No "you are sharing" bar window over the shared screen.
      "privacy.webrtc.legacyGlobalIndicator": false,
      "privacy.webrtc.hideGlobalIndicator": true,
      "media.autoplay.default": 0,
      "media.autoplay.blocking_policy": 0,
      "media.autoplay.block-webaudio": false,
      "media.peerconnection.ice.loopback": false,
      "media.peerconnection.ice.obfuscate_host_addresses": false,
      "network.protocol-handler.external.parley": false,
      "network.protocol-handler.warn-external.parley": false,
      "network.protocol-handler.expose.parley": false,
    },
  });
  const page = (await browser.pages())[0] ?? (await browser.newPage());
  await page.setViewport({ width: 1280, height: 800 });
  const logs = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
  return {
    async goto(url) {
      await page.goto(url, { waitUntil: "load" });
      return page.url();
    },
    async click(text, timeout) {
      const el = await page.waitForSelector(`::-p-xpath(${xpathText(text)})`, { timeout });
      await el.click();
    },
    async type(selector, text) {
      const el = await page.waitForSelector(selector, { timeout: 10000 });
      await el.click({ count: 3 });
      await el.type(text);
    },
    async waitFor(expr, timeout, polling) {
      await page.waitForFunction(expr, { timeout, polling });
    },
    eval: (js) => page.evaluate(`(async () => { ${js} })()`),
    screenshot: (path) => page.screenshot({ path }),
    logs: async () => logs.splice(0),
    close: () => browser.close(),
  };
}

// ---- Chromium: W3C WebDriver through Debian's chromedriver ---------------------------------

async function freePort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

async function chromium() {
  const args = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--auto-accept-this-tab-capture",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--window-size=1280,800",
  ];
  if (headless) args.push("--headless");
  if (opt("--y4m")) args.push(`--use-file-for-fake-video-capture=${opt("--y4m")}`);
  if (opt("--wav")) args.push(`--use-file-for-fake-audio-capture=${opt("--wav")}`);
  const port = await freePort();
  const driver = spawn(process.env.PARLEY_CHROMEDRIVER ?? "/usr/bin/chromedriver", [`--port=${port}`, "--allowed-ips=127.0.0.1"], {
    env,
    stdio: "ignore",
  });
  const base = `http://127.0.0.1:${port}`;
  const request = async (method, path, body) => {
    const r = await fetch(base + path, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await r.json();
    if (json.value?.error) throw new Error(`${json.value.error}: ${json.value.message?.split("\n")[0]}`);
    return json.value;
  };
  for (let i = 0; ; i++) {
    try {
      if ((await request("GET", "/status")).ready) break;
    } catch (e) {
      if (i > 100) throw new Error(`chromedriver did not start: ${e.message}`);
    }
    await sleep(100);
  }
  const session = await request("POST", "/session", {
    capabilities: {
      alwaysMatch: {
        browserName: "chrome",
        "goog:chromeOptions": {
          binary: process.env.PARLEY_CHROMIUM ?? "/usr/bin/chromium",
          args,
        },
        "goog:loggingPrefs": { browser: "ALL" },
        timeouts: { script: 120000, pageLoad: 60000, implicit: 0 },
      },
    },
  });
  const cmd = (method, path, body) => request(method, `/session/${session.sessionId}${path}`, body);
  const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";
  // Waits for an element (polling, as puppeteer's waitForSelector does), then acts on it,
  // again while it is not yet interactable (a screen still drawing).
  const withElement = async (using, value, timeout, act) => {
    const end = Date.now() + timeout;
    for (;;) {
      try {
        const el = await cmd("POST", "/element", { using, value });
        return await act(el[ELEMENT]);
      } catch (e) {
        if (Date.now() > end) throw new Error(`${value}: ${e.message}`);
        await sleep(100);
      }
    }
  };
  return {
    async goto(url) {
      await cmd("POST", "/url", { url });
      return cmd("GET", "/url");
    },
    click: (text, timeout) => withElement("xpath", xpathText(text), timeout, (id) => cmd("POST", `/element/${id}/click`, {})),
    type: (selector, text) =>
      withElement("css selector", selector, 10000, async (id) => {
        // Empty it as a person selecting all would (Svelte's binding hears the input event),
        // then type.
        await cmd("POST", "/execute/sync", {
          script: "const e = arguments[0]; e.focus(); e.select?.(); e.value = ''; e.dispatchEvent(new Event('input', { bubbles: true }));",
          args: [{ [ELEMENT]: id }],
        });
        await cmd("POST", `/element/${id}/value`, { text });
      }),
    async waitFor(expr, timeout, polling) {
      // Polled from here, so that a navigation in between is only a missed poll.
      const end = Date.now() + timeout;
      for (;;) {
        try {
          if (await cmd("POST", "/execute/sync", { script: `return !!(${expr});`, args: [] })) return;
        } catch {
          /* the page is changing: poll again */
        }
        if (Date.now() > end) throw new Error(`waiting for ${expr}: timed out after ${timeout} ms`);
        await sleep(polling);
      }
    },
    async eval(js) {
      const r = await cmd("POST", "/execute/async", {
        script: `const done = arguments[arguments.length - 1];
          (async () => { ${js} })().then((v) => done({ ok: v === undefined ? null : v }), (e) => done({ err: String(e?.message ?? e) }));`,
        args: [],
      });
      if (r && "err" in r) throw new Error(r.err);
      return r?.ok ?? null;
    },
    async screenshot(path) {
      await writeFile(path, Buffer.from(await cmd("GET", "/screenshot"), "base64"));
    },
    async logs() {
      const l = await cmd("POST", "/se/log", { type: "browser" }).catch(() => []);
      return l.map((e) => `${e.level}: ${e.message}`);
    },
    async close() {
      await cmd("DELETE", "").catch(() => {});
      if (driver.exitCode === null) await new Promise((r) => driver.once("exit", r).kill());
    },
  };
}

const page = kind === "firefox" ? await firefox() : await chromium();

async function run(c) {
  switch (c.op) {
    case "goto":
      return await page.goto(c.url);
    case "click":
      await page.click(c.text, c.timeout_ms ?? 10000);
      return true;
    case "type":
      await page.type(c.selector, c.text);
      return true;
    case "wait_text":
      await page.waitFor(`document.body.innerText.includes(${JSON.stringify(c.text)})`, c.timeout_ms ?? 20000, 200);
      return true;
    case "eval":
      return await page.eval(c.js);
    case "screenshot":
      await page.screenshot(c.path);
      return c.path;
    case "time_join": {
      // The browser join benchmark: invite link opened → first remote frame presented, ms.
      const t0 = performance.now();
      await page.goto(c.url);
      await run({ op: "click", text: "Join in this browser" });
      await run({ op: "type", selector: "#name", text: c.name });
      await run({ op: "click", text: "Join" });
      await page.waitFor(FIRST_REMOTE_FRAME, 30000, 10);
      const ms = performance.now() - t0;
      // Leave (not timed), so the next join meets the host alone, not a guest in its grace.
      await run({ op: "click", text: "Leave" });
      await run({ op: "wait_text", text: "You left the meeting" });
      return ms;
    }
    case "logs":
      return await page.logs();
    case "close":
      await page.close();
      process.exit(0);
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
say({ ok: true, value: `${kind} ready` });
// End of input (the test is over, or it failed and dropped us): close the browser.
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  try {
    say({ ok: true, value: (await run(JSON.parse(line))) ?? null });
  } catch (e) {
    say({ ok: false, error: String(e?.message ?? e), logs: await page.logs().catch(() => []) });
  }
}
await page.close();
