// A task field holding a resource directory service's id (templates/_resource_search.html): shows the
// directory search (hidden without JavaScript, where the field stays a text input), keeps its controls out of
// the task form (Enter searches instead of completing the task; their changes save no draft), and puts the
// chosen service's id in the field (htmx draws the service under it; the field's `change` saves the draft).
(function () {
  "use strict";
  function search(box) {
    var button = box.querySelector(".resource-search-button");
    if (button) { button.click(); }
  }
  function start() {
    var boxes = document.querySelectorAll(".resource-search[data-resource-field]");
    Array.prototype.forEach.call(boxes, function (box) {
      box.hidden = false;
      box.addEventListener("change", function (event) { event.stopPropagation(); });
      box.addEventListener("input", function (event) { event.stopPropagation(); });
      box.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && event.target.tagName === "INPUT") {
          event.preventDefault();
          search(box);
        }
      });
      box.addEventListener("click", function (event) {
        var pick = event.target.closest("[data-pick-service]");
        if (!pick) { return; }
        var input = document.getElementById(pick.getAttribute("data-field"));
        if (!input) { return; }
        input.value = pick.getAttribute("data-pick-service");
        input.dispatchEvent(new Event("input", { bubbles: true }));
        input.dispatchEvent(new Event("change", { bubbles: true }));
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
