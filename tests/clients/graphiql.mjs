// The GraphiQL page in Chromium, driven as a person would: sign in through the panel (a wrong
// password first), run the example `me` query and the live-rates subscription from the UI,
// check that a typed Authorization header wins and is not stored, reload (still signed in:
// sessionStorage), recover from a refused and from a due access token, turn "Persist
// headers" on and reload twice, sign out. Waits for selectors and stored state, never for
// time. Prints one JSON line; the Python test asserts on it.
//
// Usage: node graphiql.mjs <graphql URL> <chromium> <email> <password> [chromium flags...]
import { chromium } from "playwright-core";

const [graphqlUrl, executablePath, email, password, ...flags] = process.argv.slice(2);
const SESSION_KEY = "stacklo.graphiql.session";
const TIMEOUT = 30_000;

const QUERY_EDITOR = ".graphiql-query-editor .CodeMirror";
const RESULT = ".result-window .CodeMirror";
// Variables and headers share the tool area; the one not shown has the class "hidden".
const HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror";
const TYPED = "Bearer typed-in-the-editor";

const summary = {
  consoleErrors: [],
  pageErrors: [],
  cspViolations: [],
  failedAssets: [],
  operations: [], // {name, authorization} of every POST to the GraphQL endpoint, in order
  socketInits: [], // connection_init payloads, in order
};

