// pftrack web UI: shows times in the browser's zone (UTC stays in the title) and
// copies permalinks. Served from pftrack itself; the CSP allows no inline script.
"use strict";
(function () {
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function local(d) {
    var off = -d.getTimezoneOffset();
    var sign = off >= 0 ? "+" : "-";
    off = Math.abs(off);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
      " " + sign + pad(Math.floor(off / 60)) + pad(off % 60);
  }
  function localise() {
    var times = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var d = new Date(times[i].getAttribute("datetime"));
      if (!isNaN(d.getTime())) {
        times[i].textContent = local(d);
        times[i].setAttribute("data-local", "1");
      }
    }
  }
  function copyButtons() {
    var buttons = document.querySelectorAll("button[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (ev) {
        var text = new URL(ev.currentTarget.getAttribute("data-copy"), location.href).href;
        var button = ev.currentTarget;
        if (navigator.clipboard) {
          navigator.clipboard.writeText(text).then(function () { button.textContent = "Copied"; });
        }
      });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { localise(); copyButtons(); });
  } else { localise(); copyButtons(); }
})();
