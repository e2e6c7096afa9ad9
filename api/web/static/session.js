/* CarePath: the warning before the automatic logoff (WCAG 2.2.1) and nothing typed lost when it happens.

   The server signs a browser out after a time without requests (CAREPATH_WEB_IDLE_MINUTES); the page
   says how long on <body data-idle-seconds data-idle-warning-seconds data-user>. What counts as activity
   is a request to the server: a page opened, a form sent, "Stay signed in". Moving the mouse or typing
   alone does not (the server cannot see it, and an unattended screen must not stay signed in).

   - Shortly before the limit the script asks the server how long is left (GET /app/session; asking does
     not count as activity), so a page opened in another tab since keeps this one signed in as well.
   - With `warning` seconds left, a modal alert dialog opens with the focus on "Stay signed in"
     (POST /app/session/keepalive with the page's CSRF token) and "Sign out"; Escape means "stay".
   - A request htmx makes by itself (polling, no user event behind it) carries X-CarePath-Background: 1,
     which the server does not count as activity.
   - At the limit, the text in the page's forms and the choices changed on it (never passwords, hidden
     fields or files) are
     kept in this tab's sessionStorage under the page's path and the user's name, and the browser goes to
     sign-in, which comes back to this page (?next=). There they are put back into the same fields, once,
     and the page says so; then they are removed.
   No inline script, no eval: the Content-Security-Policy allows neither (api/web/headers.py). */
