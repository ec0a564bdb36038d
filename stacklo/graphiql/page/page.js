/*
 * Stacklo's GraphiQL page: the sign-in panel, the fetcher that carries its token, and the
 * mount. Loaded after the UMD bundles (React, ReactDOM, GraphiQL, graphqlWs); the page's one
 * inline script calls StackloGraphiQL.mount with its settings. Plain browser JavaScript (no
 * JSX, no build step); served as a content-hashed asset.
 *
 * What is stored where:
 * - The panel's sign-in (access and refresh token, who): sessionStorage, key
 *   "stacklo.graphiql.session". This tab only: it survives a reload, is gone when the tab
 *   closes, and is never written to localStorage. Sign out clears it (and revokes the
 *   session on the server).
 * - GraphiQL's own state (tabs, queries, variables, history, theme, pane sizes):
 *   localStorage, keys "graphiql:*", as GraphiQL always does.
 * - The Headers editor: in localStorage only when the user turns "Persist headers" on in
 *   GraphiQL's settings (off by default; the choice itself is remembered there). Until
 *   then no header reaches storage, not even in GraphiQL's history (see graphiqlStorage).
 *
 * Which Authorization a request carries (the Headers editor wins):
 * 1. an Authorization header typed in the Headers editor (any letter case), sent exactly as
 *    typed; an empty one ("Authorization": "") runs that tab anonymously;
 * 2. otherwise, while signed in through the panel, "Bearer <its access token>";
 * 3. otherwise none.
 * The same choice goes to the WebSocket, whose connection_init payload is
 * {authorization: "Bearer <token>"} (a browser cannot set headers on a WebSocket). A socket
 * never keeps an old identity: a new graphql-ws client is made whenever that value changes,
 * and the panel's socket is closed at once when its token changes (refresh, sign out).
 */
