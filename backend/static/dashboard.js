// Service dashboard: draws /console/api/dashboard with the vendored Chart.js (static/vendor).
"use strict";
window.renderDashboard = async function (api) {
  const $ = (id) => document.getElementById(id);
  const LABELS = JSON.parse(document.body.dataset.labels);  // texts/zh/labels.yml (base.html's data-labels)
  const REASONS = LABELS.handoff_reason;
  const COMPONENTS = {response_time: "响应时间", resolution_rate: "解决率", satisfaction: "满意度", complaint_rate: "投诉率"};
  const COLORS = {wechat: "#2bae66", sms: "#f0a202", web: "#1f6feb"};
  Chart.defaults.font.family = '"Noto Sans CJK SC", sans-serif';
  Chart.defaults.animation = false;
  let d;
  try { d = await api("/dashboard"); } catch (e) { $("dash-error").textContent = e.message; return; }
  const pct = (x) => x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`;
  const minutes = (s) => s === null || s === undefined ? null : +(s / 60).toFixed(1);
  const kpi = (label, value) => { const n = document.createElement("div"); n.className = "kpi";
    n.innerHTML = `<span></span><b></b>`; n.firstChild.textContent = label; n.lastChild.textContent = value; return n; };
  $("kpis").replaceChildren(
    kpi("服务质量评分", d.service_quality.score ?? "—"),
    kpi("会话量", d.containment.conversations), kpi("独立解决率", pct(d.containment.contained_share)),
    kpi("首次响应中位数", d.first_response.median_seconds === null ? "—" : `${minutes(d.first_response.median_seconds)}分钟`),
    kpi("满意度", d.csat.average === null ? "—" : `${d.csat.average} / 5（${d.csat.rated}条）`),
    kpi("承诺还款兑现率", pct(d.promises.kept_share)),
    kpi("投诉（未结/超期）", `${d.complaints.open} / ${d.complaints.overdue}`),
    kpi(`投诉${d.complaints.decision_days}天内办结率`, pct(d.complaints.resolved_within_deadline_share)));
  const days = d.conversations_per_day.map((r) => r.date.slice(5));
  new Chart($("chart-conversations"), {type: "bar", data: {labels: days, datasets: ["wechat", "sms", "web"].map((ch) => ({
    label: LABELS.channel[ch], data: d.conversations_per_day.map((r) => r[ch]), backgroundColor: COLORS[ch]}))},
    options: {scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true, ticks: {precision: 0}}}}});
  const c = d.containment;
  new Chart($("chart-containment"), {type: "doughnut", data: {labels: ["智能助手解决", "转人工"],
    datasets: [{data: [Math.max(0, c.conversations - c.handed_off), c.handed_off], backgroundColor: ["#1f6feb", "#d64545"]}]}});
  const reasons = Object.keys(d.handoff_reasons);
  new Chart($("chart-reasons"), {type: "bar", data: {labels: reasons.map((r) => REASONS[r] || r),
    datasets: [{label: "工单数", data: reasons.map((r) => d.handoff_reasons[r]), backgroundColor: "#9b59b6"}]},
    options: {indexAxis: "y", scales: {x: {beginAtZero: true, ticks: {precision: 0}}}}});
  new Chart($("chart-response"), {type: "bar", data: {labels: ["中位数", "90分位"],
    datasets: [{label: "分钟", data: [minutes(d.first_response.median_seconds), minutes(d.first_response.p90_seconds)],
      backgroundColor: ["#2bae66", "#f0a202"]}]}, options: {scales: {y: {beginAtZero: true}}}});
  new Chart($("chart-csat"), {type: "bar", data: {labels: ["1分", "2分", "3分", "4分", "5分"],
    datasets: [{label: "评价数", data: ["1", "2", "3", "4", "5"].map((k) => d.csat.distribution[k]), backgroundColor: "#f0a202"}]},
    options: {scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}});
  new Chart($("chart-outreach"), {type: "bar", data: {labels: ["提醒已发送", "提醒已回复", "承诺-进行中", "承诺-已兑现", "承诺-未兑现"],
    datasets: [{label: "数量", data: [d.reminders.sent, d.reminders.answered, d.promises.open, d.promises.kept, d.promises.broken],
      backgroundColor: ["#627d98", "#829ab1", "#1f6feb", "#2bae66", "#d64545"]}]},
    options: {scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}});
  const comps = Object.keys(d.service_quality.components);
  new Chart($("chart-quality"), {type: "bar", data: {labels: comps.map((k) => `${COMPONENTS[k] || k}（权重${Math.round(d.service_quality.components[k].weight * 100)}%）`),
    datasets: [{label: "得分（1-5）", data: comps.map((k) => d.service_quality.components[k].score), backgroundColor: "#102a43"}]},
    options: {scales: {y: {min: 0, max: 5}}}});
  const cp = d.complaints, b = cp.due_buckets;
  new Chart($("chart-complaints"), {type: "bar", data: {
    labels: ["已超期", "3天内到期", "7天内到期", "15天内到期", "已延期（15天后到期）", `本期已办结·${cp.decision_days}天内`, "本期已办结·超时"],
    datasets: [{label: "投诉工单数", data: [b.overdue, b.within_3_days, b.within_7_days, b.within_15_days, b.later,
      cp.resolved_within_deadline, cp.resolved - cp.resolved_within_deadline],
      backgroundColor: ["#d64545", "#f0a202", "#f7c948", "#2bae66", "#9b59b6", "#1f6feb", "#829ab1"]}]},
    options: {indexAxis: "y", scales: {x: {beginAtZero: true, ticks: {precision: 0}}}}});
  document.body.dataset.ready = "1";
};
