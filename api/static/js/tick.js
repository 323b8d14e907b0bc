/* A "tick all" box: <input type="checkbox" data-tick-all="NAME"> ticks or clears every box named NAME in its
   form (the batch 签收 of the escalations page). No inline script: the pages' CSP allows only files. */
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var box = event.target;
    var name = box && box.getAttribute && box.getAttribute("data-tick-all");
    if (!name || !box.form) { return; }
    var boxes = box.form.querySelectorAll('input[type="checkbox"][name="' + name + '"]');
    for (var i = 0; i < boxes.length; i += 1) { boxes[i].checked = box.checked; }
  });
})();
