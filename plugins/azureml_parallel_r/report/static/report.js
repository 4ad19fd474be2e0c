// The run report page: everything a run wrote is put into the page as text (textContent), never as HTML, and
// every address is relative, so the page works behind a sub-path and loads nothing from elsewhere.
//
// Inside Airflow's "Run report" tab (a same-origin frame) the page follows the UI: its light or dark theme and page
// colours (and switches when the UI's theme does), and a link to another run's report opens that run's tab in the UI
// itself (its route: the header, the grid and the address follow), not inside the frame.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PAGE = 50;
const REPORT_ROUTE = "azureml-parallel-r-report";
const state = { summary: null, offset: 0, text: "", kind: "" };
const query = window.location.search;  // ?task_id=... from the task-instance tab, passed on to the data
const numbers = new Intl.NumberFormat();

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function count(value) { return value === null || value === undefined ? "–" : numbers.format(value); }

// a path that wraps after its separators and nowhere else (unless one part is wider than the line)
function pathText(path) {
  const span = el("span", null, "path");
  String(path).split(/(?<=[/\\])/u).forEach((part, i) => {
    if (i) span.append(document.createElement("wbr"));
    span.append(part);
  });
  return span;
}

// --- the Airflow UI around the frame -------------------------------------------------------------------------------

function airflowWindow() {
  try {
    if (window.parent !== window && window.parent.document) return window.parent;  // same origin: readable
  } catch (error) { /* another origin, or opened on its own */ }
  return null;
}

function themeOf(top) {
  if (top) {
    const root = top.document.documentElement;
    if (root.classList.contains("dark")) return "dark";
    if (root.classList.contains("light")) return "light";
  }
  let chosen = null;
  try { chosen = window.localStorage.getItem("theme"); } catch (error) { /* storage refused */ }
  if (chosen === "dark" || chosen === "light") return chosen;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function applyTheme() {
  const top = airflowWindow();
  const root = document.documentElement;
  root.dataset.theme = themeOf(top);
  for (const name of ["--bg", "--fg", "--font"]) root.style.removeProperty(name);  // this theme's, not the last one's
  if (top) {  // the UI's own colours and font around the frame, so it does not show as a box of another colour
    const look = top.getComputedStyle(top.document.body);
    if (look.color) root.style.setProperty("--fg", look.color);
    if (look.fontFamily) root.style.setProperty("--font", look.fontFamily);
    for (let node = window.frameElement; node; node = node.parentElement) {
      const background = top.getComputedStyle(node).backgroundColor;
      if (background && background !== "rgba(0, 0, 0, 0)" && background !== "transparent") {
        root.style.setProperty("--bg", background);
        break;
      }
    }
  }
}

function followTheme() {
  applyTheme();
  const top = airflowWindow();
  if (top) {
    new top.MutationObserver(applyTheme).observe(top.document.documentElement, { attributes: true, attributeFilter: ["class", "style"] });
  }
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyTheme);
  window.addEventListener("storage", applyTheme);
}

// <UI base>/azureml-parallel-r/runs/<dag>/<run>/ -> <UI base>/
function uiBase() { return new URL("../../../../", window.location.href); }

function segment(value) { return encodeURIComponent(value); }

const TASK_REPORT_ROUTE = "azureml-parallel-r-task-report";
const ui = { tabs: true };  // whether the UI shows this user plugin tabs (FAB: roles with "can read on Plugins")

// the UI's own address of a DAG run's (or a task's) "Run report" tab
function reportTab(dagId, runId, taskId) {
  const run = `dags/${segment(dagId)}/runs/${segment(runId)}`;
  return new URL(taskId ? `${run}/tasks/${segment(taskId)}/plugin/${TASK_REPORT_ROUTE}` : `${run}/plugin/${REPORT_ROUTE}`, uiBase());
}

// this app's own page of another run of the DAG (a sibling of this page's folder)
function reportPage(runId) { return new URL(`../${segment(runId)}/`, window.location.href); }

