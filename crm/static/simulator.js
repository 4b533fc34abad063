// The phone simulator page (development only): a handset that talks to the app through
// /simulator/api/send (which posts the provider's signed webhooks) and shows outbound messages
// polled from /simulator/api/thread. Every piece of text is set with textContent, never HTML.
(function () {
  "use strict";

  var SEND_URL = document.body.dataset.sendUrl;
  var THREAD_URL = document.body.dataset.threadUrl;
  var SERVICE_CODE = document.body.dataset.serviceCode;
  var POLL_MS = 2000;
  var KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];

  var $ = function (id) { return document.getElementById(id); };
  var phoneInput = $("phone");
  var nameInput = $("name");
  var channelSelect = $("channel");
  var log = $("log");
  var errorBox = $("error");
  var statusBox = $("status");

  // Per-handset state; the server keeps none of it.
  var sessions = { ussd: null, voice: null };
  var seen = new Set();
  var historyLoaded = false;
  var queue = Promise.resolve(); // sends go one after another, in order
  var pollTimer = null;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function bubble(kind, text, note) {
    var node = el("div", "bubble " + kind, text);
    if (note) { node.appendChild(el("small", "", note)); }
    log.appendChild(node);
    log.scrollTop = log.scrollHeight;
    return node;
  }

  function showError(message) { errorBox.textContent = message || ""; }
  function setStatus(message) { statusBox.textContent = message; }
  function channel() { return channelSelect.value; }
  function phone() { return phoneInput.value.trim(); }

  function api(url, options) {
    options = options || {};
    options.headers = Object.assign({ "X-Requested-With": "simulator" }, options.headers || {});
    options.credentials = "same-origin";
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          throw new Error(body.message || body.error || ("HTTP " + response.status));
        }
        return body;
      });
    });
  }

  // -- sending --------------------------------------------------------------------------

  function send(ch, text, extra) {
    var payload = Object.assign({
      phone: phone(),
      channel: ch,
      text: text,
      name: nameInput.value.trim() || "Simulator",
      session: sessions[ch] || {}
    }, extra || {});
    queue = queue.then(function () {
      showError("");
      setStatus("Sending…");
      payload.session = sessions[ch] || {};
      return api(SEND_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(payload)
      }).then(function (answer) {
        render(ch, answer);
      }).catch(function (error) {
        showError(error.message);
        setStatus("Error");
      });
    });
    return queue;
  }

  function render(ch, answer) {
    var replies = answer.replies || [];
    if (ch === "sms" || ch === "whatsapp") {
      replies.forEach(function (text) { bubble("app", text, ch + " reply"); });
      setStatus(replies.length ? "Replied" : "Delivered, no reply");
      return;
    }
    sessions[ch] = answer.ended ? null : answer.session;
    if (ch === "ussd") {
      replies.forEach(function (text) { bubble("ussd", text); });
      if (answer.ended) { bubble("event", "USSD session ended"); }
      setStatus(answer.ended ? "Session ended" : "USSD session open");
    } else {
      replies.forEach(function (text) {
        var isEvent = text.charAt(0) === "[";
        bubble(isEvent ? "event" : "app", text, isEvent ? null : "heard");
      });
      if (answer.ended) { bubble("event", "Call ended"); }
      setStatus(answer.ended ? "Call ended" : "In call");
    }
    updateControls();
  }

  // -- controls -------------------------------------------------------------------------

  function updateControls() {
    var ch = channel();
    $("message-controls").hidden = !(ch === "sms" || ch === "whatsapp");
    $("ussd-controls").hidden = ch !== "ussd";
    $("voice-controls").hidden = ch !== "voice";
    var inSession = !!sessions.ussd;
    $("ussd-dial").hidden = inSession;
    $("ussd-form").hidden = !inSession;
    var inCall = !!sessions.voice;
    $("call").disabled = inCall;
    $("hangup").disabled = !inCall;
    $("silence").disabled = !inCall;
    $("speech").disabled = !inCall;
    $("say").disabled = !inCall;
    Array.prototype.forEach.call($("keypad").children, function (button) {
      button.disabled = !inCall;
    });
  }

  $("message-controls").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = $("message");
    var text = input.value;
    if (!text.trim()) { return; }
    bubble("me", text, channel());
    input.value = "";
    send(channel(), text);
  });

  $("ussd-dial").addEventListener("click", function () {
    bubble("me", "Dial " + SERVICE_CODE, "ussd");
    send("ussd", "");
  });

  $("ussd-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = $("ussd-input");
    bubble("me", input.value, "ussd");
    send("ussd", input.value);
    input.value = "";
  });

  $("ussd-cancel").addEventListener("click", function () {
    bubble("me", "Cancel", "ussd");
    send("ussd", "", { hangup: true });
  });

  $("call").addEventListener("click", function () {
    bubble("me", "Call", "voice");
    send("voice", "");
  });

  $("hangup").addEventListener("click", function () {
    send("voice", "", { hangup: true });
  });

  $("silence").addEventListener("click", function () {
    bubble("event", "(silence)");
    send("voice", "");
  });

  KEYS.forEach(function (key) {
    var button = el("button", "", key);
    button.type = "button";
    button.addEventListener("click", function () {
      bubble("me", key, "key");
      send("voice", key);
    });
    $("keypad").appendChild(button);
  });

  $("speech-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = $("speech");
    if (!input.value.trim()) { return; }
    bubble("me", input.value, "said");
    send("voice", input.value);
    input.value = "";
  });

  channelSelect.addEventListener("change", function () { showError(""); updateControls(); });

  function resetHandset() {
    sessions = { ussd: null, voice: null };
    seen = new Set();
    historyLoaded = false;
    log.textContent = "";
    showError("");
    $("who").textContent = phone();
    setStatus("Ready");
    updateControls();
    poll();
  }

  phoneInput.addEventListener("change", resetHandset);
  $("clear").addEventListener("click", function () { log.textContent = ""; });

  // -- outbound messages from the timeline -----------------------------------------------

  function describe(entry) {
    if (entry.channel === "ussd" || entry.channel === "voice") { return entry.body; }
    return null;
  }

  function showEntry(entry, history) {
    if (entry.direction === "internal") { return; }
    var texting = entry.channel === "sms" || entry.channel === "whatsapp";
    var note = entry.channel + (entry.status ? " · " + entry.status : "");
    if (history) {
      var line;
      if (!texting) {
        line = bubble("event", describe(entry));
      } else if (entry.direction === "inbound") {
        line = bubble("me", entry.body, note);
      } else {
        line = bubble("app outbound", entry.body, note);
      }
      line.classList.add("history");
      return;
    }
    // Live: the customer's own messages and the replies in the webhook's answer (TwiML,
    // recorded as "replied") are already on screen; show what was sent to the handset since.
    if (texting && entry.direction === "outbound" && entry.status !== "replied") {
      bubble("app outbound", entry.body, note);
    }
  }

  function poll() {
    var number = phone();
    if (!number) { return; }
    var url = THREAD_URL + "?phone=" + encodeURIComponent(number);
    api(url).then(function (thread) {
      if (number !== phone()) { return; } // the number changed meanwhile
      var entries = thread.entries || [];
      var history = !historyLoaded;
      if (history && entries.length) { bubble("event", "Earlier on this number"); }
      entries.forEach(function (entry) {
        if (seen.has(entry.id)) { return; }
        seen.add(entry.id);
        showEntry(entry, history);
      });
      if (history && entries.length) { bubble("event", "Now"); }
      historyLoaded = true;
    }).catch(function (error) { showError(error.message); });
  }

  $("who").textContent = phone();
  updateControls();
  poll();
  pollTimer = setInterval(poll, POLL_MS);
  window.addEventListener("beforeunload", function () { clearInterval(pollTimer); });
})();