(function () {
  "use strict";

  var KEY = "carepath.typed:";
  var KEPT_FOR_MS = 12 * 3600 * 1000;  // no session outlives 12 hours (web_sessions.MAX_SESSION)
  var TOUCH_SLACK = 60;  // the server writes last_seen_at at most once a minute: ask that much earlier
  var SKIPPED = { password: 1, hidden: 1, file: 1, submit: 1, button: 1, reset: 1, image: 1 };
  var body = document.body;

  function formsOf() {
    return Array.prototype.filter.call(document.forms, function (form) {
      return form.getAttribute("action") !== "/signout" && !form.closest("dialog");
    });
  }

  function kept(element) {
    return element.name && !SKIPPED[element.type] && !element.disabled && element.name !== "csrf_token";
  }

  function worthKeeping(element) {
    if (element.type === "checkbox" || element.type === "radio") {
      return element.checked !== element.defaultChecked;
    }
    if (element.tagName === "SELECT") {
      return Array.prototype.some.call(element.options, function (o) { return o.selected !== o.defaultSelected; });
    }
    // Text is kept whenever there is some: a page answering a refused form shows what was typed as the
    // field's own value, and the page after sign-in would be empty without it.
    return element.value !== "";
  }

  function saveTyped() {
    var fields = [];
    formsOf().forEach(function (form, f) {
      Array.prototype.forEach.call(form.elements, function (element, e) {
        if (!kept(element) || !worthKeeping(element)) { return; }
        var value = element.tagName === "SELECT"
          ? Array.prototype.filter.call(element.options, function (o) { return o.selected; })
              .map(function (o) { return o.value; })
          : element.value;
        fields.push({ form: f, index: e, name: element.name, checked: element.checked, value: value });
      });
    });
    if (!fields.length) { return; }
    try {
      sessionStorage.setItem(KEY + location.pathname,
                             JSON.stringify({ user: body.dataset.user, at: Date.now(), fields: fields }));
    } catch (full) { /* storage refused: nothing more can be done before the logoff */ }
  }

  function restoreTyped() {
    var raw, next = new URLSearchParams(location.search).get("next");
    var path = !body.dataset.user && next ? next.split("?")[0] : location.pathname;
    try { raw = sessionStorage.getItem(KEY + path); } catch (refused) { return; }
    if (!raw) { return; }
    if (!body.dataset.user) {  // the sign-in page: say why, and wait for the page itself
      announce("You were signed out after a time without activity. Sign in again: what you typed comes back.");
      return;
    }
    sessionStorage.removeItem(KEY + location.pathname);
    var saved;
    try { saved = JSON.parse(raw); } catch (broken) { return; }
    if (!saved || saved.user !== body.dataset.user || Date.now() - saved.at > KEPT_FOR_MS) { return; }
    var forms = formsOf(), restored = 0;
    saved.fields.forEach(function (field) {
      var form = forms[field.form];
      var element = form && form.elements[field.index];
      if (!element || element.name !== field.name || !kept(element)) { return; }
      if (element.type === "checkbox" || element.type === "radio") {
        if (element.checked === field.checked) { return; }
        element.checked = field.checked;
      } else if (element.tagName === "SELECT") {
        var same = Array.prototype.every.call(element.options, function (o) {
          return o.selected === (field.value.indexOf(o.value) >= 0);
        });
        if (same) { return; }
        Array.prototype.forEach.call(element.options, function (o) { o.selected = field.value.indexOf(o.value) >= 0; });
      } else {
        if (element.value === field.value) { return; }
        element.value = field.value;
      }
      element.dispatchEvent(new Event("input", { bubbles: true }));
      element.dispatchEvent(new Event("change", { bubbles: true }));
      restored += 1;
    });
    if (restored) {
      announce("What you typed before you were signed out is back in the form. Check it, then send it.");
    }
  }

  function announce(text) {
    var note = document.createElement("p");
    note.className = "typed-restored";
    note.setAttribute("role", "status");
    note.textContent = text;
    var main = document.getElementById("main");
    if (main) { main.insertBefore(note, main.firstChild); }
  }

  restoreTyped();

  // A request htmx makes by itself (polling: hx-trigger="every 30s") is no sign of a person at the screen:
  // it is marked, and the server does not count it as activity (api/web/cookies.py BACKGROUND_HEADER).
  document.addEventListener("htmx:configRequest", function (event) {
    if (!event.detail.triggeringEvent) { event.detail.headers["X-CarePath-Background"] = "1"; }
  });

  var idle = Number(body.dataset.idleSeconds);
  var dialog = document.getElementById("idle-warning");
  if (!idle || !dialog || typeof dialog.showModal !== "function") { return; }
  var warning = Math.min(Number(body.dataset.idleWarningSeconds) || 120, idle / 2);
  var stay = document.getElementById("idle-warning-stay");
  var left = document.getElementById("idle-warning-left");
  var clock = document.getElementById("idle-warning-clock");
  var timer = null, ticker = null, deadline = 0, leaving = false;

  function later(seconds, then) {
    clearTimeout(timer);
    timer = setTimeout(then, Math.max(0, seconds) * 1000);
  }

  function inWords(seconds) {
    var minutes = Math.round(seconds / 60);
    return seconds >= 90 ? minutes + " minutes" : Math.max(1, Math.round(seconds)) + " seconds";
  }

  function tick() {
    var seconds = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    clock.textContent = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
  }

  function openWarning(remaining) {
    left.textContent = inWords(remaining);
    tick();
    clearInterval(ticker);
    ticker = setInterval(tick, 1000);
    if (!dialog.open) {
      dialog.showModal();
      stay.focus();
    }
  }

  function closeWarning() {
    clearInterval(ticker);
    if (dialog.open) { dialog.close(); }
  }

  function plan(remaining) {
    deadline = Date.now() + remaining * 1000;
    if (remaining <= 0) {
      signOutNow();
    } else if (remaining > warning) {
      closeWarning();
      later(remaining - warning, check);
    } else {
      openWarning(remaining);
      later(remaining + 1, check);  // the server's answer decides, never this tab's clock alone
    }
  }

  var asked = 0;  // checks sent; only the latest one's answer counts (answers can arrive out of order)

  function check() {
    if (leaving) { return; }
    var mine = ++asked;
    fetch("/app/session", { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (answer) { if (mine === asked) { plan(Number(answer.remaining_seconds) || 0); } })
      .catch(function () { if (mine === asked) { later(15, check); } });  // unreachable: ask again soon
  }

  function signOutNow() {
    leaving = true;
    closeWarning();
    saveTyped();
    location.assign("/signin?next=" + encodeURIComponent(location.pathname + location.search));
  }

  function stayIn() {
    asked++;  // a check still in flight was asked before this: its answer is stale
    var token = dialog.querySelector("input[name=csrf_token]");
    var data = new URLSearchParams();
    data.set("csrf_token", token ? token.value : "");
    fetch("/app/session/keepalive", { method: "POST", credentials: "same-origin", redirect: "manual", body: data })
      .then(function (response) {
        if (response.status === 204) { plan(idle); } else { check(); }
      })
      .catch(function () { later(5, check); });
  }

  stay.addEventListener("click", stayIn);
  dialog.addEventListener("cancel", function (event) {  // Escape: the user is there
    event.preventDefault();
    stayIn();
  });
  // A tab in the background has its timers slowed by the browser; ask again when it is looked at.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { check(); }
  });
  window.addEventListener("focus", check);
  later(idle - warning - TOUCH_SLACK, check);
}());
