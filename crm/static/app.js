// Small progressive enhancements; every page works without this file.
"use strict";

(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // "Updated 3 s ago" on live lists; turns red when polling has stopped answering.
  function tickFreshness() {
    $$(".freshness[data-refreshed]").forEach((el) => {
      const age = Math.max(0, Math.round((Date.now() - Date.parse(el.dataset.refreshed)) / 1000));
      el.textContent = age < 2 ? "Updated just now" : `Updated ${age} s ago`;
      el.classList.toggle("stale", age > 10);
    });
  }

  // Speed-to-lead countdowns tick every second between polls.
  function tickDeadlines() {
    $$(".sla[data-due]").forEach((el) => {
      const left = Math.round((Date.parse(el.dataset.due) - Date.now()) / 1000);
      if (left <= 0) {
        el.textContent = "SLA missed";
        el.classList.remove("chip-hot");
        el.classList.add("chip-late");
        return;
      }
      const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = "SLA " + (h ? `${h} h ${m} min` : `${m}:${String(s).padStart(2, "0")}`);
    });
  }

  function scrollTimeline(force) {
    const timeline = $("#timeline");
    if (!timeline) return;
    const nearBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 120;
    if (force || nearBottom) timeline.scrollTop = timeline.scrollHeight;
  }

  // Keyboard: j/k move through the conversation list, Enter opens, r reply, n note,
  // Escape leaves the text box. Ctrl/Cmd+Enter sends the form being typed in.
  function threadLinks() {
    return $$(".threads .thread a");
  }
  function moveThread(step) {
    const links = threadLinks();
    if (!links.length) return;
    const at = links.indexOf(document.activeElement);
    const current = at >= 0 ? at : links.findIndex((a) => a.getAttribute("aria-current") === "true");
    const next = links[Math.min(links.length - 1, Math.max(0, current + step))];
    next.focus();
  }
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("input, textarea, select, [contenteditable]");
    if (typing) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.form) {
        event.preventDefault();
        event.target.form.requestSubmit();
      } else if (event.key === "Escape") {
        event.target.blur();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "j") { moveThread(1); event.preventDefault(); }
    else if (event.key === "k") { moveThread(-1); event.preventDefault(); }
    else if (event.key === "r" && $("#reply-body")) { $("#reply-body").focus(); event.preventDefault(); }
    else if (event.key === "n" && $("#note-body")) {
      const box = $(".note-box");
      if (box) box.open = true;
      $("#note-body").focus();
      event.preventDefault();
    }
  });

  document.addEventListener("change", (event) => {
    const el = event.target;
    if (el.matches("select.canned") && el.value) {
      // A canned reply goes into the reply box, to edit before sending.
      const box = document.getElementById(el.dataset.target);
      box.value = el.value;
      box.focus();
      box.dispatchEvent(new Event("input", { bubbles: true }));
      el.value = "";
    } else if (el.matches("select.auto-submit") && el.form) {
      el.form.requestSubmit();
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    scrollTimeline(true);
    tickFreshness();
    tickDeadlines();
    setInterval(() => { tickFreshness(); tickDeadlines(); }, 1000);
  });
  document.addEventListener("htmx:afterSwap", (event) => {
    tickFreshness();
    tickDeadlines();
    if (event.detail.target && event.detail.target.id === "timeline-end") scrollTimeline(false);
  });
})();