(function () {
  "use strict";

  var h = React.createElement;
  var UI = GraphiQL.React;

  var SESSION_KEY = "stacklo.graphiql.session";
  // GraphiQL's own key (its storage namespace "graphiql" + its setting's name).
  var PERSIST_HEADERS_KEY = "graphiql:shouldPersistHeaders";
  // Refresh the access token this long before it expires (at most a quarter of its life)...
  var REFRESH_AHEAD_MS = 60 * 1000;
  // ...but never sooner than this after the last try, so no clock or error can make it loop.
  var MIN_REFRESH_GAP_MS = 10 * 1000;
  // The server closes a socket with 4403 when its session ends or its token expires: the same
  // token can never succeed again, so graphql-ws must not retry it.
  var SOCKET_SESSION_ENDED = 4403;

  var SESSION_FIELDS =
    "session { accessToken refreshToken tokenType expiresAt } userErrors { code message field }";
  var LOG_IN =
    "mutation GraphiQLPanelLogIn($input: LogInInput!) { logIn(input: $input) { " +
    SESSION_FIELDS +
    " } }";
  var REFRESH =
    "mutation GraphiQLPanelRefresh($input: RefreshSessionInput!) { " +
    "refreshSession(input: $input) { " +
    SESSION_FIELDS +
    " } }";
  var LOG_OUT =
    "mutation GraphiQLPanelLogOut($input: LogOutInput!) { " +
    "logOut(input: $input) { success userErrors { code message } } }";
  var WHO = "query GraphiQLPanelWho { me { email roles } }";

  // ------------------------------------------------------------------------ helpers

  function storageGet(storage, key) {
    try {
      return storage.getItem(key);
    } catch (e) {
      return null; // storage disabled: the panel still works, for this page view only
    }
  }

  function storageSet(storage, key, value) {
    try {
      if (value == null) storage.removeItem(key);
      else storage.setItem(key, value);
    } catch (e) {
      /* storage disabled or full: keep going in memory */
    }
  }

  // Date.parse accepts at most milliseconds in some engines; the server sends microseconds.
  function parseTime(text) {
    if (!text) return NaN;
    return Date.parse(String(text).replace(/(\.\d{3})\d+/, "$1"));
  }

  function errorMessage(answer) {
    var body = answer && answer.body;
    if (body && body.errors && body.errors.length) {
      return body.errors
        .map(function (e) {
          return e && e.message ? e.message : "Unknown error";
        })
        .join("; ");
    }
    if (answer && answer.status && answer.status !== 200) return "HTTP " + answer.status;
    return "The server gave no usable answer.";
  }

  function userErrorMessage(errors) {
    return errors
      .map(function (e) {
        return e.message || e.code;
      })
      .join("; ");
  }

  function isUnauthenticatedBody(body) {
    return !!(
      body &&
      body.errors &&
      body.errors.some(function (e) {
        return e && e.extensions && e.extensions.code === "UNAUTHENTICATED";
      })
    );
  }

  // The panel's own GraphQL requests: plain fetch, not through GraphiQL (so passwords and
  // tokens never land in GraphiQL's history or tabs).
  function post(url, query, variables, accessToken) {
    var headers = { "content-type": "application/json", accept: "application/json" };
    if (accessToken) headers.authorization = "Bearer " + accessToken;
    return window
      .fetch(url, {
        method: "POST",
        headers: headers,
        body: JSON.stringify({
          query: query,
          operationName: /^\w+ (\w+)/.exec(query)[1],
          variables: variables || {},
        }),
        credentials: "omit",
        cache: "no-store",
      })
      .then(function (response) {
        return response.json().then(
          function (body) {
            return { status: response.status, date: response.headers.get("date"), body: body };
          },
          function () {
            return { status: response.status, date: response.headers.get("date"), body: null };
          }
        );
      });
  }

  // ------------------------------------------------------------------------ the session

  // The panel's sign-in: state in one object (replaced on every change, for React's
  // useSyncExternalStore), mirrored to sessionStorage.
  function createSession(url) {
    var listeners = new Set();
    var refreshing = null;
    var lastTry = 0;
    var timer = null;
    var state = { session: load(), busy: false, error: null };

    function load() {
      var raw = storageGet(window.sessionStorage, SESSION_KEY);
      if (!raw) return null;
      try {
        var s = JSON.parse(raw);
        if (s && typeof s.accessToken === "string" && typeof s.refreshToken === "string") return s;
      } catch (e) {
        /* unreadable: treat as signed out */
      }
      storageSet(window.sessionStorage, SESSION_KEY, null);
      return null;
    }

    function set(patch) {
      var before = state.session;
      state = Object.assign({}, state, patch);
      if (state.session !== before) {
        storageSet(
          window.sessionStorage,
          SESSION_KEY,
          state.session ? JSON.stringify(state.session) : null
        );
        schedule();
      }
      listeners.forEach(function (listener) {
        listener();
      });
    }

    // expiresAt is the server's clock; measure the token's life against the answer's Date
    // header (same clock) and count it from now on ours, so a skewed local clock does not
    // matter.
    function fromPayload(session, answerDate, who) {
      var expires = parseTime(session.expiresAt);
      var serverNow = parseTime(answerDate);
      var life = expires - (isFinite(serverNow) ? serverNow : Date.now());
      if (!isFinite(life)) life = 5 * 60 * 1000;
      var ahead = Math.min(REFRESH_AHEAD_MS, life / 4);
      return {
        accessToken: session.accessToken,
        refreshToken: session.refreshToken,
        tokenType: session.tokenType,
        expiresAt: session.expiresAt,
        refreshAt: Date.now() + Math.max(0, life - ahead),
        email: who ? who.email : null,
        roles: who ? who.roles : [],
      };
    }

    function schedule() {
      if (timer !== null) window.clearTimeout(timer);
      timer = null;
      if (!state.session) return;
      var delay = Math.max(
        state.session.refreshAt - Date.now(),
        lastTry + MIN_REFRESH_GAP_MS - Date.now(),
        0
      );
      timer = window.setTimeout(function () {
        timer = null;
        refresh();
      }, delay);
    }

    function authorization() {
      return state.session ? "Bearer " + state.session.accessToken : null;
    }

    // Rotate the refresh token for a new access token; one at a time (the server revokes the
    // whole session when an already-rotated refresh token is presented again). Resolves to
    // the Authorization value to use now, or null when signed out.
    function refresh() {
      if (refreshing) return refreshing;
      var current = state.session;
      if (!current) return Promise.resolve(null);
      lastTry = Date.now();
      refreshing = post(url, REFRESH, { input: { refreshToken: current.refreshToken } })
        .then(
          function (answer) {
            if (state.session !== current) return authorization(); // signed out meanwhile
            var payload = answer.body && answer.body.data && answer.body.data.refreshSession;
            if (payload && payload.session) {
              set({
                session: Object.assign(fromPayload(payload.session, answer.date), {
                  email: current.email,
                  roles: current.roles,
                }),
                error: null,
              });
            } else if (payload && payload.userErrors && payload.userErrors.length) {
              // Revoked, expired or rotated elsewhere (a duplicated tab): it is over.
              set({
                session: null,
                error:
                  "Your session ended (" +
                  userErrorMessage(payload.userErrors) +
                  "). Sign in again.",
              });
            } else {
              // Rate limited, the server down...: keep the session and try again soon.
              set({ error: "Could not refresh the session: " + errorMessage(answer) });
              schedule();
            }
            return authorization();
          },
          function (networkError) {
            if (state.session === current) {
              set({ error: "Could not refresh the session: " + networkError.message });
              schedule();
            }
            return authorization();
          }
        )
        .finally(function () {
          refreshing = null;
        });
      return refreshing;
    }

    // The Authorization value for a request about to go out, refreshed first when due.
    function fresh() {
      if (refreshing) return refreshing;
      var s = state.session;
      if (s && Date.now() >= s.refreshAt && Date.now() - lastTry >= MIN_REFRESH_GAP_MS) {
        return refresh();
      }
      return Promise.resolve(authorization());
    }

    // The server refused `auth`: refresh, unless that already happened meanwhile.
    function renew(auth) {
      var now = authorization();
      return now && now !== auth && !refreshing ? Promise.resolve(now) : refresh();
    }

    function who(accessToken) {
      return post(url, WHO, {}, accessToken);
    }

    function logIn(email, password) {
      if (state.busy) return Promise.resolve();
      set({ busy: true, error: null });
      return post(url, LOG_IN, { input: { email: email, password: password } })
        .then(function (answer) {
          var payload = answer.body && answer.body.data && answer.body.data.logIn;
          if (!payload) throw new Error(errorMessage(answer));
          if (payload.userErrors && payload.userErrors.length) {
            throw new Error(userErrorMessage(payload.userErrors));
          }
          if (!payload.session) throw new Error("The server returned no session.");
          return who(payload.session.accessToken).then(function (whoAnswer) {
            var me = whoAnswer.body && whoAnswer.body.data && whoAnswer.body.data.me;
            if (!me) throw new Error(errorMessage(whoAnswer));
            lastTry = 0;
            set({ session: fromPayload(payload.session, answer.date, me), busy: false });
          });
        })
        .catch(function (error) {
          set({ busy: false, error: error.message || String(error) });
        });
    }

    // Forget the tokens here first (nothing is sent with them after the click), then revoke
    // the session on the server.
    function logOut() {
      var current = state.session;
      if (!current) return Promise.resolve();
      return Promise.resolve(refreshing)
        .then(function () {
          var latest = state.session || current;
          set({ session: null, busy: true, error: null });
          return post(url, LOG_OUT, { input: { refreshToken: latest.refreshToken } });
        })
        .then(function (answer) {
          var payload = answer.body && answer.body.data && answer.body.data.logOut;
          if (!payload || !payload.success) {
            throw new Error(
              payload && payload.userErrors && payload.userErrors.length
                ? userErrorMessage(payload.userErrors)
                : errorMessage(answer)
            );
          }
          set({ busy: false });
        })
        .catch(function (error) {
          set({
            busy: false,
            error: "Signed out in this tab, but the server said: " + (error.message || error),
          });
        });
    }

    // After a reload: is the stored session still good (who is it)? A refused token is
    // refreshed once; a session that is over is forgotten.
    function verify() {
      function ask(auth, retried) {
        if (!auth) return;
        return who(auth.slice("Bearer ".length)).then(function (answer) {
          var me = answer.body && answer.body.data && answer.body.data.me;
          var refused = isUnauthenticatedBody(answer.body) || answer.status === 401;
          if (me && state.session) {
            set({
              session: Object.assign({}, state.session, { email: me.email, roles: me.roles }),
            });
          } else if (refused && !retried) {
            return renew(auth).then(function (renewed) {
              return ask(renewed, true);
            });
          } else if (refused && authorization() === auth) {
            set({ session: null, error: "Your session ended: " + errorMessage(answer) });
          }
          // Anything else (rate limited, the server down): keep the session; the next
          // request will tell.
        });
      }
      return fresh()
        .then(function (auth) {
          return ask(auth, false);
        })
        .catch(function () {
          /* offline: keep what we have; the next request will tell */
        });
    }

    schedule();
    return {
      get: function () {
        return state;
      },
      subscribe: function (listener) {
        listeners.add(listener);
        return function () {
          listeners.delete(listener);
        };
      },
      authorization: authorization,
      fresh: fresh,
      refresh: refresh,
      renew: renew,
      logIn: logIn,
      logOut: logOut,
      verify: verify,
    };
  }

  // ------------------------------------------------------------------------ the fetcher

  // The Authorization header typed in the Headers editor: its value ("" when empty), or
  // undefined when none was typed.
  function typedAuthorization(headers) {
    if (!headers || typeof headers !== "object") return undefined;
    for (var name in headers) {
      if (!Object.prototype.hasOwnProperty.call(headers, name)) continue;
      if (name.toLowerCase() === "authorization") {
        return headers[name] == null ? "" : String(headers[name]);
      }
    }
    return undefined;
  }

  // "Bearer <token>" for the WebSocket's connection_init, or null (anonymous).
  function bearer(value) {
    var token = String(value || "").trim();
    if (/^bearer\b/i.test(token)) token = token.slice(6).trim();
    return token ? "Bearer " + token : null;
  }

  function rejectedForAuth(response) {
    if (response.status === 401) return Promise.resolve(true);
    if (!/json/i.test(response.headers.get("content-type") || "")) return Promise.resolve(false);
    return response
      .clone()
      .json()
      .then(isUnauthenticatedBody, function () {
        return false;
      });
  }

  function createFetcher(graphqlPath, session) {
    var wsUrl = new URL(graphqlPath, window.location.href);
    wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
    wsUrl.hash = "";

    // GraphiQL's HTTP requests (queries, mutations, introspection) go through this. The
    // Headers editor's values are already in init.headers, so a typed Authorization is seen
    // here and wins; otherwise the panel's token is added, and a request it gets refused
    // (401 or UNAUTHENTICATED: expired in flight, refreshed elsewhere) is sent once more
    // after a refresh.
    function panelFetch(input, init) {
      init = init || {};
      var headers = new Headers(init.headers);
      if (headers.has("authorization")) return window.fetch(input, init);
      function send(auth) {
        if (!auth) return window.fetch(input, init);
        var withAuth = new Headers(headers);
        withAuth.set("authorization", auth);
        return window.fetch(input, Object.assign({}, init, { headers: withAuth }));
      }
      return session.fresh().then(function (auth) {
        return send(auth).then(function (response) {
          if (!auth) return response;
          return rejectedForAuth(response).then(function (rejected) {
            if (!rejected) return response;
            return session.renew(auth).then(function (renewed) {
              return renewed && renewed !== auth ? send(renewed) : response;
            });
          });
        });
      });
    }

    var current = null; // {auth, fromPanel, wsClient, fetcher}

    function fetcherFor(auth, fromPanel) {
      if (current && current.auth === auth) return current.fetcher;
      if (current) current.wsClient.dispose();
      var wsClient = graphqlWs.createClient({
        url: wsUrl.href,
        lazy: true,
        connectionParams: auth ? { authorization: auth } : {},
        shouldRetry: function (event) {
          return !!event && typeof event.code === "number" && event.code !== SOCKET_SESSION_ENDED;
        },
      });
      current = {
        auth: auth,
        fromPanel: fromPanel,
        wsClient: wsClient,
        fetcher: GraphiQL.createFetcher({
          url: graphqlPath,
          fetch: panelFetch,
          wsClient: wsClient,
        }),
      };
      return current.fetcher;
    }

    // The panel's token changed (refreshed, signed out, signed in): close its socket now.
    session.subscribe(function () {
      if (current && current.fromPanel && current.auth !== session.authorization()) {
        current.wsClient.dispose();
        current = null;
      }
    });

    return function fetcher(params, opts) {
      var typed = typedAuthorization(opts && opts.headers);
      if (typed !== undefined) return fetcherFor(bearer(typed), false)(params, opts);
      return session.fresh().then(function (auth) {
        return fetcherFor(auth, true)(params, opts);
      });
    };
  }

  // ------------------------------------------------------------------------ the panel

  function KeyIcon() {
    return h(
      "svg",
      { viewBox: "0 0 24 24", fill: "none", height: "1em", "aria-hidden": "true" },
      h("circle", { cx: "7.5", cy: "15.5", r: "4.75", stroke: "currentColor", strokeWidth: 1.5 }),
      h("path", {
        d: "M11 12L20.25 2.75M16.5 6.5L19.5 9.5M14 9L16.5 11.5",
        stroke: "currentColor",
        strokeWidth: 1.5,
        strokeLinecap: "round",
      })
    );
  }

  function createPlugin(session) {
    function useSession() {
      return React.useSyncExternalStore(session.subscribe, session.get);
    }

    // The sidebar button's icon: a dot on the key while someone is signed in.
    function Icon() {
      var state = useSession();
      return h(
        "span",
        { className: "stacklo-signin-icon" + (state.session ? " signed-in" : "") },
        h(KeyIcon)
      );
    }

    function Content() {
      var state = useSession();
      var schema = UI.useSchemaContext();
      var signedIn = !!state.session;
      var emailRef = React.useRef(null);
      var passwordRef = React.useRef(null);
      var wasSignedIn = React.useRef(signedIn);

      // Where introspection is for staff only, the schema appears once staff sign in.
      React.useEffect(
        function () {
          if (wasSignedIn.current !== signedIn && schema && (!schema.schema || schema.fetchError)) {
            schema.introspect();
          }
          wasSignedIn.current = signedIn;
        },
        [signedIn]
      );

      function onSubmit(event) {
        event.preventDefault();
        var password = passwordRef.current.value;
        passwordRef.current.value = "";
        session.logIn(emailRef.current.value.trim(), password);
      }

      var error = state.error
        ? h(
            "p",
            { className: "stacklo-signin-error", role: "alert", "data-testid": "signin-error" },
            state.error
          )
        : null;

      var body;
      if (signedIn) {
        var s = state.session;
        body = h(
          "div",
          null,
          h(
            "p",
            null,
            "Signed in as ",
            h("strong", { "data-testid": "signin-who" }, s.email || "(checking...)"),
            s.roles && s.roles.length ? " (" + s.roles.join(", ") + ")" : null
          ),
          h(
            "p",
            { className: "stacklo-signin-note" },
            "Every request from this page carries this session's token unless the Headers " +
              "editor has an Authorization header. The token is refreshed before it expires."
          ),
          h(
            UI.Button,
            {
              type: "button",
              onClick: session.logOut,
              disabled: state.busy,
              "data-testid": "signin-sign-out",
            },
            "Sign out"
          ),
          error
        );
      } else {
        body = h(
          "form",
          { onSubmit: onSubmit, className: "stacklo-signin-form", "data-testid": "signin-form" },
          h(
            "label",
            null,
            "Email",
            h("input", {
              ref: emailRef,
              type: "email",
              name: "email",
              autoComplete: "username",
              required: true,
              disabled: state.busy,
              "data-testid": "signin-email",
            })
          ),
          h(
            "label",
            null,
            "Password",
            h("input", {
              ref: passwordRef,
              type: "password",
              name: "password",
              autoComplete: "current-password",
              required: true,
              disabled: state.busy,
              "data-testid": "signin-password",
            })
          ),
          h(
            UI.Button,
            { type: "submit", disabled: state.busy, "data-testid": "signin-submit" },
            state.busy ? "Signing in..." : "Sign in"
          ),
          error,
          h(
            "p",
            { className: "stacklo-signin-note" },
            "The tokens are kept for this browser tab only (sessionStorage) and sent with " +
              "every request made here, HTTP and WebSocket. An Authorization header typed in " +
              "the Headers editor wins over them."
          )
        );
      }

      return h(
        "section",
        { className: "stacklo-signin", "aria-label": "Sign in" },
        h("h2", { className: "stacklo-signin-title" }, signedIn ? "Signed in" : "Sign in"),
        body,
        h(
          "p",
          { className: "stacklo-signin-note" },
          "GraphiQL keeps your tabs and history in this browser (localStorage); headers only " +
            "if you turn on Settings, Persist headers."
        )
      );
    }

    var plugin = { title: "Sign in", icon: Icon, content: Content };
    return plugin;
  }

  // GraphiQL 3.8.3, mounting with shouldPersistHeaders on, stores the headers of an editor that
  // does not exist yet (""), so the next reload opens a new, empty tab instead of the user's.
  // Once the editor exists, store its headers again. Rendered inside GraphiQL (the toolbar).
  function KeepPersistedHeaders() {
    var editor = UI.useEditorContext();
    var storage = UI.useStorageContext();
    var headerEditor = editor && editor.headerEditor;
    var persist = editor && editor.shouldPersistHeaders;
    React.useEffect(
      function () {
        if (headerEditor && persist && storage) storage.set("headers", headerEditor.getValue());
      },
      [headerEditor, persist, storage]
    );
    return null;
  }

  // GraphiQL's storage: localStorage, keys "graphiql:*", as by default; except that
  // GraphiQL 3.8.3 saves the headers of every run in its history ("queries", "favorites")
  // whatever "Persist headers" says. There they are dropped unless the user turned it on.
  function graphiqlStorage() {
    var NAMESPACE = "graphiql:";
    var HISTORY = { "graphiql:queries": true, "graphiql:favorites": true };
    function withoutHeaders(value) {
      try {
        return JSON.stringify(JSON.parse(value), function (key, v) {
          return key === "headers" ? undefined : v;
        });
      } catch (e) {
        return value;
      }
    }
    function ours() {
      return Object.keys(window.localStorage).filter(function (key) {
        return key.indexOf(NAMESPACE) === 0;
      });
    }
    return {
      getItem: function (key) {
        return window.localStorage.getItem(key);
      },
      setItem: function (key, value) {
        if (HISTORY[key] && window.localStorage.getItem(PERSIST_HEADERS_KEY) !== "true") {
          value = withoutHeaders(value);
        }
        window.localStorage.setItem(key, value);
      },
      removeItem: function (key) {
        window.localStorage.removeItem(key);
      },
      clear: function () {
        ours().forEach(function (key) {
          window.localStorage.removeItem(key);
        });
      },
      get length() {
        return ours().length;
      },
    };
  }

  // ------------------------------------------------------------------------ mount

  function mount(element, graphqlPath, props) {
    var session = createSession(graphqlPath);
    session.verify();
    // GraphiQL 3.8.3 applies its shouldPersistHeaders prop on every mount, over the user's
    // stored choice; so pass the stored choice (off until the user turns it on in Settings)
    // and show the setting explicitly (GraphiQL hides it when the prop is false).
    var persistHeaders = storageGet(window.localStorage, PERSIST_HEADERS_KEY) === "true";
    var plugin = createPlugin(session);
    ReactDOM.createRoot(element).render(
      h(
        GraphiQL,
        Object.assign({}, props, {
          fetcher: createFetcher(graphqlPath, session),
          plugins: [plugin],
          // Signed out: the page opens on the sign-in panel.
          visiblePlugin: session.get().session ? undefined : plugin,
          storage: graphiqlStorage(),
          shouldPersistHeaders: persistHeaders,
          showPersistHeadersSettings: true,
          toolbar: { additionalComponent: KeepPersistedHeaders },
        })
      )
    );
  }

  window.StackloGraphiQL = { mount: mount };
})();