// open an address of the UI in the UI: a route change of its router (the frame's sandbox allows no top navigation,
// and the UI's router follows the history it is given, as with its back button)
function navigateUi(url) {
  const top = airflowWindow();
  if (!top) { window.location.assign(url); return; }
  const previous = top.history.state || {};
  const idx = typeof previous.idx === "number" ? previous.idx + 1 : 0;
  top.history.pushState({ usr: null, key: Math.random().toString(36).slice(2, 10), idx }, "", url.pathname + url.search);
  top.dispatchEvent(new top.PopStateEvent("popstate", { state: top.history.state }));
}

function runLink(dagId, runId) {
  const url = ui.tabs ? reportTab(dagId, runId) : reportPage(runId);
  const a = el("a", runId);
  a.href = url.href;
  a.addEventListener("click", (event) => {
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey || !ui.tabs) return;
    event.preventDefault();
    navigateUi(url);
  });
  return a;
}

// Opened on its own (the task's "Run report" button): go to the UI's tab, where Airflow's header and grid are, when
// the UI shows this user plugin tabs; else stay, a complete report (its links lead to the other runs' pages).
async function forwardToTab() {
  if (airflowWindow()) return false;
  const parts = window.location.pathname.split("/");
  const at = parts.lastIndexOf("runs");
  if (at < 0 || parts.length < at + 3) return false;
  const [dagId, runId] = [decodeURIComponent(parts[at + 1]), decodeURIComponent(parts[at + 2])];
  try {
    const response = await fetch(new URL("api/v2/plugins?limit=1000", uiBase()), { credentials: "same-origin", headers: { Accept: "application/json" } });
    const plugins = response.ok ? (await response.json()).plugins || [] : [];
    ui.tabs = plugins.some((plugin) => (plugin.external_views || []).some((view) => view.url_route === REPORT_ROUTE));
  } catch (error) {
    ui.tabs = false;
  }
  if (!ui.tabs) return false;
  window.location.replace(reportTab(dagId, runId, new URLSearchParams(query).get("task_id")));
  return true;
}

// a link out of Airflow (Azure ML studio): the frame's sandbox allows no new tab, so the address is shown to copy too
function outLink(text, href) {
  const span = el("span");
  const a = el("a", text);
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  span.append(a, " ", el("span", `(${href})`, "log"));
  return span;
}

// --- data ------------------------------------------------------------------------------------------------------------

function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 1) return `${(value * 1000).toFixed(1)} ms`;
  if (value < 120) return `${value.toFixed(2)} s`;
  if (value < 7200) return `${(value / 60).toFixed(1)} min`;
  return `${numbers.format(Math.round(value / 360) / 10)} h`;
}

function defineRow(list, term, value) {
  list.append(el("dt", term));
  const dd = el("dd");
  if (value instanceof Node) dd.append(value); else dd.textContent = value === null || value === undefined ? "–" : String(value);
  list.append(dd);
}

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

function show(id, visible) { document.getElementById(id).hidden = !visible; }

// a section shown only when it has data: its list, emptied, or null when it is hidden
function openSection(sectionId, listId, data) {
  show(sectionId, Boolean(data));
  if (!data) return null;
  const list = document.getElementById(listId);
  list.replaceChildren();
  return list;
}

// --- sections --------------------------------------------------------------------------------------------------------

function renderRun(s) {
  document.getElementById("title").textContent = `Run report · ${s.dag_id} · ${s.dag_run_id}`;
  const badge = document.getElementById("state");
  badge.textContent = s.dag_run_state;
  badge.className = `badge ${s.dag_run_state}`;
  const run = document.getElementById("run");
  run.replaceChildren();
  defineRow(run, "DAG run", s.dag_run_id);
  if (!s.submitted) {
    const failed = Object.keys(s.task_errors || {}).length;
    defineRow(run, "Pipeline run", failed
      ? "none: a task failed before one was submitted (below)"
      : `none yet: no task has submitted one (the DAG run is ${s.dag_run_state})`);
    return;
  }
  const r = s.run;
  defineRow(run, "Engine", r.engine);
  defineRow(run, "Workspace", r.workspace);
  defineRow(run, "Pipeline run", r.run_url ? outLink(r.run_id, r.run_url) : r.run_id);
  const dataset = r.dataset || {};
  const files = dataset.file_count === undefined ? "" : ` · ${count(dataset.file_count)} files`;
  const where = el("span");
  where.append(`${dataset.name} v${dataset.version}${files} · `, pathText(dataset.path || ""));
  defineRow(run, "Dataset", where);
  defineRow(run, "R script", r.r_script);
  defineRow(run, "R arguments", (r.r_args || []).join(" ") || "none");
  if ((r.r_packages || []).length) defineRow(run, "R packages", r.r_packages.join(", "));
  const processes = r.process_count_per_node === null ? "one per core" : r.process_count_per_node;
  defineRow(run, "Scale", `${r.node_count} node(s) × ${processes} process(es), ${count(r.mini_batch_size)} files per mini-batch`);
  defineRow(run, "Outputs", pathText(r.output_location || r.output_path));
  if (r.logs_folder) defineRow(run, "Logs", pathText(r.logs_folder));
}

