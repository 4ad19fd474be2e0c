// The run report page: everything a run wrote is put into the page as text (textContent), never as HTML, and
// every address is relative, so the page works behind a sub-path and loads nothing from elsewhere.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PAGE = 50;
const state = { summary: null, offset: 0, text: "", kind: "" };
const query = window.location.search;  // ?task_id=... from the task-instance tab, passed on to the data

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

// a link out of Airflow (Azure ML studio) opens a tab: inside the UI's tab the frame's sandbox allows no popup,
// so there the address is also shown as text to copy; links between reports stay in the frame
function link(text, href, newTab) {
  const a = el("a", text);
  a.href = href;
  if (newTab) a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 1) return `${(value * 1000).toFixed(1)} ms`;
  if (value < 120) return `${value.toFixed(2)} s`;
  return `${(value / 60).toFixed(1)} min`;
}

function defineRow(list, term, value) {
  list.append(el("dt", term));
  const dd = el("dd");
  if (value instanceof Node) dd.append(value); else dd.textContent = value === null || value === undefined ? "–" : String(value);
  list.append(dd);
}

function segment(value) { return encodeURIComponent(value); }

// addresses relative to this page: <base>/azureml-parallel-r/runs/<dag>/<run>/
function reportOf(runId) { return `../${segment(runId)}/`; }

