#!/usr/bin/env node
// The operators' dashboard in headless Chromium, against a running order-status-service.
// Starts nothing itself: run.sh starts the servers and programs and passes, in the environment:
//   OSS_URL         the service, e.g. http://127.0.0.1:18080
//   OSS_TOKEN       an operator token (typed into the page's token field, as an operator would)
//   EMIT_CMD        a shell command that makes a producer emit one new order (SUBMITTED) whose
//                   id is EMIT_ORDER_ID
//   EMIT_ORDER_ID   that order's id
//   EXPECT_ORDERS   how many orders the service holds before the emit
//   EXPECT_STUCK    how many of them are past their SLA
//   CORRECT_ORDER   an order in SUBMITTED to cancel through POST /v1/orders/{id}/status
//   WAITING_ORDER   an order whose only event is parked as early (listed under "Waiting for a predecessor")
//   SCREENSHOT      where to save the screenshot (PNG)
//   CHROMIUM        default /usr/bin/chromium
// Exit code 0 when every check passed; otherwise 1 with the failed check on stderr.
"use strict";
const { chromium } = require("playwright-core");
const { execSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

function need(name) {
  const v = process.env[name];
  if (!v) { console.error(`dashboard test: ${name} is not set (run it through tests/browser/run.sh)`); process.exit(2); }
  return v;
}
const url = need("OSS_URL");
const token = need("OSS_TOKEN");
const emitCmd = need("EMIT_CMD");
const emitOrder = need("EMIT_ORDER_ID");
const expectOrders = Number(need("EXPECT_ORDERS"));
const expectStuck = Number(need("EXPECT_STUCK"));
const correctOrder = need("CORRECT_ORDER");
const waitingOrder = need("WAITING_ORDER");
const screenshot = need("SCREENSHOT");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

function log(msg) { console.log(`[browser] ${msg}`); }
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  log(`ok: ${what}`);
}

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "oss-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1440, height: 1000 },
  });
  const consoleErrors = [];
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    // Every request the page makes must go to the service itself (self-contained, no CDN).
    const foreign = [];
    page.on("request", (r) => { if (!r.url().startsWith(url) && !r.url().startsWith("data:")) foreign.push(r.url()); });

    await page.goto(url + "/", { waitUntil: "load" });
    check((await page.title()).includes("Order status"), "the page loads from GET /");

    // With --tokens the data calls are refused until a token is given.
    await page.waitForSelector("#banner", { state: "visible", timeout: 15000 });
    check((await page.textContent("#banner")).includes("token"), "without a token the page asks for one");

    await page.fill("#token", token);
    await page.click("#token-save");
    await page.waitForSelector("body[data-loaded='true']", { timeout: 15000 });
    check(await page.evaluate(() => sessionStorage.getItem("oss-token") !== null), "the token is kept in sessionStorage");
    consoleErrors.length = 0;  // the 401s before the token was given are expected

    // Counts and lists come from the running service.
    await page.waitForFunction((n) => document.getElementById("count-orders").textContent === String(n),
                               expectOrders, { timeout: 15000 });
    check(true, `the order count shows ${expectOrders}`);
    check((await page.textContent("#count-stuck")) === String(expectStuck), `the stuck count shows ${expectStuck}`);
    const submitted = await page.textContent("#status-counts tr[data-status='SUBMITTED'] td.count");
    check(Number(submitted) >= 1, `the SUBMITTED row shows ${submitted} orders`);
    const stuckRows = await page.$$eval("#stuck-orders tr[data-order]", (rows) =>
      rows.map((r) => ({ id: r.dataset.order, overdue: r.querySelector(".overdue").textContent })));
    check(stuckRows.length === expectStuck, `the stuck table lists ${stuckRows.length} orders`);
    check(stuckRows.every((r) => /^\d+[dhms]/.test(r.overdue)), `overdue times are shown (${stuckRows.map((r) => r.overdue).join(", ")})`);
    const dlq = Number(await page.textContent("#count-dlq"));
    check(dlq >= 1, `the DLQ size shows ${dlq}`);
    check((await page.$$("#dead-letters tr")).length >= 1, "dead letters are listed");
    const waiting = await page.$$eval("#early-events tr[data-order]", (rows) =>
      rows.map((r) => ({ id: r.dataset.order, text: r.textContent })));
    check(waiting.length === 1 && waiting[0].id === waitingOrder && waiting[0].text.includes("waiting for its creation"),
          `the event waiting for a predecessor is listed (${JSON.stringify(waiting)})`);

    // Live: the stream is connected, then a producer emits a new order.
    await page.waitForFunction(() => document.getElementById("stream-state").textContent === "live", null, { timeout: 15000 });
    check(true, "the live stream is connected");
    execSync(emitCmd, { stdio: "inherit", shell: "/bin/bash" });
    await page.waitForSelector(`#feed li[data-order='${emitOrder}'][data-type='status_changed']`, { timeout: 30000 });
    check(true, `the live feed shows ${emitOrder} arriving`);
    await page.waitForFunction((n) => document.getElementById("count-orders").textContent === String(n),
                               expectOrders + 1, { timeout: 15000 });
    check(true, `the order count updated live to ${expectOrders + 1}`);

    // An operator correction (the API, as another operator would) shows up live too.
    const res = await fetch(`${url}/v1/orders/${encodeURIComponent(correctOrder)}/status`, {
      method: "POST",
      headers: { "Authorization": `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ status: "CANCELLED", reason: "customer asked to cancel (browser test)" }),
    });
    check(res.status === 200, `the correction was accepted (${res.status})`);
    const li = await page.waitForSelector(`#feed li[data-order='${correctOrder}']`, { timeout: 15000 });
    const text = await li.textContent();
    check(text.includes("CANCELLED") && text.includes("by "), `the feed shows the correction: ${text}`);
    await page.waitForFunction(() => {
      const cell = document.querySelector("#status-counts tr[data-status='CANCELLED'] td.count");
      return cell && Number(cell.textContent) >= 1;
    }, null, { timeout: 15000 });
    check(true, "the CANCELLED count updated live");

    // Where is order X: the lookup shows the order and its audited history.
    await page.fill("#lookup-id", correctOrder);
    await page.click("#lookup button");
    await page.waitForSelector("#lookup-result table", { timeout: 15000 });
    const lookup = await page.textContent("#lookup-result");
    check(lookup.includes(`${correctOrder} is CANCELLED`) && lookup.includes("browser test"), "the lookup shows status and history");

    check(foreign.length === 0, `no request left the service (${foreign.join(", ") || "none"})`);
    check(consoleErrors.length === 0, `no console errors (${consoleErrors.join(" | ") || "none"})`);

    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    log(`screenshot: ${screenshot}`);
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().then(() => { log("all checks passed"); }, (e) => { console.error(`[browser] FAILED: ${e.message}`); process.exit(1); });