function renderTasks(s) {
  const errors = s.task_errors || {};
  const failedBeforeSubmit = !s.submitted && Object.keys(s.task_states || {}).length > 0;
  show("tasks-section", failedBeforeSubmit);
  if (!failedBeforeSubmit) return;
  document.querySelector("#tasks tbody").replaceChildren(...Object.keys(s.task_states).sort().map((task) => {
    const row = el("tr");
    const error = el("td");
    if (errors[task]) error.append(el("pre", errors[task]));
    row.append(el("td", task), el("td", s.task_states[task] || "none"), error);
    return row;
  }));
}

function tile(label, value) {
  const box = el("div", null, "tile");
  box.append(el("div", typeof value === "number" ? count(value) : value, "value"), el("div", label, "label"));
  return box;
}

function renderOutcome(s) {
  const counts = document.getElementById("counts");
  const problems = document.getElementById("validation-problems");
  counts.replaceChildren();
  problems.replaceChildren();
  show("progress-bar", false);
  show("outcome-section", s.submitted);
  const v = s.validation;
  if (!v) {
    const p = s.progress;
    if (!p) return;
    counts.append(tile("status", p.status || "not started"));
    const done = (p.succeeded_files || 0) + (p.failed_files || 0);
    counts.append(tile("files done", p.total_files ? `${count(done)} / ${count(p.total_files)}` : count(done)));
    counts.append(tile("succeeded", p.succeeded_files ?? "–"), tile("failed", p.failed_files ?? "–"));
    counts.append(tile("failure records so far", p.failure_records ?? "–"));
    const [batchesDone, batches] = p.mini_batches || [];
    if (batches) counts.append(tile("mini-batches", `${count(batchesDone)} / ${count(batches)}`));
    if (p.total_files) {
      show("progress-bar", true);
      document.querySelector("#progress-bar > div").style.width = `${Math.min(100, (100 * done) / p.total_files)}%`;
    }
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
    ? `Repair of ${repair.repaired_dag_run_id}: ${count(repair.now_succeeded)} of its ${count(repair.original_failures)} failed files now succeeded, ${count(repair.still_failing)} still fail.`
    : "";
}

function renderTime(s) {
  const v = s.validation;
  const time = openSection("time-section", "time", v);
  if (!time) return;
  const d = v.durations || {};
  const t = v.throughput || {};
  defineRow(time, "Wall time", seconds(t.wall_seconds));
  defineRow(time, "Throughput", t.files_per_second ? `${numbers.format(t.files_per_second)} files/s` : "–");
  defineRow(time, "Per file", `p50 ${seconds(d.p50_seconds)} · p90 ${seconds(d.p90_seconds)} · p95 ${seconds(d.p95_seconds)} · p99 ${seconds(d.p99_seconds)} · max ${seconds(d.max_seconds)}`);
  const histogram = d.histogram || { edges_seconds: [], counts: [] };
  show("histogram-figure", (histogram.counts || []).length > 0);
  drawHistogram(histogram);
  document.getElementById("slowest").replaceChildren(...(d.slowest || []).map((f) => {
    const item = el("li");
    item.append(pathText(f.relative_path), ` · ${seconds(f.seconds)}`);
    return item;
  }));
}

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// bars of files per duration bucket, with a y axis of file counts, an x axis of durations and each bar's count
function drawHistogram(histogram) {
  const chart = document.getElementById("histogram");
  chart.replaceChildren();
  const counts = histogram.counts || [];
  if (!counts.length) return;
  const width = 680, height = 230, left = 56, right = 36, top = 18, bottom = 40;
  const plotHeight = height - top - bottom, plotWidth = width - left - right;
  const most = Math.max(1, ...counts);
  const barWidth = plotWidth / counts.length;
  chart.append(svg("line", { x1: left, y1: top, x2: left, y2: top + plotHeight }));
  chart.append(svg("line", { x1: left, y1: top + plotHeight, x2: width - right, y2: top + plotHeight }));
  for (const tick of [0, Math.round(most / 2), most]) {
    const y = top + plotHeight - (plotHeight * tick) / most;
    chart.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, count(tick)));
  }
  chart.append(svg("text", { x: 0, y: 10 }, "files"));
  counts.forEach((n, i) => {
    const barHeight = (plotHeight * n) / most;
    const x = left + i * barWidth;
    const rect = svg("rect", { x: x + 1, y: top + plotHeight - barHeight, width: Math.max(1, barWidth - 2), height: barHeight });
    rect.append(svg("title", {}, `${count(n)} file(s) from ${seconds(histogram.edges_seconds[i])} to ${seconds(histogram.edges_seconds[i + 1])}`));
    chart.append(rect);
    if (n) chart.append(svg("text", { x: x + barWidth / 2, y: top + plotHeight - barHeight - 3, "text-anchor": "middle" }, count(n)));
  });
  const every = Math.max(1, Math.ceil(histogram.edges_seconds.length / 7));
  histogram.edges_seconds.forEach((edge, i) => {
    if (i % every) return;
    chart.append(svg("text", { x: left + i * barWidth, y: top + plotHeight + 16, "text-anchor": "middle" }, seconds(edge)));
  });
  chart.append(svg("text", { x: left + plotWidth / 2, y: height - 4, "text-anchor": "middle" }, "time per file"));
}

