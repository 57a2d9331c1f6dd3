// Pages with <body data-refresh="N"> reload every N seconds, except while someone is filling in
// a form there (an open <details> form or a focused field), so a half-typed note is never lost.
(function () {
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!seconds) { return; }
  setInterval(function () {
    var busy = document.querySelector("details[open]") ||
      (document.activeElement && /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName));
    if (!busy) { window.location.reload(); }
  }, seconds * 1000);
})();
