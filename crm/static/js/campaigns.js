// Campaign pages: a live length/part counter for message bodies and personalization buttons.
// The server's preview is the authoritative count: this one sees the template, not each
// recipient's rendered message.
"use strict";

(function () {
  var GSM7 =
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var GSM7_EXTENSION = "\f^{}\\[~]|€";

  function analyze(text) {
    var chars = Array.from(text);
    var ucs2 = chars.filter(function (c) {
      return GSM7.indexOf(c) < 0 && GSM7_EXTENSION.indexOf(c) < 0;
    });
    var units, single, multi;
    if (ucs2.length) {
      units = text.length; // UTF-16 code units: an emoji takes two
      single = 70;
      multi = 67;
    } else {
      units = chars.reduce(function (n, c) {
        return n + (GSM7_EXTENSION.indexOf(c) >= 0 ? 2 : 1);
      }, 0);
      single = 160;
      multi = 153;
    }
    var parts = units <= single ? 1 : Math.ceil(units / multi);
    return { units: units, parts: parts, ucs2: ucs2, encoding: ucs2.length ? "UCS-2" : "GSM-7" };
  }

  function updateCounter(area) {
    var out = document.getElementById(area.dataset.counter || "");
    if (!out) return;
    if (!area.value) {
      out.textContent = "";
      return;
    }
    var info = analyze(area.value);
    var text = info.units + " characters · " + info.encoding + " · " + info.parts +
      (info.parts === 1 ? " part" : " parts");
    if (info.ucs2.length) {
      var unique = Array.from(new Set(info.ucs2)).slice(0, 5).join(" ");
      text += " (UCS-2 because of: " + unique + ")";
    }
    if (area.value.indexOf("{{") >= 0) text += " · before personalization";
    out.textContent = text;
    out.classList.toggle("ucs2", info.ucs2.length > 0);
  }

  var lastBody = null;

  function init() {
    var bodies = document.querySelectorAll("textarea.message-body");
    bodies.forEach(function (area) {
      updateCounter(area);
      area.addEventListener("input", function () { updateCounter(area); });
      area.addEventListener("focus", function () { lastBody = area; });
    });
    document.querySelectorAll("button.insert[data-insert]").forEach(function (button) {
      button.addEventListener("click", function () {
        var area = lastBody || bodies[0];
        if (!area) return;
        var snippet = button.dataset.insert;
        var start = area.selectionStart == null ? area.value.length : area.selectionStart;
        var end = area.selectionEnd == null ? start : area.selectionEnd;
        area.value = area.value.slice(0, start) + snippet + area.value.slice(end);
        area.focus();
        area.setSelectionRange(start + snippet.length, start + snippet.length);
        updateCounter(area);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
