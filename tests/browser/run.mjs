// Opens the page in headless Chromium (the system's, never a downloaded one), waits for its
// scenarios to finish, saves a screenshot and prints the results as one JSON line.
//
//   node run.mjs PAGE_URL SCREENSHOT_PATH [CHROMIUM_PATH]
import { chromium } from "playwright-core";

const [pageUrl, screenshot, executablePath = "/usr/bin/chromium"] = process.argv.slice(2);
if (!pageUrl || !screenshot) {
  console.error("usage: node run.mjs PAGE_URL SCREENSHOT_PATH [CHROMIUM_PATH]");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  // No sandbox (CI runs as root) and no background traffic: this machine has no network
  // beyond loopback, and Chromium's own connections would only add noise.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const console_ = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
  page.on("console", (msg) => console_.push(`${msg.type()}: ${msg.text()}`));
  page.on("pageerror", (err) => console_.push(`pageerror: ${err.message}`));
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.elizaDone === true, null, { timeout: 60_000 });
  const results = await page.evaluate(() => window.elizaResults);
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ results, console: console_ }));
} catch (err) {
  console.log(JSON.stringify({ error: String(err), console: console_ }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
