// Borrower web chat: sign in (phone + SMS code) or chat anonymously, then talk to Rasa's
// socket.io channel. History is kept in localStorage per conversation; socket.io reconnects.
(function () {
  "use strict";
  const cfg = { rasaUrl: document.querySelector('meta[name="rasa-url"]').content };  // chat.html
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

  function tokenValid(token) {
    if (!token) return false;
    try {
      const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      return payload.exp * 1000 > Date.now() + 5000;
    } catch (e) { return false; }
  }

  function setStatus(text) { $("status").textContent = text; }

  function render(item) {
    const li = document.createElement("li");
    li.className = "msg " + item.who;
    li.textContent = item.text || "";
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
    $("messages").appendChild(li);
    $("messages").scrollTop = $("messages").scrollHeight;
  }

  function remember(item) {
    history.push(item);
    if (sender) store.save(sender, history);
    render(item);
  }

  function typing(on) {
    $("typing").hidden = !on;
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(() => typing(false), 15000);
  }

  function send(message, shown) {
    if (!socket || !sender) return;
    remember({ who: "user", text: shown || message });
    socket.emit("user_uttered", { message: message, session_id: sender });
    typing(true);
  }

  function showChat() {
    $("login").hidden = true;
    $("chat").hidden = false;
    $("logout").hidden = !store.token;
    $("text").focus();
  }

  function connect() {
    const token = store.token;
    const auth = tokenValid(token) ? { token: token } : {};
    if (!auth.token) store.token = null;
    socket = io(cfg.rasaUrl, { path: "/socket.io", auth: auth, transports: ["websocket", "polling"],
                               reconnectionDelayMax: 5000 });
    socket.on("connect", () => {
      setStatus("已连接");
      socket.emit("session_request", { session_id: auth.token ? null : store.anonId });
    });
    socket.on("session_confirm", (sessionId) => {
      if (!auth.token) store.anonId = sessionId;
      sender = sessionId;
      history = store.history(sender);
      $("messages").innerHTML = "";
      history.forEach(render);
      showChat();
    });
    socket.on("bot_uttered", (data) => {
      typing(false);
      const buttons = (data.quick_replies || data.buttons || []).map((b) => ({ title: b.title, payload: b.payload }));
      remember({ who: data.staff ? "staff" : "bot", text: data.text, buttons: buttons });
    });
    socket.on("disconnect", () => setStatus("连接中断，正在重连…"));
    socket.on("connect_error", () => {
      setStatus("连接失败，正在重试…");
      if (auth.token && !tokenValid(auth.token)) { signOut(); }
    });
  }

  function signOut() {
    store.token = null;
    if (socket) socket.disconnect();
    socket = null; sender = null;
    $("chat").hidden = true; $("login").hidden = false; $("logout").hidden = true;
    setStatus("未连接");
  }

  async function post(url, body) {
    const resp = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error((data.error && data.error.message_zh) || "请求失败，请稍后再试");
    return data;
  }

  $("send-code").addEventListener("click", async () => {
    $("login-error").textContent = "";
    const phone = $("phone").value.trim();
    if (!/^1[3-9]\d{9}$/.test(phone)) { $("login-error").textContent = "请输入正确的11位手机号"; return; }
    try {
      await post("/webchat/login/start", { phone: phone });
      $("login-error").textContent = "如该号码已登记，验证码已发送，5分钟内有效";
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

  if (tokenValid(store.token) || store.anonId) connect();
})();