function money(value, currency) {
  if (value === null || value === undefined) return "–";
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency, maximumSignificantDigits: 4 }).format(value);
  } catch (error) {
    return `${numbers.format(value)} ${currency || ""}`.trim();
  }
}

function renderCost(s) {
  const c = s.cost;
  const list = openSection("cost-section", "cost", c);
  if (!list) return;
  const soFar = c.final ? "" : " (so far)";
  if (c.kind === "cpu") {
    defineRow(list, "CPU time", c.cpu_seconds === null ? "measured when the run ends" : `${count(c.cpu_seconds)} CPU-seconds${soFar}`);
    defineRow(list, "Per successful file", c.cpu_seconds_per_successful_file === null ? "–" : `${numbers.format(c.cpu_seconds_per_successful_file)} CPU-seconds`);
    defineRow(list, "How", "the local engine's processes (controller, workers, R): user and system CPU time");
    return;
  }
  defineRow(list, "Compute", `${c.node_count} × ${c.vm_size || "unknown VM size"}`);
  defineRow(list, "Node-hours", c.node_hours === null ? "–" : `${numbers.format(c.node_hours)}${soFar}`);
  defineRow(list, "Price", c.price_per_hour === null ? `no price for ${c.vm_size || "this VM size"} in the price table` : `${money(c.price_per_hour, c.currency)} per node-hour`);
  defineRow(list, "Cost", `${money(c.total, c.currency)}${c.total === null ? "" : soFar}`);
  defineRow(list, "Per successful file", money(c.per_successful_file, c.currency));
  defineRow(list, "Prices", `${c.prices_source || "–"} (as of ${c.prices_as_of || "?"})`);
}

function renderRepairs(s) {
  const of = document.getElementById("rerun-of");
  of.replaceChildren();
  const rerunOf = s.run && s.run.rerun_of;
  if (rerunOf) {
    // the whole repair chain, its first run first: this run completes that run's date
    const chain = rerunOf.chain && rerunOf.chain.length ? rerunOf.chain : [rerunOf];
    of.append(`This run reruns the failed files of ${chain.length > 1 ? "a repair chain" : "a run"} for ${rerunOf.date || "its date"}: `);
    chain.forEach((r, i) => of.append(i ? " → " : "", runLink(s.dag_id, r.dag_run_id)));
    of.append(" → this run.");
  }
  const repairs = s.repairs || [];
  document.getElementById("repairs").replaceChildren(...repairs.map((r) => {
    const item = el("li");
    item.append(runLink(s.dag_id, r.dag_run_id), ` (${r.state})`);
    return item;
  }));
  show("repairs-section", Boolean(rerunOf) || repairs.length > 0);
  const button = document.getElementById("rerun");
  const reason = document.getElementById("rerun-reason");
  const why = (s.rerun && s.rerun.disabled) || "";
  button.hidden = !s.rerun;
  button.disabled = Boolean(why);
  button.title = why;
  reason.textContent = why ? `Rerun is not available: ${why}.` : "";
  reason.hidden = !why;
  if (s.rerun) button.textContent = `Rerun ${count(s.rerun.files)} failed file(s)`;
}

