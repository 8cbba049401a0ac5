// Drives the static catalog in headless Chromium (playwright-core, the
// system's /usr/bin/chromium): console errors, the search box, a product
// page's schema and lineage, screenshots.  argv: site dir, query, product
// page, screenshot dir.  Prints a JSON report.
import { chromium } from "playwright-core";

const [site, query, page_name, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
const errors = [];
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
page.on("pageerror", (e) => errors.push(String(e)));
page.on("requestfailed", (r) => errors.push("request failed: " + r.url()));
const report = {};
await page.goto("file://" + site + "/index.html");
report.count_before = await page.locator("#products li:not([hidden])").count();
await page.fill("#q", query);
report.count_after = await page.locator("#products li:not([hidden])").count();
report.visible = await page.locator("#products li:not([hidden]) a").allTextContents();
report.counter = await page.locator("#count").textContent();
await page.screenshot({ path: shots + "/index.png", fullPage: true });
await page.goto("file://" + site + "/products/" + page_name);
report.title = await page.locator("h1").textContent();
report.columns = await page.locator("table.schema td:first-child").allTextContents();
report.lineage_svg = await page.locator(".lineage svg").count();
report.lineage_text = await page.locator(".lineage").textContent();
report.versions = await page.locator("#versions td:first-child").allTextContents();
await page.screenshot({ path: shots + "/product.png", fullPage: true });
await browser.close();
report.errors = errors;
process.stdout.write(JSON.stringify(report));
