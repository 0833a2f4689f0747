// A browser under remote control for the browser tests (parley_test_support::browser): Debian's Chromium over CDP or
// Firefox ESR over WebDriver BiDi (puppeteer-core, no browser download), headless, with the
// browser's fake camera and microphone (Chromium: a Y4M/WAV pair; Firefox: its own fakes)
// and its screen picker answered. One JSON command per stdin line, one JSON answer per
// stdout line: {"ok":true,"value":…} or {"ok":false,"error":"…"}.
//
//   node driver.mjs chromium|firefox [--y4m FILE] [--wav FILE]
//
// Commands: goto {url}; time_join {url, name} (the join benchmark's measure, ms); click {text} (a button or link by its visible text, exact);
// type {selector, text}; wait_text {text, timeout_ms} (anywhere in the page);
// eval {js} (an expression or async function body's value, JSON); screenshot {path};
// close.

import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

const [kind, ...rest] = process.argv.slice(2);
const opt = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};

async function launch() {
  if (kind === "firefox") {
    return puppeteer.launch({
      browser: "firefox",
      executablePath: process.env.PARLEY_FIREFOX ?? "/usr/bin/firefox-esr",
      headless: true,
      protocol: "webDriverBiDi",
      args: ["--width=1280", "--height=800"],
      extraPrefsFirefox: {
        "media.navigator.streams.fake": true,
        "media.navigator.permission.disabled": true,
        "media.getusermedia.screensharing.enabled": true,
        "media.getdisplaymedia.enabled": true,
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
  }
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
  if (opt("--y4m")) args.push(`--use-file-for-fake-video-capture=${opt("--y4m")}`);
  if (opt("--wav")) args.push(`--use-file-for-fake-audio-capture=${opt("--wav")}`);
  return puppeteer.launch({
    browser: "chrome",
    executablePath: process.env.PARLEY_CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args,
    defaultViewport: { width: 1280, height: 800 },
  });
}

const browser = await launch();
const page = (await browser.pages())[0] ?? (await browser.newPage());
if (kind === "firefox") await page.setViewport({ width: 1280, height: 800 });
const logs = [];
page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));

const xpathText = (text) =>
  `::-p-xpath(//*[self::button or self::a][normalize-space(.)=${JSON.stringify(text)}])`;

async function run(c) {
  switch (c.op) {
    case "goto":
      await page.goto(c.url, { waitUntil: "load" });
      return page.url();
    case "click": {
      const el = await page.waitForSelector(xpathText(c.text), { timeout: c.timeout_ms ?? 10000 });
      await el.click();
      return true;
    }
    case "type": {
      const el = await page.waitForSelector(c.selector, { timeout: 10000 });
      await el.click({ count: 3 });
      await el.type(c.text);
      return true;
    }
    case "wait_text":
      await page.waitForFunction((t) => document.body.innerText.includes(t), { timeout: c.timeout_ms ?? 20000, polling: 200 }, c.text);
      return true;
    case "eval":
      return await page.evaluate(`(async () => { ${c.js} })()`);
    case "screenshot":
      await page.screenshot({ path: c.path });
      return c.path;
    case "time_join": {
      // The browser join benchmark: invite link opened → first remote frame presented, ms.
      const t0 = performance.now();
      await page.goto(c.url, { waitUntil: "domcontentloaded" });
      await run({ op: "click", text: "Join in this browser" });
      await run({ op: "type", selector: "#name", text: c.name });
      await run({ op: "click", text: "Join" });
      await page.waitForFunction(
        () => [...document.querySelectorAll("figure.tile video")].some((v) => !v.classList.contains("mirror") && Number(v.dataset.frames ?? 0) >= 1),
        { timeout: 30000, polling: 10 },
      );
      const ms = performance.now() - t0;
      // Leave (not timed), so the next join meets the host alone, not a guest in its grace.
      await run({ op: "click", text: "Leave" });
      await run({ op: "wait_text", text: "You left the meeting" });
      return ms;
    }
    case "logs":
      return logs.splice(0);
    case "close":
      await browser.close();
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
    say({ ok: false, error: String(e?.message ?? e), logs: logs.splice(0) });
  }
}
await browser.close();