async function getJson(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function showProblems(problems) {
  const list = document.getElementById("problems");
  list.replaceChildren(...problems.map((p) => el("li", p)));
  list.hidden = problems.length === 0;
}

function renderRun(s) {
  document.getElementById("title").textContent = `Run report · ${s.dag_id} · ${s.dag_run_id}`;
  const badge = document.getElementById("state");
  badge.textContent = s.dag_run_state;
  badge.className = `badge ${s.dag_run_state}`;
  const run = document.getElementById("run");
  run.replaceChildren();
  defineRow(run, "DAG run", s.dag_run_id);
  if (!s.submitted) {
    defineRow(run, "Pipeline run", "none: no task of azureml-parallel-r has submitted one in this DAG run (yet)");
    return;
  }
  const r = s.run;
  defineRow(run, "Engine", r.engine);
  defineRow(run, "Workspace", r.workspace);
  if (r.run_url) {
    const cell = el("span");
    cell.append(link(r.run_id, r.run_url, true), ` (${r.run_url})`);
    defineRow(run, "Pipeline run", cell);
  } else {
    defineRow(run, "Pipeline run", r.run_id);
  }
  const dataset = r.dataset || {};
  defineRow(run, "Dataset", `${dataset.name} v${dataset.version} · ${dataset.file_count} files · ${dataset.path}`);
  defineRow(run, "R script", r.r_script);
  defineRow(run, "R arguments", (r.r_args || []).join(" ") || "none");
  if ((r.r_packages || []).length) defineRow(run, "R packages", r.r_packages.join(", "));
  const processes = r.process_count_per_node === null ? "one per core" : r.process_count_per_node;
  defineRow(run, "Scale", `${r.node_count} node(s) × ${processes} process(es), ${r.mini_batch_size} files per mini-batch`);
  defineRow(run, "Outputs", r.output_location || r.output_path);
}

function tile(label, value) {
  const box = el("div", null, "tile");
  box.append(el("div", value, "value"), el("div", label, "label"));
  return box;
}

function renderOutcome(s) {
  const counts = document.getElementById("counts");
  const problems = document.getElementById("validation-problems");
  counts.replaceChildren();
  problems.replaceChildren();
  const v = s.validation;
  if (!v) {
    const p = s.progress || {};
    const c = p.counts || {};
    counts.append(tile("status", p.status || "not started"));
    for (const [key, value] of Object.entries(c)) counts.append(tile(key.replaceAll("_", " "), value));
    if (p.message) problems.append(el("li", p.message));
    return;
  }
  const c = v.counts;
  const missing = c.failed_without_failure_record;
  counts.append(
    tile("validation", v.passed ? "passed" : "failed"),
    tile("input files", c.input_files),
    tile("succeeded", c.succeeded),
    tile("failed", c.failed - missing - c.failed_allowed_by_pattern),
    tile("excused", c.failed_allowed_by_pattern),
    tile("missing", missing),
  );
  for (const text of [...(v.problems || []), ...(v.notes || [])]) problems.append(el("li", text));
  const repair = v.repair;
  document.getElementById("repair-outcome").textContent = repair
    ? `Repair of ${repair.repaired_dag_run_id}: ${repair.now_succeeded} of its ${repair.original_failures} failed files now succeeded, ${repair.still_failing} still fail.`
    : "";
}

function renderTime(s) {
  const time = document.getElementById("time");
  time.replaceChildren();
  const v = s.validation;
  const d = (v && v.durations) || {};
  const t = (v && v.throughput) || {};
  defineRow(time, "Wall time", seconds(t.wall_seconds));
  defineRow(time, "Throughput", t.files_per_second ? `${t.files_per_second} files/s` : "–");
  defineRow(time, "Per file", `p50 ${seconds(d.p50_seconds)} · p90 ${seconds(d.p90_seconds)} · p95 ${seconds(d.p95_seconds)} · p99 ${seconds(d.p99_seconds)} · max ${seconds(d.max_seconds)}`);
  drawHistogram((d.histogram) || { edges_seconds: [], counts: [] });
  document.getElementById("slowest").replaceChildren(
    ...(d.slowest || []).map((f) => el("li", `${f.relative_path} · ${seconds(f.seconds)}`)));
}

function drawHistogram(histogram) {
  const svg = document.getElementById("histogram");
  svg.replaceChildren();
  const counts = histogram.counts || [];
  if (!counts.length) return;
  const width = 640, height = 200, bottom = 30, left = 40;
  const most = Math.max(...counts);
  const barWidth = (width - left) / counts.length;
  counts.forEach((count, i) => {
    const barHeight = most ? ((height - bottom - 10) * count) / most : 0;
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("x", String(left + i * barWidth + 1));
    rect.setAttribute("y", String(height - bottom - barHeight));
    rect.setAttribute("width", String(Math.max(1, barWidth - 2)));
    rect.setAttribute("height", String(barHeight));
    const tip = document.createElementNS(SVG, "title");
    tip.textContent = `${count} file(s) from ${seconds(histogram.edges_seconds[i])} to ${seconds(histogram.edges_seconds[i + 1])}`;
    rect.append(tip);
    svg.append(rect);
  });
  const every = Math.max(1, Math.ceil(counts.length / 8));
  histogram.edges_seconds.forEach((edge, i) => {
    if (i % every) return;
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", String(left + i * barWidth));
    label.setAttribute("y", String(height - bottom + 14));
    label.textContent = seconds(edge);
    svg.append(label);
  });
  const top = document.createElementNS(SVG, "text");
  top.setAttribute("x", "0");
  top.setAttribute("y", "12");
  top.textContent = `${most} file(s)`;
  svg.append(top);
}

function renderRepairs(s) {
  const of = document.getElementById("rerun-of");
  of.replaceChildren();
  const rerunOf = s.run && s.run.rerun_of;
  if (rerunOf) {
    // the whole repair chain, its first run first: this run completes that run's date
    const chain = rerunOf.chain && rerunOf.chain.length ? rerunOf.chain : [rerunOf];
    of.append(`This run reruns the failed files of ${chain.length > 1 ? "a repair chain" : "a run"} for ${rerunOf.date || "its date"}: `);
    chain.forEach((r, i) => of.append(i ? " → " : "", link(r.dag_run_id, reportOf(r.dag_run_id))));
    of.append(" → this run.");
  }
  document.getElementById("repairs").replaceChildren(...(s.repairs || []).map((r) => {
    const item = el("li");
    item.append(link(r.dag_run_id, reportOf(r.dag_run_id)), ` (${r.state})`);
    return item;
  }));
  const button = document.getElementById("rerun");
  button.hidden = !s.rerun;
  button.disabled = Boolean(s.rerun && s.rerun.disabled);
  button.title = (s.rerun && s.rerun.disabled) || "";
  if (s.rerun) button.textContent = `Rerun ${s.rerun.files} failed file(s)`;
}

async function loadFailures() {
  const params = new URLSearchParams(query);
  params.set("offset", String(state.offset));
  params.set("limit", String(PAGE));
  if (state.text) params.set("text", state.text);
  if (state.kind) params.set("kind", state.kind);
  const page = await getJson(`failures?${params}`);
  const select = document.getElementById("filter-kind");
  if (select.options.length === 1) {
    for (const kind of Object.keys(page.kinds).sort()) {
      const option = el("option", `${kind} (${page.kinds[kind]})`);
      option.value = kind;
      select.append(option);
    }
  }
  const body = document.querySelector("#failures tbody");
  body.replaceChildren(...page.items.map((f) => {
    const row = el("tr");
    const file = el("td", f.relative_path);
    const error = el("td");
    error.append(el("div", f.error));
    for (const warning of f.warnings || []) error.append(el("div", `warning: ${warning}`));
    if (f.stderr_tail) error.append(el("pre", f.stderr_tail));
    row.append(file, el("td", f.allowed_by_pattern ? `${f.kind} (excused)` : f.kind), error, el("td", f.call || ""), el("td", f.attempt ?? ""));
    return row;
  }));
  const last = Math.min(page.offset + page.items.length, page.matching);
  document.getElementById("page").textContent = page.matching
    ? `${page.offset + 1}–${last} of ${page.matching}${page.matching !== page.total ? ` (of ${page.total})` : ""}`
    : "no failed files";
  document.getElementById("previous").disabled = page.offset === 0;
  document.getElementById("next").disabled = last >= page.matching;
}

async function rerun() {
  const s = state.summary;
  const result = document.getElementById("rerun-result");
  const button = document.getElementById("rerun");
  button.disabled = true;
  result.textContent = "Triggering…";
  try {
    const response = await fetch(`../../../../api/v2/dags/${segment(s.dag_id)}/dagRuns`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ logical_date: null, conf: s.rerun.conf }),
    });
    if (response.status === 401 || response.status === 403) {
      result.textContent = "You may not trigger this DAG: ask for permission to run it.";
      return;
    }
    if (!response.ok) {
      result.textContent = `Airflow refused the run: HTTP ${response.status}`;
      button.disabled = false;
      return;
    }
    const created = await response.json();
    result.replaceChildren("Triggered ", link(created.dag_run_id, reportOf(created.dag_run_id)), ".");
  } catch (error) {
    result.textContent = `Could not trigger the run: ${error.message}`;
    button.disabled = false;
  }
}

