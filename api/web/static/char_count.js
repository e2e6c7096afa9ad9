// A live count of the characters left in a textarea with data-max-chars (GOV.UK's character count): the
// page's hint says the limit without JavaScript; with it, a polite status line below the field says what is
// left, or how many are too many (the server refuses a longer text, keeping it). No maxlength: a pasted
// text is never cut silently.
(function () {
  "use strict";
  var QUIET_MS = 500;  // announced once typing pauses, not at every keystroke
  function words(n) { return n.toLocaleString("en-GB") + (Math.abs(n) === 1 ? " character" : " characters"); }
  function attach(field) {
    var max = parseInt(field.getAttribute("data-max-chars"), 10);
    if (!(max > 0)) { return; }
    var count = document.createElement("p");
    count.id = field.id + "-count";
    count.className = "char-count hint";
    count.setAttribute("aria-live", "polite");
    field.insertAdjacentElement("afterend", count);
    var timer = null;
    function update() {
      var left = max - field.value.length;
      count.textContent = left >= 0 ? "You have " + words(left) + " remaining." : "You have " + words(-left) + " too many.";
      count.classList.toggle("over", left < 0);
    }
    field.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(update, QUIET_MS);
    });
    update();
  }
  function start() {
    var fields = document.querySelectorAll("textarea[data-max-chars]");
    for (var i = 0; i < fields.length; i += 1) { attach(fields[i]); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
