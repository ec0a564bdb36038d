/*
 * Stacklo's operations dashboard (/ops): staff sign in, then watch KPI tiles (platformStats,
 * polled every 2 s), the activity feed (platformActivityEvents) and rates (rateUpdated) over
 * graphql-ws. Plain browser JavaScript, no build step; loaded after graphql-ws's UMD bundle
 * (the global `graphqlWs`). Data reaches the DOM through textContent only.
 *
 * The tokens live in sessionStorage ("stacklo.ops.session"): this tab only, kept across a
 * reload, gone with the tab. The access token is refreshed before it expires; the socket
 * keeps its token until the server closes it (4403: expired or the session ended), then
 * reconnects with a fresh one. graphql-ws retries forever and resubscribes with the same
 * payload object, whose `after` is kept at the last event's cursor: the server replays what
 * was missed while disconnected, and nothing twice.
 */
(function () {
  "use strict";

  var SESSION_KEY = "stacklo.ops.session";
  var POLL_MS = 2000; // platformStats is cached server-side for about as long
  var FEED_MAX = 50;
  // Refresh the access token this long before it expires (at most a quarter of its life)...
  var REFRESH_AHEAD_MS = 60 * 1000;
  // ...but never sooner than this after the last try, so no clock or error makes it loop.
  var MIN_REFRESH_GAP_MS = 10 * 1000;
  var SESSION_ENDED = 4403; // the server's close code: token expired or session ended
  var RESUBSCRIBE_MS = 5000; // after a subscription ended with an error
  var STAFF = ["SUPPORT", "ADMIN"];

  var ui = {};
  var numbers = new Intl.NumberFormat("en-US");

  // ------------------------------------------------------------------------ helpers

  function byId(id) {
    return document.getElementById(id);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }

  function storageGet(key) {
    try {
      return window.sessionStorage.getItem(key);
    } catch (e) {
      return null; // storage disabled: signed in for this page view only
    }
  }

  function storageSet(key, value) {
    try {
      if (value == null) window.sessionStorage.removeItem(key);
      else window.sessionStorage.setItem(key, value);
    } catch (e) {
      /* storage disabled or full: keep going in memory */
    }
  }

  // Date.parse takes at most milliseconds in some engines; the server sends microseconds.
  function parseTime(text) {
    if (!text) return NaN;
    return Date.parse(String(text).replace(/(\.\d{3})\d+/, "$1"));
  }

  function clock(text) {
    var t = parseTime(text);
    return isFinite(t) ? new Date(t).toLocaleTimeString("en-GB") : "";
  }

  // An exact decimal string with thousands separators, never through a float.
  function decimal(text) {
    var parts = String(text).split(".");
    var sign = parts[0].charAt(0) === "-" ? "-" : "";
    var whole = parts[0].replace(/^-/, "").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return sign + whole + (parts.length > 1 ? "." + parts[1] : "");
  }

  function money(m) {
    return m ? m.currency + " " + decimal(m.amount) : "";
  }

  function codes(errors) {
    return (errors || []).map(function (e) {
      return (e && e.extensions && e.extensions.code) || "";
    });
  }

  function messages(errors) {
    return (errors || [])
      .map(function (e) {
        return (e && (e.message || e.code)) || "Unknown error";
      })
      .join("; ");
  }

  function showError(text) {
    ui.error.textContent = text || "";
    ui.error.hidden = !text;
    return text;
  }

  // Take down a message once what it said is over, unless another has replaced it.
  function clearError(text) {
    if (text && ui.error.textContent === text) showError("");
  }

  function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
  }

  function delay(ms) {
    return new Promise(function (resolve) {
      window.setTimeout(resolve, ms);
    });
  }

  // ------------------------------------------------------------------------ HTTP

  // One operation of the page's document over POST: {status, date, body}.
  function createApi(settings) {
    return function post(operationName, variables, accessToken) {
      var headers = { "content-type": "application/json", accept: "application/json" };
      if (accessToken) headers.authorization = "Bearer " + accessToken;
      return window
        .fetch(settings.graphqlPath, {
          method: "POST",
          headers: headers,
          body: JSON.stringify({
            query: settings.operations,
            operationName: operationName,
            variables: variables || {},
          }),
          credentials: "omit",
          cache: "no-store",
        })
        .then(function (response) {
          var answer = { status: response.status, date: response.headers.get("date") };
          return response.json().then(
            function (body) {
              answer.body = body;
              return answer;
            },
            function () {
              answer.body = null;
              return answer;
            }
          );
        });
    };
  }

  function failure(answer) {
    var body = answer && answer.body;
    if (body && body.errors && body.errors.length) return messages(body.errors);
    if (answer && answer.status && answer.status !== 200) return "HTTP " + answer.status;
    return "The server gave no usable answer.";
  }

  function refused(answer) {
    return (
      answer.status === 401 ||
      codes(answer.body && answer.body.errors).indexOf("UNAUTHENTICATED") !== -1
    );
  }

  // ------------------------------------------------------------------------ the session

  // The staff member's sign-in: tokens mirrored to sessionStorage, refreshed ahead of expiry.
  // onEnded(message) runs when the session is over (refresh refused, signed out).
  function createSession(post, onEnded) {
    var state = load();
    var refreshing = null;
    var lastTry = 0; // the last refresh
    var lastRenew = 0; // the last refresh because a token was refused
    var timer = null;

    function load() {
      var raw = storageGet(SESSION_KEY);
      if (!raw) return null;
      try {
        var s = JSON.parse(raw);
        if (s && typeof s.accessToken === "string" && typeof s.refreshToken === "string") return s;
      } catch (e) {
        /* unreadable: signed out */
      }
      storageSet(SESSION_KEY, null);
      return null;
    }

    function set(next) {
      state = next;
      storageSet(SESSION_KEY, next ? JSON.stringify(next) : null);
      schedule();
    }

    // expiresAt is on the server's clock: measure the token's life against the answer's Date
    // header (same clock) and count it from now on ours, so a skewed local clock is harmless.
    function fromPayload(session, answerDate, who) {
      var serverNow = parseTime(answerDate);
      var life = parseTime(session.expiresAt) - (isFinite(serverNow) ? serverNow : Date.now());
      if (!isFinite(life)) life = 5 * 60 * 1000;
      return {
        accessToken: session.accessToken,
        refreshToken: session.refreshToken,
        expiresAt: session.expiresAt,
        refreshAt: Date.now() + Math.max(0, life - Math.min(REFRESH_AHEAD_MS, life / 4)),
        email: who ? who.email : null,
        roles: who ? who.roles : [],
      };
    }

    function schedule() {
      if (timer !== null) window.clearTimeout(timer);
      timer = null;
      if (!state) return;
      var wait = Math.max(
        state.refreshAt - Date.now(),
        lastTry + MIN_REFRESH_GAP_MS - Date.now(),
        0
      );
      timer = window.setTimeout(function () {
        timer = null;
        refresh();
      }, wait);
    }

    function token() {
      return state ? state.accessToken : null;
    }

    function end(message) {
      set(null);
      onEnded(message);
    }

    // Trade the refresh token for new tokens, one at a time (presenting a used refresh token
    // again ends the session). Resolves to the access token to use now, or null.
    function refresh() {
      if (refreshing) return refreshing;
      var current = state;
      if (!current) return Promise.resolve(null);
      lastTry = Date.now();
      refreshing = post("OpsRefresh", { input: { refreshToken: current.refreshToken } })
        .then(
          function (answer) {
            if (state !== current) return token(); // signed out meanwhile
            var payload = answer.body && answer.body.data && answer.body.data.refreshSession;
            if (payload && payload.session) {
              var next = fromPayload(payload.session, answer.date, null);
              next.email = current.email;
              next.roles = current.roles;
              set(next);
            } else if (payload && payload.userErrors && payload.userErrors.length) {
              end("Your session ended (" + messages(payload.userErrors) + "). Sign in again.");
            } else {
              schedule(); // rate limited, the server down...: keep it, try again soon
            }
            return token();
          },
          function () {
            if (state === current) schedule(); // offline: try again soon
            return token();
          }
        )
        .finally(function () {
          refreshing = null;
        });
      return refreshing;
    }

    // The access token for a request about to go out, refreshed first when due.
    function fresh() {
      if (refreshing) return refreshing;
      if (
        state &&
        Date.now() >= state.refreshAt &&
        Date.now() - lastTry >= MIN_REFRESH_GAP_MS
      ) {
        return refresh();
      }
      return Promise.resolve(token());
    }

    // `used` was refused (401, UNAUTHENTICATED, a socket closed with 4403): refresh now (a
    // session ended elsewhere then shows at once), unless that happened meanwhile; a refusal
    // refreshes at most once per MIN_REFRESH_GAP_MS, so a server that refuses every token
    // cannot make it loop.
    function renew(used) {
      if (refreshing) return refreshing;
      var now = token();
      if (now && now !== used) return Promise.resolve(now);
      if (Date.now() - lastRenew < MIN_REFRESH_GAP_MS) return Promise.resolve(now);
      lastRenew = Date.now();
      return refresh();
    }

    // A request with the session's token; refused once, it is refreshed and sent again.
    function authorized(operationName, variables) {
      return fresh().then(function (used) {
        return post(operationName, variables, used).then(function (answer) {
          if (!used || !refused(answer)) return answer;
          return renew(used).then(function (renewed) {
            return renewed && renewed !== used ? post(operationName, variables, renewed) : answer;
          });
        });
      });
    }

    function who() {
      return authorized("OpsWho", {}).then(function (answer) {
        var me = answer.body && answer.body.data && answer.body.data.me;
        if (!me) throw new Error(refused(answer) ? "Your session ended." : failure(answer));
        return me;
      });
    }

    function logIn(email, password) {
      return post("OpsLogIn", { input: { email: email, password: password } }).then(
        function (answer) {
          var payload = answer.body && answer.body.data && answer.body.data.logIn;
          if (!payload) throw new Error(failure(answer));
          if (payload.userErrors && payload.userErrors.length) {
            throw new Error(messages(payload.userErrors));
          }
          if (!payload.session) throw new Error("The server returned no session.");
          lastTry = 0;
          set(fromPayload(payload.session, answer.date, null));
          return who().then(function (me) {
            set(Object.assign({}, state, { email: me.email, roles: me.roles }));
            return me;
          });
        }
      );
    }

    // Forget the tokens here first (nothing is sent with them after the click), then end the
    // session on the server.
    function logOut() {
      var current = state;
      if (!current) return Promise.resolve();
      return Promise.resolve(refreshing).then(function () {
        var latest = state || current;
        set(null);
        return post("OpsLogOut", { input: { refreshToken: latest.refreshToken } }).then(
          function (answer) {
            var payload = answer.body && answer.body.data && answer.body.data.logOut;
            if (!payload || !payload.success) {
              throw new Error(
                "Signed out in this tab, but the server said: " +
                  (payload && payload.userErrors && payload.userErrors.length
                    ? messages(payload.userErrors)
                    : failure(answer))
              );
            }
          }
        );
      });
    }

    schedule();
    return {
      get: function () {
        return state;
      },
      token: token,
      fresh: fresh,
      renew: renew,
      authorized: authorized,
      who: who,
      logIn: logIn,
      logOut: logOut,
      forget: function () {
        set(null);
      },
    };
  }

  // ------------------------------------------------------------------------ the dashboard

  function createDashboard(settings, session) {
    var stopped = false;
    var pollTimer = null;
    var retryTimers = [];
    var disposers = [];
    var hold = null; // a test hook: while set, the socket waits to reconnect
    var socketToken = null; // the token the current socket signed in with
    var refusedToken = null; // a token the server closed a socket for (4403)
    var rates = {};
    var closeCodes = []; // the socket's close codes, for tests
    var statsError = null; // the message shown when platformStats last failed

    var wsUrl = new URL(settings.graphqlPath, window.location.href);
    wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
    wsUrl.hash = "";

    // graphql-ws sends this same object again when it resubscribes after a reconnect: keeping
    // `after` at the last cursor seen makes the server replay exactly what was missed.
    var activity = {
      query: settings.operations,
      operationName: "OpsActivity",
      variables: { after: null },
    };
    var ratesRequest = { query: settings.operations, operationName: "OpsRates", variables: {} };

    var client = graphqlWs.createClient({
      url: function () {
        return (hold ? hold.promise : Promise.resolve()).then(function () {
          return wsUrl.href;
        });
      },
      connectionParams: function () {
        var token = refusedToken ? session.renew(refusedToken) : session.fresh();
        return token.then(function (current) {
          refusedToken = null;
          if (!current) throw new Error("Signed out");
          socketToken = current;
          return { authorization: "Bearer " + current };
        });
      },
      retryAttempts: Infinity,
      shouldRetry: function () {
        return true;
      },
      // Soon at first, then backing off to 10 s, with jitter so many tabs do not stampede.
      retryWait: function (retries) {
        return delay(Math.min(500 * Math.pow(2, retries), 10000) + Math.random() * 500);
      },
      on: {
        connecting: function (isRetry) {
          if (stopped) return;
          if (isRetry) setStatus("reconnecting", "Reconnecting...");
          else setStatus("connecting", "Connecting...");
        },
        connected: function () {
          if (!stopped) setStatus("live", "Live");
        },
        closed: function (event) {
          if (closeCodes.length < 100) closeCodes.push(event && event.code);
          if (event && event.code === SESSION_ENDED) refusedToken = socketToken;
          if (!stopped) setStatus("reconnecting", "Reconnecting...");
        },
      },
    });

    function keep(request, onData) {
      var interrupted = null; // the message shown when it last ended with an error
      function subscribe() {
        if (stopped) return;
        var failed = null;
        var dispose = client.subscribe(request, {
          next: function (result) {
            if (result.data) {
              clearError(interrupted);
              onData(result.data);
            } else if (result.errors) {
              failed = result.errors;
            }
          },
          error: function (error) {
            // GraphQL errors (an array), or what ended the socket (a close event, an Error).
            failed = Array.isArray(error)
              ? error
              : [{ message: (error && (error.reason || error.message)) || String(error) }];
            retry(failed);
          },
          complete: function () {
            retry(failed);
          },
        });
        disposers.push(dispose);
        function retry(errors) {
          var index = disposers.indexOf(dispose);
          if (index !== -1) disposers.splice(index, 1);
          if (stopped) return;
          var found = codes(errors);
          if (found.indexOf("FORBIDDEN") !== -1) {
            showError("This account may not watch platform activity: " + messages(errors));
            return;
          }
          var lost =
            found.indexOf("CURSOR_EXPIRED") !== -1 || found.indexOf("INVALID_INPUT") !== -1;
          if (lost && request.variables.after) {
            request.variables.after = null; // too far behind: carry on live, say so
            showError("Some activity was missed: the feed was away longer than it is kept.");
            subscribe();
            return;
          }
          if (errors) interrupted = showError("Live data interrupted: " + messages(errors));
          retryTimers.push(window.setTimeout(subscribe, RESUBSCRIBE_MS));
        }
      }
      subscribe();
    }

    function addEvent(data) {
      var event = data.platformActivityEvents;
      if (!event) return;
      if (event.cursor) activity.variables.after = event.cursor;
      var t = event.transaction || {};
      var item = el("li", "ops-event ops-tx-" + String(t.status || "").toLowerCase());
      item.dataset.reference = t.reference || "";
      item.appendChild(el("time", "ops-event-time", clock(t.createdAt)));
      item.appendChild(el("span", "ops-event-ref", t.reference));
      item.appendChild(el("span", "ops-event-kind", t.kind));
      item.appendChild(el("span", "ops-event-amount", money(t.amount)));
      item.appendChild(el("span", "ops-event-status", t.status));
      ui.feed.insertBefore(item, ui.feed.firstChild);
      while (ui.feed.children.length > FEED_MAX) ui.feed.removeChild(ui.feed.lastChild);
      ui.feedEmpty.hidden = true;
    }

    function addRate(data) {
      var r = data.rateUpdated;
      if (!r) return;
      var pair = r.base + "/" + r.quote;
      var row = rates[pair];
      if (!row) {
        row = rates[pair] = el("tr");
        row.dataset.pair = pair;
        row.appendChild(el("th", null, pair)).scope = "row";
        row.appendChild(el("td", "ops-num"));
        row.appendChild(el("td"));
        var names = Object.keys(rates).sort();
        ui.rates.insertBefore(row, rates[names[names.indexOf(pair) + 1]] || null);
      }
      row.children[1].textContent = decimal(r.mid);
      row.children[2].textContent = clock(r.updatedAt);
    }

    function showStats(stats) {
      var tiles = {
        transfersLastMinute: stats.transfersLastMinute,
        pendingKyc: stats.pendingKyc,
        openCheckouts: stats.openCheckouts,
        overdueInstallments: stats.overdueInstallments,
        subscribersConnected: stats.subscribersConnected,
        userCount: stats.userCount,
        activeMerchantCount: stats.activeMerchantCount,
      };
      Object.keys(tiles).forEach(function (name) {
        var tile = ui.tiles.querySelector('[data-kpi="' + name + '"]');
        if (tile) tile.textContent = numbers.format(tiles[name]);
      });
      var total = stats.transactionsLastHour;
      var rate = total > 0 ? (100 * stats.failedTransactionsLastHour) / total : 0;
      ui.tiles.querySelector('[data-kpi="failureRate"]').textContent =
        rate.toFixed(1) + "% (" + stats.failedTransactionsLastHour + " of " + total + ")";
      var volume = (stats.volume24h || []).slice().sort(function (a, b) {
        return a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : 0;
      });
      ui.volume.replaceChildren.apply(
        ui.volume,
        volume.length
          ? volume.map(function (m) {
              return el("li", "ops-num", money(m));
            })
          : [el("li", null, "0")]
      );
      ui.generated.textContent = "as of " + clock(stats.generatedAt);
    }

    function poll() {
      pollTimer = null;
      session
        .authorized("OpsStats", {})
        .then(
          function (answer) {
            if (stopped) return;
            var stats = answer.body && answer.body.data && answer.body.data.platformStats;
            if (stats) {
              showStats(stats);
              clearError(statsError);
              ui.generated.classList.remove("ops-stale");
            } else {
              statsError = showError("Platform figures unavailable: " + failure(answer));
              ui.generated.classList.add("ops-stale");
            }
          },
          function () {
            if (!stopped) ui.generated.classList.add("ops-stale"); // offline: keep the last
          }
        )
        .finally(function () {
          if (!stopped) pollTimer = window.setTimeout(poll, POLL_MS);
        });
    }

    function stop() {
      stopped = true;
      if (pollTimer !== null) window.clearTimeout(pollTimer);
      retryTimers.forEach(window.clearTimeout);
      disposers.splice(0).forEach(function (dispose) {
        dispose();
      });
      if (hold) hold.resolve();
      // dispose() waits for a socket still connecting, which fails once signed out: expected.
      Promise.resolve(client.dispose()).catch(function () {});
      setStatus("signed-out", "Signed out");
    }

    setStatus("connecting", "Connecting...");
    keep(activity, addEvent);
    keep(ratesRequest, addRate);
    poll();

    return {
      stop: stop,
      // For tests: drop the socket and keep it down until reconnect().
      disconnect: function () {
        if (!hold) {
          var release;
          var promise = new Promise(function (resolve) {
            release = resolve;
          });
          hold = { promise: promise, resolve: release };
        }
        client.terminate();
      },
      reconnect: function () {
        var h = hold;
        hold = null;
        if (h) h.resolve();
        else client.terminate(); // connected: drop it, it comes straight back
      },
      lastCursor: function () {
        return activity.variables.after;
      },
      closeCodes: function () {
        return closeCodes.slice();
      },
    };
  }

  // ------------------------------------------------------------------------ the page

  function start(settings) {
    [
      ["status", "ops-status"],
      ["error", "ops-error"],
      ["who", "ops-who"],
      ["email", "ops-email"],
      ["signOut", "ops-sign-out"],
      ["signIn", "ops-sign-in"],
      ["form", "ops-sign-in-form"],
      ["formEmail", "ops-sign-in-email"],
      ["formPassword", "ops-sign-in-password"],
      ["formSubmit", "ops-sign-in-submit"],
      ["dashboard", "ops-dashboard"],
      ["tiles", "ops-tiles"],
      ["volume", "ops-volume"],
      ["generated", "ops-generated"],
      ["feed", "ops-feed"],
      ["feedEmpty", "ops-feed-empty"],
      ["rates", "ops-rates"],
    ].forEach(function (pair) {
      ui[pair[0]] = byId(pair[1]);
    });

    if (typeof graphqlWs === "undefined") {
      showError(
        "The live-data script (graphql-ws) did not load: run npm ci in stacklo/graphiql, " +
          "then restart the server."
      );
      return;
    }

    var post = createApi(settings);
    var dashboard = null;
    var session = createSession(post, function (message) {
      signedOut(message);
    });

    function signedOut(message) {
      if (dashboard) dashboard.stop();
      dashboard = null;
      ui.dashboard.hidden = true;
      ui.who.hidden = true;
      ui.signIn.hidden = false;
      ui.feed.replaceChildren();
      ui.rates.replaceChildren();
      ui.feedEmpty.hidden = false;
      setStatus("signed-out", "Signed out");
      showError(message || "");
    }

    function signedIn(me) {
      var staff = (me.roles || []).some(function (role) {
        return STAFF.indexOf(role) !== -1;
      });
      if (!staff) {
        session.logOut().catch(function () {});
        signedOut(me.email + " is not staff: this dashboard is for SUPPORT and ADMIN.");
        return;
      }
      showError("");
      ui.email.textContent = me.email;
      ui.who.hidden = false;
      ui.signIn.hidden = true;
      ui.dashboard.hidden = false;
      if (!dashboard) dashboard = createDashboard(settings, session);
    }

    ui.form.addEventListener("submit", function (event) {
      event.preventDefault();
      var password = ui.formPassword.value;
      ui.formPassword.value = "";
      ui.formSubmit.disabled = true;
      showError("");
      session
        .logIn(ui.formEmail.value.trim(), password)
        .then(signedIn, function (error) {
          session.forget();
          signedOut(error.message || String(error));
        })
        .finally(function () {
          ui.formSubmit.disabled = false;
        });
    });

    ui.signOut.addEventListener("click", function () {
      ui.signOut.disabled = true;
      signedOut("");
      session
        .logOut()
        .catch(function (error) {
          showError(error.message || String(error));
        })
        .finally(function () {
          ui.signOut.disabled = false;
        });
    });

    // For tests: drop the live socket, bring it back (it resumes after the last cursor).
    window.__ops = {
      disconnect: function () {
        if (dashboard) dashboard.disconnect();
      },
      reconnect: function () {
        if (dashboard) dashboard.reconnect();
      },
      lastCursor: function () {
        return dashboard ? dashboard.lastCursor() : null;
      },
      closeCodes: function () {
        return dashboard ? dashboard.closeCodes() : [];
      },
    };

    // After a reload: is the stored session still good, and whose is it? A session that is
    // over was already handled (onEnded); on any other failure (offline, rate limited) carry
    // on with what was stored and let the live data say how it goes.
    var stored = session.get();
    if (stored) {
      setStatus("connecting", "Checking the session...");
      session.who().then(
        function (me) {
          if (session.get()) signedIn(me);
        },
        function (error) {
          if (!session.get()) return;
          if (/session ended/i.test(error.message)) {
            session.forget();
            signedOut("Your session ended. Sign in again.");
          } else {
            signedIn({ email: stored.email, roles: stored.roles });
            showError("Could not check the session: " + error.message);
          }
        }
      );
    }
  }

  window.StackloOps = { start: start };
})();