function wire() {
  let typing = null;
  document.getElementById("filter-text").addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.text = event.target.value; state.offset = 0; loadFailures().catch(fail); }, 250);
  });
  document.getElementById("filter-kind").addEventListener("change", (event) => {
    state.kind = event.target.value; state.offset = 0; loadFailures().catch(fail);
  });
  document.getElementById("previous").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadFailures().catch(fail); });
  document.getElementById("next").addEventListener("click", () => { state.offset += PAGE; loadFailures().catch(fail); });
  document.getElementById("rerun").addEventListener("click", rerun);
}

function fail(error) { showProblems([String(error.message || error)]); }

async function load() {
  const s = await getJson(`summary${query}`);
  state.summary = s;
  showProblems(s.problems || []);
  renderRun(s);
  renderOutcome(s);
  renderTime(s);
  renderRepairs(s);
  document.getElementById("loading").hidden = true;
  document.getElementById("report").hidden = false;
  document.getElementById("failures-section").hidden = !(s.validation && s.validation.counts.failed);
  if (s.validation && s.validation.counts.failed) await loadFailures();
  if (!s.validation && s.submitted && !["success", "failed"].includes(s.dag_run_state)) setTimeout(() => load().catch(fail), 5000);
}

document.addEventListener("DOMContentLoaded", () => { wire(); load().catch(fail); });
