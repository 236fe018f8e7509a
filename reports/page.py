"""The page's only script and the content security policy that admits it (by its hash) and nothing else.

The script filters the full table (and the summary) as the reader types, and
opens collapsed details for printing or when a link points into them. The
policy allows exactly this script, inline styles and ``data:`` images:
the page can fetch nothing.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["SCRIPT", "CSP"]

#: The page's only script, inlined; :data:`CSP` admits it by its SHA-256.
SCRIPT = """(function () {
  "use strict";
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };
  each(document.querySelectorAll("[data-filter-for]"), function (box) {
    var table = document.getElementById(box.getAttribute("data-filter-for"));
    var input = box.querySelector("input");
    var count = box.querySelector("output");
    if (!table || !table.tBodies.length || !input) { return; }
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var texts = rows.map(function (row) { return row.textContent.toLowerCase(); });
    var apply = function () {
      var terms = input.value.toLowerCase().split(/\\s+/).filter(function (t) { return t.length > 0; });
      var shown = 0;
      rows.forEach(function (row, i) {
        var keep = terms.every(function (t) { return texts[i].indexOf(t) !== -1; });
        row.hidden = !keep;
        shown += keep ? 1 : 0;
      });
      if (count) { count.textContent = shown + " of " + rows.length + " rows"; }
    };
    input.addEventListener("input", apply);
    box.hidden = false;
    apply();
  });
  var openTarget = function () {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var target = id ? document.getElementById(id) : null;
    if (target && target.tagName === "DETAILS") { target.open = true; }
  };
  window.addEventListener("hashchange", openTarget);
  openTarget();
  window.addEventListener("beforeprint", function () {
    each(document.querySelectorAll("details"), function (d) { d.open = true; });
  });
})();"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
#: The content security policy of the page.
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)
