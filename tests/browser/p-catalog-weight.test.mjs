// The catalog's page weight (bytes transferred, cold cache and a warm
// reload, from CDP's Network.loadingFinished encodedDataLength: headers and
// bodies as sent, compressed) and its time to first render
// (first-contentful-paint), each printed as one summary line; and a
// screenshot of the catalog at 1280 px (SHOP_SCREENSHOTS/catalog-1280.png).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, newPage, shot, assertNoPageErrors } from "./helper.mjs";

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

/** Loads the catalog with `go` and returns what went over the network until it settled. */
async function measure(page, cdp, go) {
  const requests = new Map();
  const onResponse = ({ requestId, response, type }) => requests.set(requestId, { url: response.url, status: response.status, type, bytes: 0, done: false });
  const onFinished = ({ requestId, encodedDataLength }) => {
    const r = requests.get(requestId);
    if (r) Object.assign(r, { bytes: encodedDataLength, done: true });
  };
  const onCached = ({ requestId }) => requests.set(requestId, { ...(requests.get(requestId) || {}), memory: true });
  cdp.on("Network.responseReceived", onResponse);
  cdp.on("Network.loadingFinished", onFinished);
  cdp.on("Network.requestServedFromCache", onCached);
  await go();
  await page.getByTestId("product-card").first().waitFor();
  await page.waitForFunction(() => !document.querySelector("#product-grid .skeleton") && !document.querySelector("[data-testid=product-stock][data-stock=unknown]") && [...document.images].every((i) => i.complete));
  await page.waitForLoadState("networkidle");
  cdp.off("Network.responseReceived", onResponse);
  cdp.off("Network.loadingFinished", onFinished);
  cdp.off("Network.requestServedFromCache", onCached);
  const all = [...requests.values()].filter((r) => r.url && !r.url.startsWith("data:"));
  const sum = (rs) => rs.reduce((s, r) => s + r.bytes, 0);
  const api = all.filter((r) => new URL(r.url).pathname.startsWith("/api/"));
  const assets = all.filter((r) => !api.includes(r));
  const paint = await page.evaluate(() => {
    const fcp = performance.getEntriesByType("paint").find((e) => e.name === "first-contentful-paint");
    const nav = performance.getEntriesByType("navigation")[0];
    const resources = performance.getEntriesByType("resource");
    return { fcp: fcp?.startTime, transfer: (nav?.transferSize || 0) + resources.reduce((s, r) => s + r.transferSize, 0), load: nav?.loadEventEnd };
  });
  return {
    requests: all.length, bytes: sum(all), assetBytes: sum(assets), assetRequests: assets.length, apiBytes: sum(api), apiRequests: api.length,
    notModified: all.filter((r) => r.status === 304).length, fromMemory: all.filter((r) => r.memory).length, fcp: paint.fcp, transfer: paint.transfer, load: paint.load,
  };
}

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;

test("catalog page weight (cold, warm) and first contentful paint", { timeout: 60_000 }, async () => {
  const page = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.clearBrowserCache");

  const cold = await measure(page, cdp, () => page.goto(`${BASE}/`));
  const warm = await measure(page, cdp, () => page.reload());

  console.log(`catalog page weight, cold cache: ${kb(cold.bytes)} transferred in ${cold.requests} requests (static ${kb(cold.assetBytes)} in ${cold.assetRequests}, API ${kb(cold.apiBytes)} in ${cold.apiRequests}; Resource Timing says ${kb(cold.transfer)})`);
  console.log(`catalog page weight, warm reload: ${kb(warm.bytes)} transferred in ${warm.requests} requests (${warm.notModified} answered 304, ${warm.fromMemory} from memory; static ${kb(warm.assetBytes)}, API ${kb(warm.apiBytes)}; Resource Timing says ${kb(warm.transfer)})`);
  console.log(`catalog first contentful paint: ${cold.fcp?.toFixed(0)} ms cold, ${warm.fcp?.toFixed(0)} ms warm (load event ${cold.load?.toFixed(0)} ms / ${warm.load?.toFixed(0)} ms)`);

  assert.ok(cold.fcp > 0 && warm.fcp > 0, "the catalog painted");
  assert.ok(cold.bytes > 0 && warm.bytes < cold.bytes, `a warm reload moves less than a cold load (${warm.bytes} vs ${cold.bytes})`);
  assert.ok(cold.bytes < 1024 * 1024, `the catalog weighs under 1 MiB cold (${cold.bytes})`);
  assert.ok(cold.fcp < 5000, `first contentful paint under 5 s (${cold.fcp})`);

  // The catalog at 1280 px, the viewport's first screen: what docs/storefront.png shows.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.locator("#search").blur();
  await shot(page, "catalog", "1280", { fullPage: false });
  assertNoPageErrors(page);
  await page.context().close();
});