const browser = await chromium.launch({ executablePath, args: flags });
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();

  await page.exposeFunction("reportCspViolation", (v) => summary.cspViolations.push(v));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      window.reportCspViolation(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  page.on("console", (message) => {
    if (message.type() === "error") summary.consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => summary.pageErrors.push(String(error)));
  page.on("response", (response) => {
    if (response.url().includes("/graphiql-assets/") && response.status() !== 200) {
      summary.failedAssets.push(`${response.status()} ${response.url()}`);
    }
  });
  page.on("request", (request) => {
    if (request.method() !== "POST" || !request.url().startsWith(graphqlUrl)) return;
    let name = null;
    try {
      name = JSON.parse(request.postData() || "{}").operationName || null;
    } catch {
      /* not JSON */
    }
    summary.operations.push({ name, authorization: request.headers().authorization ?? null });
  });
  page.on("websocket", (socket) => {
    socket.on("framesent", (frame) => {
      try {
        const message = JSON.parse(frame.payload);
        if (message.type === "connection_init") summary.socketInits.push(message.payload ?? null);
      } catch {
        /* not JSON */
      }
    });
  });

  const editorValue = (selector) =>
    page.evaluate((s) => document.querySelector(s)?.CodeMirror.getValue() ?? null, selector);
  const setEditor = (selector, value) =>
    page.evaluate(([s, v]) => document.querySelector(s).CodeMirror.setValue(v), [selector, value]);
  const storedSession = () =>
    page.evaluate((key) => JSON.parse(sessionStorage.getItem(key) || "null"), SESSION_KEY);
  const storeSession = (value) =>
    page.evaluate(([k, v]) => sessionStorage.setItem(k, JSON.stringify(v)), [SESSION_KEY, value]);
  const tabTitles = () =>
    page.evaluate(() =>
      [...document.querySelectorAll(".graphiql-tab-button")].map((b) => b.textContent.trim()),
    );
  const localStorageHas = (texts) =>
    page.evaluate(
      (ts) =>
        Object.keys(localStorage).some((k) =>
          ts.some((t) => (localStorage.getItem(k) || "").includes(t)),
        ),
      texts,
    );
  const since = (from, name) => summary.operations.slice(from).filter((o) => o.name === name);

  // Select the operation's tab, run it, wait for a result containing `text`, return the
  // result (parsed). Which tab is active after a reload is GraphiQL's business, and GraphiQL
  // parses the editor shortly after a change: wait for both.
  async function run(text, operation = "Me") {
    const tab = page.locator(`[role="tab"]:has(.graphiql-tab-button:text-is('${operation}'))`);
    if ((await tab.getAttribute("aria-selected")) !== "true") {
      await tab.locator(".graphiql-tab-button").click();
    }
    await page.waitForFunction(
      ([s, name]) => document.querySelector(s)?.CodeMirror.operationName === name,
      [QUERY_EDITOR, operation],
    );
    await setEditor(RESULT, "");
    await page.click('button[aria-label="Execute query (Ctrl-Enter)"]');
    await page.waitForFunction(
      ([s, t]) => document.querySelector(s)?.CodeMirror.getValue().includes(t),
      [RESULT, text],
    );
    return JSON.parse(await editorValue(RESULT));
  }

  async function signedInAfterReload() {
    await page.reload();
    await page.waitForSelector(".graphiql-container");
    if (await page.locator('button[aria-label="Show Sign in"]').count()) {
      await page.click('button[aria-label="Show Sign in"]');
    }
    await page.locator('[data-testid="signin-who"]', { hasText: email }).waitFor();
    return page.locator('[data-testid="signin-who"]').textContent();
  }

  async function openHeaders() {
    await page.click(".graphiql-editor-tools button:text-is('Headers')");
    await page.waitForSelector(HEADERS_EDITOR);
  }

  // GraphiQL stores its tabs half a second after a change: wait for that write.
  const tabsStored = ({ active, including }) =>
    page.waitForFunction(
      ([a, text]) => {
        const stored = localStorage.getItem("graphiql:tabState") || "";
        if (text !== null) return stored.includes(text);
        return stored !== "" && JSON.parse(stored).activeTabIndex === a;
      },
      [active ?? null, including ?? null],
    );

  // ---------------------------------------------------------------- first visit: signed out
  await page.goto(graphqlUrl);
  await page.waitForSelector('[data-testid="signin-email"]'); // the panel opens by itself
  summary.firstTabs = await tabTitles();
  summary.firstQuery = await editorValue(QUERY_EDITOR);

  await page.fill('[data-testid="signin-email"]', email);
  await page.fill('[data-testid="signin-password"]', `${password}-wrong`);
  await page.click('[data-testid="signin-submit"]');
  summary.wrongPasswordError = await page.locator('[data-testid="signin-error"]').textContent();

  // ---------------------------------------------------------------- sign in
  await page.fill('[data-testid="signin-password"]', password);
  await page.click('[data-testid="signin-submit"]');
  await page.locator('[data-testid="signin-who"]', { hasText: email }).waitFor();
  summary.signedInAs = await page.locator('[data-testid="signin-who"]').textContent();
  const first = await storedSession();
  summary.sessionStorageHasToken = typeof first?.accessToken === "string";
  summary.tokenInLocalStorage = await localStorageHas([first.accessToken, first.refreshToken]);

  // ---------------------------------------------------------------- the example, from the UI
  let from = summary.operations.length;
  summary.meResult = await run(email);
  summary.meSentWith = since(from, "Me").map((o) => o.authorization);
  summary.panelBearer = `Bearer ${first.accessToken}`;

  // A typed Authorization header wins over the panel's token, leaves the panel signed in,
  // and is not stored (GraphiQL writes its history before it sends).
  await openHeaders();
  await setEditor(HEADERS_EDITOR, JSON.stringify({ Authorization: TYPED }));
  from = summary.operations.length;
  summary.typedHeaderResult = await run("UNAUTHENTICATED");
  summary.typedHeaderSentWith = since(from, "Me").map((o) => o.authorization);
  summary.typedHeaderRefreshes = since(from, "GraphiQLPanelRefresh").length;
  summary.stillSignedIn = (await storedSession())?.accessToken === first.accessToken;

  // ---------------------------------------------------------------- a subscription
  // Its own tab, so no typed header: the socket signs in with the panel's token.
  summary.subscriptionResult = await run('"rateUpdated"', "LiveRates");
  await page.click('button[aria-label="Stop query (Ctrl-Enter)"]');
  await page.waitForSelector('button[aria-label="Execute query (Ctrl-Enter)"]');
  await tabsStored({ active: 1 }); // the Me tab's headers too
  summary.typedHeaderInLocalStorage = await localStorageHas([TYPED.slice(7)]);

  // ---------------------------------------------------------------- reload: still signed in
  summary.afterReloadSignedInAs = await signedInAfterReload();
  from = summary.operations.length;
  summary.afterReloadMe = await run(email);
  summary.afterReloadMeSentWith = since(from, "Me").map((o) => o.authorization);
  await openHeaders();
  summary.headersAfterReload = await editorValue(HEADERS_EDITOR); // not persisted by default

  // A refused access token: refreshed once, then the request goes through.
  await storeSession({ ...(await storedSession()), accessToken: "refused" });
  from = summary.operations.length;
  await signedInAfterReload();
  summary.afterRefusedToken = {
    refreshes: since(from, "GraphiQLPanelRefresh").length,
    me: (await run(email)).data?.me?.email ?? null,
    renewed: !["refused", first.accessToken].includes((await storedSession()).accessToken),
  };

  // A token due for refresh: refreshed before anything is sent with it.
  const due = await storedSession();
  await storeSession({ ...due, refreshAt: 0 });
  from = summary.operations.length;
  await signedInAfterReload();
  await page.waitForFunction(
    ([k, old]) => JSON.parse(sessionStorage.getItem(k) || "{}").accessToken !== old,
    [SESSION_KEY, due.accessToken],
  );
  summary.afterDueToken = {
    firstOperation: summary.operations[from]?.name ?? null,
    refreshes: since(from, "GraphiQLPanelRefresh").length,
    dueTokenSent: summary.operations
      .slice(from)
      .some((o) => o.authorization === `Bearer ${due.accessToken}`),
  };

  // ---------------------------------------------------------------- persist headers, by choice
  await page.click('button[aria-label="Open settings dialog"]');
  await page.click("#enable-persist-headers");
  await page.keyboard.press("Escape");
  await openHeaders();
  await setEditor(HEADERS_EDITOR, JSON.stringify({ "X-Example": "kept" }));
  await page.waitForFunction(() =>
    (localStorage.getItem("graphiql:headers") || "").includes("kept"),
  );
  await tabsStored({ including: "kept" });
  summary.tabsBeforeReloads = await tabTitles();
  summary.persistedHeaders = [];
  for (let i = 0; i < 2; i++) {
    await signedInAfterReload();
    await openHeaders();
    summary.persistedHeaders.push(await editorValue(HEADERS_EDITOR));
  }
  summary.tabsAfterReloads = await tabTitles();

  // ---------------------------------------------------------------- sign out
  summary.refreshTokenAtSignOut = (await storedSession()).refreshToken;
  const loggedOut = page.waitForResponse((r) =>
    (r.request().postData() || "").includes("GraphiQLPanelLogOut"),
  );
  await page.click('[data-testid="signin-sign-out"]');
  summary.logOutAnswer = (await (await loggedOut).json()).data ?? null;
  await page.waitForSelector('[data-testid="signin-email"]');
  summary.sessionAfterSignOut = await storedSession();
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
