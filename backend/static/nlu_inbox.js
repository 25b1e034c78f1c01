// Understanding inbox (理解收件箱): /console/api/nlu-inbox as a table with one-click review buttons.
// console.js calls window.renderNluInbox(api) on this page; text goes in as text nodes only.
"use strict";
window.renderNluInbox = function (api) {
  const $ = (id) => document.getElementById(id);
  const STATUSES = ["open", "confirmed", "corrected", "dismissed"];
  let intents = [], canReview = false;

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === false || v === null || v === undefined) continue;
      if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
    return node;
  }
  const stamp = (iso) => iso ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : "";
  const pct = (x) => x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`;
  const CHANNELS = {...JSON.parse(document.body.dataset.labels).channel, other: "其他"};

  function statusText(item) {
    let text = item.status_label;
    if (item.final_label) text += `：${item.final_label}`;
    if (item.reviewed_by) text += ` · ${item.reviewed_by}`;
    if (item.exported_at) text += " · 已导出";
    return text;
  }

  async function decide(item, path, body) {
    try {
      const updated = await api(`/nlu-inbox/${item.id}/${path}`, {method: "POST", json: body});
      const row = document.querySelector(`#inbox-rows tr[data-item="${item.id}"]`);
      if (row) row.replaceWith(renderRow(updated));
      $("inbox-error").textContent = "";
    } catch (e) { $("inbox-error").textContent = e.message; }
  }

  function renderRow(item) {
    const off = !canReview;
    const chosen = (name) => item.status !== "dismissed" && item.final_intent === name ? "chosen" : "";
    const buttons = [];
    if (item.predicted_intent) {
      buttons.push(el("button", {type: "button", class: `confirm ${chosen(item.predicted_intent)}`, disabled: off,
        "data-intent": item.predicted_intent, onclick: () => decide(item, "intent", {intent: item.predicted_intent})},
        `确认：${item.predicted_label}`));
    }
    for (const r of item.ranking.filter((r) => r.intent !== item.predicted_intent)) {
      buttons.push(el("button", {type: "button", class: `correct ${chosen(r.intent)}`, disabled: off,
        "data-intent": r.intent, title: `置信度 ${pct(r.confidence)}`,
        onclick: () => decide(item, "intent", {intent: r.intent})}, `改为：${r.label}`));
    }
    const select = el("select", {class: "intent-select", disabled: off, "aria-label": "选择正确的意图"},
      el("option", {value: ""}, "其他意图…"),
      ...intents.map((i) => el("option", {value: i.name, selected: item.final_intent === i.name && item.status !== "open"},
        `${i.label}（${i.name}）`)));
    buttons.push(el("span", {class: "pick"}, select, el("button", {type: "button", class: "correct-select", disabled: off,
      onclick: () => {
        if (!select.value) { $("inbox-error").textContent = "请先选择意图"; select.focus(); return; }
        decide(item, "intent", {intent: select.value});
      }}, "更正")));
    buttons.push(el("button", {type: "button", class: `dismiss ${item.status === "dismissed" ? "chosen" : ""}`, disabled: off,
      title: "不是借款人的意图（噪声），不导出", onclick: () => decide(item, "dismiss")}, "忽略"));
    return el("tr", {"data-item": item.id, "data-status": item.status, class: item.status === "open" ? "" : "decided"},
      el("td", {}, stamp(item.last_seen_at)),
      el("td", {}, item.source_label),
      el("td", {class: "said"}, el("span", {class: "text"}, item.text_masked),
        el("small", {}, ` ${CHANNELS[item.channel] || item.channel} ${item.conversation_masked}`)),
      el("td", {}, item.predicted_label || "—"),
      el("td", {}, pct(item.confidence)),
      el("td", {class: "count"}, String(item.occurrences)),
      el("td", {class: "status"}, statusText(item)),
      el("td", {class: "review"}, el("div", {class: "buttons"}, ...buttons)));
  }

  async function load() {
    const params = new URLSearchParams();
    const status = $("f-nstatus").value;
    (status === "all" ? STATUSES : [status]).forEach((s) => params.append("status", s));
    if ($("f-nsource").value) params.append("source", $("f-nsource").value);
    try {
      const data = await api(`/nlu-inbox?${params}`);
      intents = data.intents; canReview = data.can_review;
      $("inbox-readonly").hidden = canReview;
      $("inbox-count").textContent = `（${data.items.length}）`;
      const rows = $("inbox-rows");
      rows.replaceChildren(...(data.items.length ? data.items.map(renderRow)
        : [el("tr", {}, el("td", {colspan: 8}, "暂无消息"))]));
      $("inbox-error").textContent = "";
    } catch (e) { $("inbox-error").textContent = e.message; }
  }

  for (const id of ["f-nstatus", "f-nsource"]) $(id).addEventListener("change", load);
  $("inbox-refresh").addEventListener("click", load);
  load();
};
