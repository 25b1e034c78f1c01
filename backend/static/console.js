// Staff console: one small script for the queue, case, plan-request, complaint and dashboard pages (no framework);
// the understanding inbox draws itself (nlu_inbox.js).
"use strict";
(function () {
  const body = document.body;
  const csrf = body.dataset.csrf;
  const me = body.dataset.me;
  const role = body.dataset.role;
  const $ = (id) => document.getElementById(id);
  // 「¥12,500.00」 as everywhere else in the product; from the API's decimal string, not a float.
  const money = (x) => {
    if (x === null || x === undefined) return "—";
    const [whole, cents = "00"] = String(x).split(".");
    return `¥${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${cents.padEnd(2, "0")}`;
  };
  // The Chinese labels of every enum (texts/zh/labels.yml, in base.html's data-labels): {enum: {value: label}}.
  const LABELS = JSON.parse(body.dataset.labels);
  const label = (kind, value) => (LABELS[kind] || {})[value] || value;
  const REASONS = LABELS.handoff_reason;
  const CHANNELS = LABELS.channel;
  const STATUS = LABELS.handoff_status;
  const LOAN_STATUS = LABELS.loan_status;

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
  const flagged = new Map();  // event timestamp -> what the inbox answered (kept across re-renders)
  const FLAGGED = {created: "已标记", counted: "已标记", duplicate: "已标记过"};
  function flagButton(t) {
    // 「标记理解有误」: the message goes to the understanding inbox, named by its event timestamp only.
    const done = flagged.get(t.ts);
    const button = el("button", {type: "button", class: "flag", title: "这句话智能助手理解错了：送到理解收件箱审核"},
      done ? FLAGGED[done] : "标记理解有误");
    button.disabled = !!done;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const r = await api(`/cases/${caseId}/flag-message`, {method: "POST", json: {timestamp: t.ts}});
        flagged.set(t.ts, r.outcome);
        button.textContent = FLAGGED[r.outcome];
        $("case-error").textContent = "";
      } catch (e) { button.disabled = false; $("case-error").textContent = e.message; }
    });
    return button;
  }
  function renderTranscript(turns) {
    const list = $("transcript");
    if (turns.length === shownTurns) return;
    list.replaceChildren(...turns.map((t) => el("li", {class: t.who, ...(t.ts !== undefined && t.ts !== null ? {"data-ts": t.ts} : {})},
      el("span", {class: "meta"}, {borrower: "客户", bot: "智能助手", staff: `客服 ${t.staff || ""}`, system: "系统"}[t.who] + " " + time(t.at),
        t.who === "borrower" && typeof t.ts === "number" ? flagButton(t) : ""),
      el("span", {class: "text"}, t.text))));
    shownTurns = turns.length;
    list.scrollTop = list.scrollHeight;
  }
  function renderCustomer(c) {
    const box = $("customer");
    if (!c) { box.replaceChildren(el("p", {class: "hint"}, "客户未完成身份验证：不显示账户信息。")); return; }
    const loans = c.loans.map((l) => el("li", {},
      `${l.product_name}（尾号${l.loan_no_last4}）${LOAN_STATUS[l.status] || l.status}：待还${money(l.amount_due)}，剩余${money(l.total_outstanding)}` +
      (l.next_due_date ? `，下期${l.next_due_date}` : "") + (l.days_past_due ? `，逾期${l.days_past_due}天（罚息${money(l.penalty_interest)}）` : "")));
    box.replaceChildren(
      el("p", {}, `${c.name}　${c.phone_masked}　身份证尾号${c.id_last4}`),
      el("p", {}, `风险分层：${label("risk_tier", c.risk_tier)}　价值分层：${label("value_tier", c.value_tier)}　偏好渠道：${CHANNELS[c.preferred_channel] || c.preferred_channel}`),
      c.card ? el("p", {}, `还款卡：${c.card}`) : "",
      el("h3", {}, "借款"), el("ul", {}, ...loans),
      el("h3", {}, "还款承诺"), el("ul", {}, ...(c.promises.length ? c.promises.map((p) => el("li", {}, `${p.promised_date} ${p.amount ? money(p.amount) : ""}`)) : [el("li", {}, "无")])),
      el("h3", {}, "提前结清意向"), el("ul", {id: "customer-settlements"}, ...(c.settlement_intents.length ? c.settlement_intents.map((i) => el("li", {},
        `尾号${i.loan_no_last4}：${i.settle_on} 结清，应还${money(i.total)}（${i.recorded_on}登记）`)) : [el("li", {class: "hint"}, "无")])),
      el("h3", {}, "还款方案申请"), el("ul", {id: "customer-plans"}, ...(c.plan_requests.length ? c.plan_requests.map((r) => el("li", {},
        el("a", {href: `/console/plans/${encodeURIComponent(r.reference)}`}, r.reference),
        ` ${r.plan_type_label}${r.months ? r.months + "期" : ""} · ${r.status_label}`)) : [el("li", {class: "hint"}, "无")])),
      el("h3", {}, "投诉"), el("ul", {id: "customer-complaints"}, ...(c.complaints.length ? c.complaints.map((t) => el("li", {},
        el("a", {href: `/console/complaints/${encodeURIComponent(t.reference)}`}, t.reference),
        ` ${categories(t)} · ${t.status_label}` + (t.priority === "high" ? " · 高优先级" : ""))) : [el("li", {class: "hint"}, "无")])));
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

  // ------------------------------------------------------------------ shared by the plan and complaint views
  const reference = body.dataset.reference;
  const refPath = reference ? encodeURIComponent(reference) : "";
  const who = (c) => c ? `${c.name_masked} ${c.phone_masked}` : "未验证身份";
  const day = (iso) => iso ? iso.slice(0, 10) : "";
  const stamp = (iso) => iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : "";
  // A complaint's main category, then the others (「催收方式（另：隐私）」).
  function categories(t) {
    const others = t.other_category_labels || [];
    return t.category_label + (others.length ? `（另：${others.join("、")}）` : "");
  }
  function facts(id, pairs) {
    $(id).replaceChildren(...pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
  }
  async function act(errorId, fn, reload) {
    try { await fn(); $(errorId).textContent = ""; await reload(); }
    catch (e) { $(errorId).textContent = e.message; }
  }
  function countdown(seconds) {
    const sign = seconds < 0 ? "已超期 " : "";
    let s = Math.abs(seconds);
    const d = Math.floor(s / 86400); s %= 86400;
    const h = Math.floor(s / 3600); s %= 3600;
    const m = Math.floor(s / 60); s %= 60;
    return `${sign}${d ? d + "天" : ""}${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  }
  // Seconds left now, from the server's figure and the time since it was fetched.
  const left = (seconds, fetchedAt) => seconds - Math.floor((Date.now() - fetchedAt) / 1000);
  const urgent = (seconds) => seconds < 86400;  // overdue or less than a day left

  // ------------------------------------------------------------------ plan requests
  const REVIEW_REASONS = LABELS.plan_review_reason;
  async function renderPlans() {
    const params = new URLSearchParams();
    const status = $("f-status").value;
    if (status === "all") ["submitted", "under_review", "approved", "rejected", "withdrawn"].forEach((x) => params.append("status", x));
    else if (status) params.append("status", status);
    if ($("f-type").value) params.append("plan_type", $("f-type").value);
    if ($("f-review").value) params.append("needs_staff_review", $("f-review").value);
    try {
      const data = await api(`/plans?${params}`);
      const rows = $("plan-rows");
      $("plans-count").textContent = `（${data.requests.length}）`;
      rows.replaceChildren();
      if (!data.requests.length) rows.append(el("tr", {}, el("td", {colspan: 9}, "暂无申请")));
      for (const r of data.requests) {
        const tags = [r.needs_staff_review ? el("span", {class: "tag"}, "人工审核") : "",
          r.requires_supervisor ? el("span", {class: "tag warn"}, "需主管") : ""];
        rows.append(el("tr", {"data-reference": r.reference},
          el("td", {}, r.reference), el("td", {}, who(r.customer)), el("td", {}, r.loan_no_last4),
          el("td", {}, r.plan_type_label, " ", ...tags), el("td", {}, r.months ? `${r.months}期` : "—"),
          el("td", {}, money(r.monthly_amount)), el("td", {}, r.submitted_on), el("td", {}, r.status_label),
          el("td", {}, el("a", {href: `/console/plans/${encodeURIComponent(r.reference)}`}, "查看"))));
      }
      $("plans-error").textContent = "";
    } catch (e) { $("plans-error").textContent = e.message; }
  }
  function scheduleRows(id, figures) {
    $(id).replaceChildren(...figures.schedule.map((r) => el("tr", {},
      el("td", {}, r.seq), el("td", {}, r.due_date), el("td", {}, r.principal), el("td", {}, r.interest),
      el("td", {}, r.fee), el("td", {}, r.total))));
  }
  async function loadPlan() {
    try {
      const r = await api(`/plans/${refPath}`);
      const q = r.quote;
      $("plan-view").hidden = false;
      $("plan-title").textContent = `${r.reference} · ${r.plan_type_label}${r.months ? r.months + "期" : ""}`;
      $("plan-status").textContent = r.status_label;
      facts("plan-facts", [["客户", who(r.customer)], ["借款尾号", r.loan_no_last4], ["渠道", CHANNELS[r.channel] || r.channel],
        ["申请原因", r.reason_label], ["客户说明", r.reason_text], ["提交日期", r.submitted_on], ["答复期限", r.decision_due_on],
        ["涉及金额", money(r.amount)]]);
      $("plan-asof").textContent = `（按${q.as_of}测算，年利率${(Number(q.annual_rate) * 100).toFixed(2)}%）`;
      if (r.plan_type === "waiver") {
        facts("plan-figures", [["减免罚息", money(q.waived_penalty_interest)], ["减免费用", money(q.waived_fees)],
          ["减免合计", money(q.waived_amount)], ["减免后仍需还款", money(q.total_repayable)]]);
      } else {
        facts("plan-figures", [["未还本金", money(q.outstanding_principal)], ["并入欠款（不计息）", money(q.carried_total)],
          ["新月供", money(q.monthly_amount)], ["期数", q.instalments], ["总利息", money(q.total_interest)],
          ["还款总额", money(q.total_repayable)], ["首期还款日", q.first_due_date], ["调整后总期限", q.total_term_months ? `${q.total_term_months}个月` : ""]]);
      }
      $("plan-schedule").hidden = !q.schedule.length;
      scheduleRows("schedule-rows", q);
      $("plan-deferred").replaceChildren(...(q.deferred.length ? [el("h3", {}, "延期的期次"), el("ul", {}, ...q.deferred.map((d) =>
        el("li", {}, `第${d.seq}期 ${d.due_date} → ${d.new_due_date}（${money(d.amount)}）`)))] : []));
      $("plan-approved").hidden = !r.approved_quote || !r.approved_quote.schedule.length;
      if (r.approved_quote) { $("approved-asof").textContent = `（按${r.approved_quote.as_of}测算）`; scheduleRows("approved-rows", r.approved_quote); }
      const flags = [];
      flags.push(el("li", {class: r.needs_staff_review ? "warn" : ""}, r.needs_staff_review
        ? `需人工审核：${r.staff_review_reasons.map((x) => REVIEW_REASONS[x] || x).join("、")}` : "自动预审通过，无需人工审核"));
      flags.push(el("li", {class: r.requires_supervisor ? "warn" : ""}, r.requires_supervisor
        ? `需主管批准（金额${money(r.amount)}超过¥${r.supervisor_approval_above}）` : "客服可批准"));
      if (r.requires_supervisor && !r.can_approve) flags.push(el("li", {class: "hint"}, "您是客服：可开始审核或拒绝，批准需主管操作"));
      $("plan-flags").replaceChildren(...flags);
      $("plan-review").hidden = r.status !== "submitted";
      for (const id of ["plan-note", "plan-approve", "plan-reason", "plan-reject"]) $(id).hidden = r.status !== "under_review";
      const history = [[r.created_at, `客户提交申请（${CHANNELS[r.channel] || r.channel}）`]];
      if (r.review_started_at) history.push([r.review_started_at, `${r.reviewer} 开始审核`]);
      if (r.decided_at) history.push([r.decided_at, `${r.decided_by} ${r.status_label}` + (r.decision_reason ? `：${r.decision_reason}` : "")]);
      if (r.withdrawn_at) history.push([r.withdrawn_at, "客户撤回申请"]);
      $("plan-history").replaceChildren(...history.map(([at, text]) => el("li", {}, `${stamp(at)} ${text}`)));
    } catch (e) { $("plan-error").textContent = e.message; }
  }
  function initPlan() {
    $("plan-review").addEventListener("click", () => act("plan-error", () => api(`/plans/${refPath}/review`, {method: "POST"}), loadPlan));
    $("plan-approve").addEventListener("click", () => act("plan-error", () =>
      api(`/plans/${refPath}/approve`, {method: "POST", json: {note: $("plan-note").value || null}}), loadPlan));
    $("plan-reject").addEventListener("click", () => {
      if (!$("plan-reason").value.trim()) { $("plan-error").textContent = "拒绝申请必须填写原因"; $("plan-reason").focus(); return; }
      act("plan-error", () => api(`/plans/${refPath}/reject`, {method: "POST", json: {reason: $("plan-reason").value}}), loadPlan);
    });
    loadPlan();
  }

  // ------------------------------------------------------------------ complaints
  let tickets = [], ticketsAt = 0;
  async function loadComplaints() {
    const status = $("f-cstatus").value;
    try {
      const data = await api("/complaints" + (status ? `?status=${status}` : ""));
      tickets = data.tickets; ticketsAt = Date.now();
      $("complaints-count").textContent = `（${tickets.length}）`;
      const rows = $("complaint-rows");
      rows.replaceChildren();
      if (!tickets.length) rows.append(el("tr", {}, el("td", {colspan: 9}, "暂无投诉工单")));
      for (const t of tickets) {
        rows.append(el("tr", {"data-reference": t.reference},
          el("td", {}, t.priority === "high" ? el("span", {class: "tag warn"}, label("complaint_priority", t.priority))
            : label("complaint_priority", t.priority)),
          el("td", {}, t.reference, t.linked_to ? el("small", {}, ` 关联${t.linked_to}`) : ""),
          el("td", {}, categories(t)), el("td", {}, who(t.customer)), el("td", {}, stamp(t.received_at)),
          el("td", {}, stamp(t.due_at), t.extended ? el("small", {}, "（已延期）") : ""),
          el("td", {class: "timer"}),
          el("td", {}, t.status === "draft" ? el("span", {class: "tag warn"}, t.status_label) : t.status_label),
          el("td", {}, el("a", {href: `/console/complaints/${encodeURIComponent(t.reference)}`}, "查看"))));
      }
      tickComplaints();
      $("complaints-error").textContent = "";
    } catch (e) { $("complaints-error").textContent = e.message; }
  }
  function tickComplaints() {
    for (const t of tickets) {
      const row = document.querySelector(`#complaint-rows tr[data-reference="${t.reference}"]`);
      if (!row) continue;
      if (t.seconds_remaining === null) { row.querySelector(".timer").textContent = "—"; continue; }
      const s = left(t.seconds_remaining, ticketsAt);
      row.classList.toggle("late", urgent(s));
      row.querySelector(".timer").textContent = countdown(s);
    }
  }
  let ticket = null, ticketAt = 0;
  async function loadComplaint() {
    try {
      const t = ticket = await api(`/complaints/${refPath}`);
      ticketAt = Date.now();
      $("complaint-view").hidden = false;
      $("complaint-title").textContent = `${t.reference} · ${categories(t)}` + (t.priority === "high" ? " · 高优先级" : "");
      $("complaint-status").textContent = t.status_label;
      facts("complaint-facts", [["客户", who(t.customer)], ["渠道", CHANNELS[t.channel] || t.channel],
        ["类别", [t.category_label, ...(t.other_category_labels || [])].join("、")],
        ["草稿", t.status === "draft" ? "客户在对话中开始但未提交完，已按收到投诉计算处理期限" : ""],
        ["联系方式", t.contact], ["受理时间", stamp(t.received_at)], ["处理期限", stamp(t.due_at) + (t.extended ? "（已延期）" : "")],
        ["延期原因", t.extension_reason], ["处理结果", t.resolution], ["情绪危机", t.distress ? "是" : ""],
        ["自动提醒", t.pauses_reminders ? "已暂停" : (t.reminders_cleared_by ? `已由${t.reminders_cleared_by}恢复` : "")]]);
      $("complaint-text").textContent = t.description || "（未填写）";
      $("complaint-outcome").textContent = t.desired_outcome || "（未填写）";
      $("complaint-events").replaceChildren(...t.events.map((e) => el("li", {},
        el("span", {class: "meta"}, `${stamp(e.at)} ${e.actor === "customer" ? "客户" : e.actor}`), ` ${e.label}`,
        e.note ? el("pre", {class: "verbatim"}, e.note) : "")));
      $("complaint-linked").replaceChildren(...(t.linked.length ? t.linked.map((ref) => el("li", {},
        el("a", {href: `/console/complaints/${encodeURIComponent(ref)}`}, ref))) : [el("li", {class: "hint"}, "无")]));
      const live = t.status === "draft" || t.status === "received" || t.status === "in_progress";
      $("c-start").hidden = t.status !== "received" && t.status !== "draft";
      for (const id of ["c-resolution", "c-resolve", "c-close-note", "c-close"]) $(id).hidden = !live;
      for (const id of ["c-extend-reason", "c-extend-date", "c-extend"]) $(id).disabled = !live || t.extended;
      $("c-pause-box").hidden = !t.pauses_reminders;
      tickComplaint();
    } catch (e) { $("complaint-error").textContent = e.message; }
  }
  function tickComplaint() {
    const box = $("complaint-countdown");
    if (!ticket || ticket.seconds_remaining === null) { box.textContent = ""; box.classList.remove("late"); return; }
    const s = left(ticket.seconds_remaining, ticketAt);
    box.textContent = `剩余 ${countdown(s)}`;
    box.classList.toggle("late", urgent(s));
  }
  function initComplaint() {
    const go = (fn) => act("complaint-error", fn, loadComplaint);
    $("c-start").addEventListener("click", () => go(() => api(`/complaints/${refPath}/start`, {method: "POST"})));
    $("c-resolve").addEventListener("click", () => {
      if (!$("c-resolution").value.trim()) { $("complaint-error").textContent = "请填写处理结果"; return; }
      go(() => api(`/complaints/${refPath}/resolve`, {method: "POST", json: {resolution: $("c-resolution").value}}));
    });
    $("c-close").addEventListener("click", () => go(() =>
      api(`/complaints/${refPath}/close`, {method: "POST", json: {note: $("c-close-note").value || null}})));
    $("c-extend").addEventListener("click", () => {
      if (!$("c-extend-reason").value.trim()) { $("complaint-error").textContent = "延期必须填写原因"; return; }
      go(() => api(`/complaints/${refPath}/extend`, {method: "POST",
        json: {reason: $("c-extend-reason").value, due_date: $("c-extend-date").value || null}}));
    });
    $("c-clear-pause").addEventListener("click", () => go(() => api(`/complaints/${refPath}/clear-reminder-pause`, {method: "POST"})));
    loadComplaint();
    setInterval(tickComplaint, 1000);
  }

  // ------------------------------------------------------------------ start
  if (body.dataset.page === "queue") { renderQueue(); setInterval(renderQueue, 2000); }
  if (body.dataset.page === "case") initCase();
  if (body.dataset.page === "plans") {
    for (const id of ["f-status", "f-type", "f-review"]) $(id).addEventListener("change", renderPlans);
    renderPlans();
  }
  if (body.dataset.page === "plan") initPlan();
  if (body.dataset.page === "complaints") {
    $("f-cstatus").addEventListener("change", loadComplaints);
    loadComplaints(); setInterval(tickComplaints, 1000); setInterval(loadComplaints, 30000);
  }
  if (body.dataset.page === "complaint") initComplaint();
  if (body.dataset.page === "dashboard" && window.renderDashboard) window.renderDashboard(api);
  if (body.dataset.page === "nlu-inbox" && window.renderNluInbox) window.renderNluInbox(api);
  window.consoleApi = api;
})();
