// Staff console: one small script for the queue, case and dashboard pages (no framework).
"use strict";
(function () {
  const body = document.body;
  const csrf = body.dataset.csrf;
  const me = body.dataset.me;
  const role = body.dataset.role;
  const $ = (id) => document.getElementById(id);
  const REASONS = {request_human: "客户要求转人工", repeated_fallback: "多次未识别", complaint_high: "高优先级投诉",
    distress: "情绪危机", vip_plan: "VIP/高风险客户咨询还款方案", plan_review: "还款方案需人工审核"};
  const CHANNELS = {web: "网页", wechat: "微信", sms: "短信"};
  const STATUS = {open: "待接手", claimed: "处理中", closed: "已结束"};
  const LOAN_STATUS = {active: "正常", overdue: "逾期", settled: "已结清", restructured: "已重组"};

  async function api(path, options = {}) {
    const init = {method: options.method || "GET", headers: {"X-CSRF-Token": csrf}, credentials: "same-origin"};
    if (options.json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
    }
    const r = await fetch("/console/api" + path, init);
    if (r.status === 401) { location.href = "/console/login"; throw new Error("请先登录"); }
    if (r.status === 204) return null;
    const data = await r.json();
    if (!r.ok) throw new Error((data.error && data.error.message_zh) || "操作失败");
    return data;
  }
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
    return node;
  }
  function duration(seconds) {
    const m = Math.floor(seconds / 60), s = seconds % 60;
    return m >= 60 ? `${Math.floor(m / 60)}小时${m % 60}分` : `${m}分${String(s).padStart(2, "0")}秒`;
  }
  const time = (iso) => iso ? iso.slice(11, 16) : "";

  // ------------------------------------------------------------------ queue
  async function renderQueue() {
    try {
      const data = await api("/queue");
      const rows = $("queue-rows");
      rows.replaceChildren();
      $("queue-count").textContent = `（${data.cases.length}）`;
      if (!data.cases.length) rows.append(el("tr", {}, el("td", {colspan: 8}, "暂无排队工单")));
      for (const c of data.cases) {
        const cust = c.customer ? `${c.customer.name_masked} ${c.customer.phone_masked}` : c.conversation_masked;
        const open = el("a", {href: `/console/cases/${c.id}`}, "查看");
        const claim = c.status === "open" ? el("button", {type: "button", class: "claim", onclick: async () => {
          try { await api(`/cases/${c.id}/claim`, {method: "POST"}); location.href = `/console/cases/${c.id}`; }
          catch (e) { $("queue-error").textContent = e.message; }
        }}, "接手") : "";
        rows.append(el("tr", {class: c.overdue ? "late" : "", "data-case": c.id},
          el("td", {}, `P${c.priority}`), el("td", {}, c.reference), el("td", {}, REASONS[c.reason] || c.reason),
          el("td", {}, CHANNELS[c.channel] || c.channel), el("td", {}, cust),
          el("td", {class: "timer"}, duration(c.waiting_seconds)),
          el("td", {}, c.assigned_to ? `${STATUS[c.status]}·${c.assigned_to}` : STATUS[c.status]),
          el("td", {}, claim, " ", open)));
      }
      $("queue-error").textContent = "";
    } catch (e) { $("queue-error").textContent = e.message; }
  }

  // ------------------------------------------------------------------ case
  const caseId = body.dataset.case;
  let shownTurns = 0;
  function renderTranscript(turns) {
    const list = $("transcript");
    if (turns.length === shownTurns) return;
    list.replaceChildren(...turns.map((t) => el("li", {class: t.who},
      el("span", {class: "meta"}, {borrower: "客户", bot: "智能助手", staff: `客服 ${t.staff || ""}`, system: "系统"}[t.who] + " " + time(t.at)),
      el("span", {class: "text"}, t.text))));
    shownTurns = turns.length;
    list.scrollTop = list.scrollHeight;
  }
  function renderCustomer(c) {
    const box = $("customer");
    if (!c) { box.replaceChildren(el("p", {class: "hint"}, "客户未完成身份验证：不显示账户信息。")); return; }
    const loans = c.loans.map((l) => el("li", {},
      `${l.product_name}（尾号${l.loan_no_last4}）${LOAN_STATUS[l.status] || l.status}：待还¥${l.amount_due}，剩余¥${l.total_outstanding}` +
      (l.next_due_date ? `，下期${l.next_due_date}` : "") + (l.days_past_due ? `，逾期${l.days_past_due}天（罚息¥${l.penalty_interest}）` : "")));
    box.replaceChildren(
      el("p", {}, `${c.name}　${c.phone_masked}　身份证尾号${c.id_last4}`),
      el("p", {}, `风险分层：${c.risk_tier}　价值分层：${c.value_tier}　偏好渠道：${CHANNELS[c.preferred_channel] || c.preferred_channel}`),
      c.card ? el("p", {}, `还款卡：${c.card}`) : "",
      el("h3", {}, "借款"), el("ul", {}, ...loans),
      el("h3", {}, "还款承诺"), el("ul", {}, ...(c.promises.length ? c.promises.map((p) => el("li", {}, `${p.promised_date} ¥${p.amount}`)) : [el("li", {}, "无")])),
      el("h3", {}, "还款方案申请"), el("ul", {}, el("li", {class: "hint"}, c.plan_requests.length ? "" : "无（流程上线后显示）")),
      el("h3", {}, "投诉"), el("ul", {}, el("li", {class: "hint"}, c.complaints.length ? "" : "无（流程上线后显示）")));
  }
  function renderState(c, mine) {
    $("case-title").textContent = `${c.reference} · ${REASONS[c.reason] || c.reason} · ${CHANNELS[c.channel] || c.channel}`;
    $("case-status").textContent = c.assigned_to ? `${STATUS[c.status]}（${c.assigned_to}）` : STATUS[c.status];
    $("claim").hidden = c.status !== "open";
    $("hand-back").hidden = !(mine && c.status === "claimed");
    $("send").disabled = !(mine && c.status === "claimed");
    $("reassign-box").hidden = !(role === "supervisor" && c.status !== "closed");
  }
  async function loadCase() {
    try {
      const d = await api(`/cases/${caseId}`);
      $("case-view").hidden = false;
      renderState(d.case, d.mine);
      $("case-summary").textContent = d.case.summary;
      renderCustomer(d.customer);
      $("notes").replaceChildren(...d.notes.map((n) => el("li", {}, `${n.author} ${time(n.created_at)}：${n.text}`)));
      if (d.transcript) renderTranscript(d.transcript);
      $("case-error").textContent = d.transcript_error || "";
    } catch (e) { $("case-error").textContent = e.message; }
  }
  async function pollTranscript() {
    try {
      const d = await api(`/cases/${caseId}/transcript`);
      renderTranscript(d.transcript);
    } catch (e) { /* the next poll retries */ }
  }
  async function action(fn) {
    try { await fn(); $("case-error").textContent = ""; await loadCase(); }
    catch (e) { $("case-error").textContent = e.message; }
  }
  function initCase() {
    $("claim").addEventListener("click", () => action(() => api(`/cases/${caseId}/claim`, {method: "POST"})));
    $("send").addEventListener("click", () => action(async () => {
      await api(`/cases/${caseId}/reply`, {method: "POST", json: {text: $("reply-text").value}});
      $("reply-text").value = "";
    }));
    $("add-note").addEventListener("click", () => action(async () => {
      await api(`/cases/${caseId}/notes`, {method: "POST", json: {text: $("note-text").value}});
      $("note-text").value = "";
    }));
    $("hand-back").addEventListener("click", () => action(() => api(`/cases/${caseId}/hand-back`, {method: "POST"})));
    $("reassign").addEventListener("click", () => action(() =>
      api(`/cases/${caseId}/reassign`, {method: "POST", json: {staff: $("reassign-to").value}})));
    if (role === "supervisor") {
      api("/staff").then((list) => $("reassign-to").replaceChildren(
        ...list.map((s) => el("option", {value: s.username}, `${s.name}（${s.username}）`))));
      $("canned-admin").hidden = false;
      $("canned-add").addEventListener("click", () => action(async () => {
        await api("/canned", {method: "POST", json: {title: $("canned-title").value, text: $("canned-body").value}});
        $("canned-title").value = ""; $("canned-body").value = "";
        await loadCanned();
      }));
    }
    loadCanned();
    loadCase();
    setInterval(pollTranscript, 1000);
  }
  async function loadCanned() {
    const list = await api("/canned");
    $("canned").replaceChildren(...list.map((r) => el("span", {class: "chip"},
      el("button", {type: "button", class: "canned-use", title: r.text, onclick: () => { $("reply-text").value = r.text; $("reply-text").focus(); }}, r.title),
      role === "supervisor" ? el("button", {type: "button", class: "canned-del", title: "删除", onclick: () => action(async () => {
        await api(`/canned/${r.id}`, {method: "DELETE"}); await loadCanned(); })}, "×") : "")));
  }

  // ------------------------------------------------------------------ start
  if (body.dataset.page === "queue") { renderQueue(); setInterval(renderQueue, 2000); }
  if (body.dataset.page === "case") initCase();
  if (body.dataset.page === "dashboard" && window.renderDashboard) window.renderDashboard(api);
  window.consoleApi = api;
})();
