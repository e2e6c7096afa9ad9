// The task page's draft, saved every 30 s while something changed since the last save (the form's own
// `change` trigger saves when a field is left: hx-trigger="change, autosave" on #task-form). Never on every
// keystroke: typing only marks the form as changed.
(function () {
  "use strict";
  var EVERY_MS = 30000;
  function start() {
    // A refused form: the focus goes to the list of problems, which links to each field (GOV.UK's pattern).
    var summary = document.querySelector(".error-summary");
    if (summary) { summary.focus(); }
    var form = document.getElementById("task-form");
    if (!form || !form.hasAttribute("hx-post")) { return; }
    var changed = false;
    var submitting = false;
    form.addEventListener("input", function () { changed = true; });
    // Completing (or the "Save draft" button) posts the whole form: no draft save starts after it (one
    // already under way may land after the completion: the server then answers "not saved", harmlessly).
    form.addEventListener("submit", function () { submitting = true; });
    form.addEventListener("htmx:confirm", function (event) { if (submitting) { event.preventDefault(); } });
    form.addEventListener("change", function () { changed = false; });  // htmx saves on this one
    window.setInterval(function () {
      if (!changed || submitting) { return; }
      changed = false;
      form.dispatchEvent(new CustomEvent("autosave", { bubbles: true }));
    }, EVERY_MS);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
