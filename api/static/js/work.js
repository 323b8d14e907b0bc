/* The task list: one box ticks or clears every row of the page, and the count of ticked rows is shown. */
(function () {
  "use strict";
  function boxes() { return Array.prototype.slice.call(document.querySelectorAll("input[name=firm]")); }
  function update() {
    var shown = document.getElementById("selected-count");
    var n = boxes().filter(function (b) { return b.checked; }).length;
    if (shown) { shown.textContent = String(n); }
    var all = document.getElementById("select-all");
    if (all) { all.checked = n > 0 && n === boxes().length; }
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      boxes().forEach(function (b) { b.checked = target.checked; });
    }
    if (target.id === "select-all" || target.name === "firm") { update(); }
  });
  if (document.readyState !== "loading") { update(); } else { document.addEventListener("DOMContentLoaded", update); }
})();
