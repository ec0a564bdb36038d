// Opens a page in headless Chromium and prints what it left in window.result, with any
// console errors. Usage: node browser.mjs CHROMIUM_PATH PAGE_URL [FLAG...]
import { chromium } from "playwright-core";

const [executablePath, url, ...args] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath, args, headless: true });
try {
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  await page.goto(url);
  await page.waitForFunction(() => window.result !== undefined, null, { timeout: 60000 });
  const result = await page.evaluate(() => window.result);
  console.log(JSON.stringify({ result, consoleErrors }));
} finally {
  await browser.close();
}