function downloads() {
  for (const [id, name] of [["download-csv", "failures.csv"], ["download-jsonl", "failures.jsonl"], ["download-slowest", "slowest.csv"]]) {
    document.getElementById(id).href = `${name}${query}`;
  }
}

function logCell(f, run) {
  if (!f.log) return null;
  if (run.logs_folder && !f.log.startsWith("/")) return el("div", `log: ${run.logs_folder}/${f.log}`, "log");
  if (run.run_url) {
    const where = el("div", null, "log");
    where.append("log: ", outLink("the pipeline run", run.run_url), ` → Outputs + logs → ${f.log}`);
    return where;
  }
  return el("div", `log: ${f.log}`, "log");
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
      const option = el("option", `${kind} (${count(page.kinds[kind])})`);
      option.value = kind;
      select.append(option);
    }
  }
  const run = (state.summary && state.summary.run) || {};
  document.querySelector("#failures tbody").replaceChildren(...page.items.map((f) => {
    const row = el("tr");
    const file = el("td");
    file.append(pathText(f.relative_path));
    const error = el("td");
    error.append(el("div", f.error));
    for (const warning of f.warnings || []) error.append(el("div", `warning: ${warning}`));
    if (f.stderr_tail) {
      const output = el("details");
      output.append(el("summary", "R's output"), el("pre", f.stderr_tail));
      error.append(output);
    }
    const log = logCell(f, run);
    if (log) error.append(log);
    row.append(file, el("td", f.allowed_by_pattern ? `${f.kind} (excused)` : f.kind), error, el("td", f.call || ""), el("td", f.attempt ?? ""));
    return row;
  }));
  const last = Math.min(page.offset + page.items.length, page.matching);
  const noMatch = page.matching === 0 && page.total > 0;
  show("failures", page.matching > 0);
  show("no-match", noMatch);
  document.getElementById("no-match").textContent = noMatch
    ? `No failed file matches ${state.text ? `“${state.text}”` : ""}${state.text && state.kind ? " of kind " : ""}${state.kind ? state.kind : ""} (of ${count(page.total)}).`
    : "";
  document.getElementById("page").textContent = page.matching
    ? `${count(page.offset + 1)}–${count(last)} of ${count(page.matching)}${page.matching !== page.total ? ` (of ${count(page.total)})` : ""}`
    : "";
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
    const response = await fetch(new URL(`api/v2/dags/${segment(s.dag_id)}/dagRuns`, uiBase()), {
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
    result.replaceChildren("Triggered ", runLink(s.dag_id, created.dag_run_id), ".");
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
  downloads();
}

function fail(error) { showProblems([String(error.message || error)]); }

async function load() {
  const s = await getJson(`summary${query}`);
  state.summary = s;
  showProblems(s.problems || []);
  document.getElementById("loading").hidden = true;
  if (s.not_ours) {
    document.getElementById("title").textContent = `Run report · ${s.dag_id}`;
    const notOurs = document.getElementById("not-ours");
    notOurs.textContent = s.not_ours;
    notOurs.hidden = false;
    return;
  }
  renderRun(s);
  renderTasks(s);
  renderOutcome(s);
  renderTime(s);
  renderCost(s);
  renderRepairs(s);
  document.getElementById("report").hidden = false;
  const failed = Boolean(s.validation && s.validation.counts.failed);
  show("failures-section", failed);
  if (failed) await loadFailures();
  if (!s.validation && !["success", "failed"].includes(s.dag_run_state)) setTimeout(() => load().catch(fail), 5000);
}

document.addEventListener("DOMContentLoaded", async () => {
  followTheme();
  if (await forwardToTab()) return;
  wire();
  load().catch(fail);
});
