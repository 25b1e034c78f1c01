// Borrower web chat: sign in (phone + SMS code) or chat anonymously, then talk to Rasa's
// socket.io channel. History is kept in localStorage per conversation; socket.io reconnects.
//
// Nothing lost: every message gets a client message id (cid, a uuid) and stays "pending" (marked
// in the page) until the server acknowledges it (socket.io ack: done, or duplicate with the answers
// it had). Messages go out one at a time, in order; an unacknowledged one is sent again with the
// same cid after a reconnect or an ack timeout (channels/webchat.py processes a cid once). One not
// acknowledged within the delivery deadline is shown as not delivered; a tap sends it again.
(function () {
  "use strict";
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;  // chat.html
  const cfg = { rasaUrl: meta("rasa-url") };
  const T = JSON.parse(meta("chat-texts"));  // texts/zh/channel.yml webchat
  const DELIVERY_MS = (Number(meta("chat-delivery-seconds")) || 90) * 1000;
  const ACK_TIMEOUT_MS = 20000;  // one sending; then it is sent again (the server de-duplicates)
  const $ = (id) => document.getElementById(id);
  const store = {
    get token() { return localStorage.getItem("chat.token"); },
    set token(v) { v ? localStorage.setItem("chat.token", v) : localStorage.removeItem("chat.token"); },
    get anonId() { return localStorage.getItem("chat.anon"); },
    set anonId(v) { localStorage.setItem("chat.anon", v); },
    history(sender) { try { return JSON.parse(localStorage.getItem("chat.history:" + sender)) || []; } catch (e) { return []; } },
    save(sender, items) { localStorage.setItem("chat.history:" + sender, JSON.stringify(items.slice(-200))); },
  };
  let socket = null;
  let sender = null;
  let history = [];
  let typingTimer = null;
  let ready = false;  // the server confirmed this connection's conversation
  let inFlight = null;  // cid of the message waiting for its acknowledgement
  let pumpTimer = null;

  function tokenValid(token) {
    if (!token) return false;
    try {
      const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      return payload.exp * 1000 > Date.now() + 5000;
    } catch (e) { return false; }
  }

  function setStatus(text) { $("status").textContent = text; }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function node(item) {
    const li = document.createElement("li");
    li.className = "msg " + item.who + (item.state && item.state !== "sent" ? " " + item.state : "");
    li.textContent = item.text || "";
    if (item.cid) li.dataset.cid = item.cid;
    if (item.state === "pending" || item.state === "failed") {
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.textContent = item.state === "pending" ? T.sending : T.not_delivered;
      li.appendChild(mark);
    }
    if (item.state === "failed") li.addEventListener("click", () => resend(item));
    if (item.buttons && item.buttons.length) {
      const box = document.createElement("div");
      box.className = "buttons";
      item.buttons.forEach((b) => {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = b.title;
        btn.addEventListener("click", () => send(b.payload, b.title));
        box.appendChild(btn);
      });
      li.appendChild(box);
    }
    return li;
  }

  function render(item) {
    $("messages").appendChild(node(item));
    $("messages").scrollTop = $("messages").scrollHeight;
  }

  function rerender(item) {
    const old = item.cid && $("messages").querySelector(`li.user[data-cid="${item.cid}"]`);
    if (old) old.replaceWith(node(item));
  }

  function update(item, state) {
    item.state = state;
    if (sender) store.save(sender, history);
    rerender(item);
  }

  function remember(item) {
    // An answer goes under the message it answers (after its earlier answers), also when the borrower
    // wrote more while it was on its way (a resend after a reconnect).
    let at = history.length;
    const asked = item.reply_to ? history.findIndex((h) => h.cid === item.reply_to) : -1;
    if (asked >= 0) {
      at = asked + 1;
      while (at < history.length && history[at].reply_to === item.reply_to) at++;
    }
    history.splice(at, 0, item);
    if (sender) store.save(sender, history);
    if (at === history.length - 1) {
      render(item);
    } else {
      $("messages").innerHTML = "";
      history.forEach(render);
    }
  }

  function typing(on) {
    $("typing").hidden = !on;
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(() => typing(false), 15000);
  }

  function send(message, shown) {
    if (!socket || !sender) return;
    remember({ who: "user", text: shown || message, payload: message, cid: newId(), state: "pending", at: Date.now() });
    typing(true);
    pump();
  }

  function resend(item) {  // a tap on a message shown as not delivered: the same cid again
    item.at = Date.now();
    update(item, "pending");
    pump();
  }

  function later(ms) {
    clearTimeout(pumpTimer);
    pumpTimer = setTimeout(pump, ms);
  }

  function expire() {  // pending past the deadline (also while disconnected): not delivered
    history.forEach((item) => {
      if (item.state === "pending" && !(inFlight && inFlight.cid === item.cid) && Date.now() - item.at > DELIVERY_MS) {
        update(item, "failed");
      }
    });
  }

  function acknowledged(item, ack) {
    if (ack.status === "duplicate" && Array.isArray(ack.replies) && !history.some((h) => h.reply_to === item.cid)) {
      // Processed before, but its answers never reached this page (lost with the connection).
      ack.replies.forEach((r) => remember({ who: "bot", text: r.text, buttons: r.buttons || [], reply_to: item.cid }));
    }
    update(item, "sent");
    if (!history.some((h) => h.state === "pending")) typing(false);
  }

  function pump() {  // sends the oldest pending message; one at a time, in order
    expire();
    if (inFlight || !socket || !socket.connected || !ready) return;
    const item = history.find((h) => h.who === "user" && h.state === "pending");
    if (!item) return;
    const attempt = { cid: item.cid };
    inFlight = attempt;
    const data = { message: item.payload || item.text, session_id: sender, cid: item.cid };
    socket.timeout(ACK_TIMEOUT_MS).emit("user_uttered", data, (err, ack) => {
      const status = !err && ack && ack.cid === item.cid ? ack.status : null;
      if ((status === "done" || status === "duplicate") && item.state !== "sent") acknowledged(item, ack);
      if (inFlight !== attempt) return;  // a sending of an earlier connection: the current one decides
      inFlight = null;
      if (status === "done" || status === "duplicate") {
        pump();
      } else if (status === "pending") {  // being processed elsewhere: ask again shortly
        later(Math.min(Math.max(Number(ack.retry_after) || 1, 0.5), 5) * 1000);
      } else {  // no answer in time, or the server could not take it now: again (same cid)
        later(1000);
      }
    });
  }

  function showChat() {
    $("login").hidden = true;
    $("chat").hidden = false;
    $("logout").hidden = !store.token;
    $("text").focus();
  }

  function conversationKey(token) {
    if (!token) return store.anonId || "";
    try {
      return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub || "";
    } catch (e) { return ""; }
  }

  function connect() {
    const token = store.token;
    const auth = tokenValid(token) ? { token: token } : {};
    if (!auth.token) store.token = null;
    // ?conversation=: with several Rasa replicas, nginx sends this conversation's socket to the replica
    // that also gets the backend's messages for it (docs/scaling.md); none on a first anonymous visit.
    socket = io(cfg.rasaUrl, { path: "/socket.io", auth: auth, transports: ["websocket", "polling"],
                               query: { conversation: conversationKey(auth.token) }, reconnectionDelayMax: 5000 });
    socket.on("connect", () => {
      setStatus(T.connected);
      socket.emit("session_request", { session_id: auth.token ? null : store.anonId });
    });
    socket.on("session_confirm", (sessionId) => {
      if (!auth.token) store.anonId = sessionId;
      const same = sender === sessionId;
      sender = sessionId;
      if (!same) {
        history = store.history(sender);
        $("messages").innerHTML = "";
        history.forEach(render);
      }
      showChat();
      ready = true;
      inFlight = null;  // an ack of the old connection will not come: send again
      pump();  // what was not acknowledged before the reconnect goes again, same cid
    });
    socket.on("bot_uttered", (data) => {
      typing(false);
      const buttons = (data.quick_replies || data.buttons || []).map((b) => ({ title: b.title, payload: b.payload }));
      remember({ who: data.staff ? "staff" : "bot", text: data.text, buttons: buttons, reply_to: data.reply_to || null });
    });
    socket.on("disconnect", () => { ready = false; inFlight = null; setStatus(T.reconnecting); });
    socket.on("connect_error", () => {
      setStatus(T.connect_failed);
      if (auth.token && !tokenValid(auth.token)) { signOut(); }
    });
  }

  function signOut() {
    store.token = null;
    if (socket) socket.disconnect();
    socket = null; sender = null; ready = false; inFlight = null;
    $("chat").hidden = true; $("login").hidden = false; $("logout").hidden = true;
    setStatus(T.not_connected);
  }

  async function post(url, body) {
    const resp = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error((data.error && data.error.message_zh) || T.request_failed);
    return data;
  }

  $("send-code").addEventListener("click", async () => {
    $("login-error").textContent = "";
    const phone = $("phone").value.trim();
    if (!/^1[3-9]\d{9}$/.test(phone)) { $("login-error").textContent = T.bad_phone; return; }
    try {
      await post("/webchat/login/start", { phone: phone });
      $("login-error").textContent = T.code_sent;
      $("send-code").disabled = true;
      setTimeout(() => { $("send-code").disabled = false; }, 60000);
    } catch (e) { $("login-error").textContent = e.message; }
  });

  $("sign-in").addEventListener("click", async () => {
    $("login-error").textContent = "";
    try {
      const data = await post("/webchat/login/verify", { phone: $("phone").value.trim(), code: $("code").value.trim() });
      store.token = data.token;
      connect();
    } catch (e) { $("login-error").textContent = e.message; }
  });

  $("anonymous").addEventListener("click", () => { store.token = null; connect(); });
  $("logout").addEventListener("click", signOut);
  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("text").value.trim();
    if (text) { send(text); $("text").value = ""; }
  });

  setInterval(pump, 1000);  // expires overdue messages; sends what waits (e.g. after a pending ack)
  if (tokenValid(store.token) || store.anonId) connect();
})();
