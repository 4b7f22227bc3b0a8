// vidsearch web page: search (text, category, clip/image URL, weights), result cards that play each
// video at its moment (media fragment #t=start,end), "more like this", the jobs view, and the
// analytics view (cluster map, trends plot, clusters, outliers and duplicate groups).
// Plain browser JavaScript, no build step. Talks to the same server's /v1 API.
"use strict";

const $ = (sel) => document.querySelector(sel);
const KEY_STORE = "vidsearch.apiKey";
let jobsTimer = null;

function headers(extra = {}) {
  const key = $("#api-key").value.trim();
  return key ? { ...extra, "X-API-Key": key } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : response.statusText;
    const error = new Error(`${response.status} ${body.title || ""}: ${detail}`);
    error.problem = body;
    throw error;
  }
  return { body, response };
}

function fmtTime(s) {
  const m = Math.floor(s / 60);
  const sec = (s - m * 60).toFixed(1).padStart(4, "0");
  return `${m}:${sec}`;
}

function fmtDuration(s) {
  if (s === null || s === undefined) return "—";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

// --- search ---------------------------------------------------------------------------------------
function searchBody() {
  const body = { top_k: Number($("#top-k").value) || 12 };
  const text = $("#q").value.trim();
  if (text) body.text = text;
  const categories = $("#category").value.split(",").map((c) => c.trim()).filter(Boolean);
  if (categories.length) body.category = categories;
  const clip = $("#clip-url").value.trim();
  const image = $("#image-url").value.trim();
  if (clip) body.clip_url = clip;
  if (image) body.image_url = image;
  const weights = {};
  if (text) weights.text = Number($("#w-text").value);
  if (clip) weights.clip = Number($("#w-clip").value);
  if (image) weights.image = Number($("#w-image").value);
  if (Object.keys(weights).length > 1) body.weights = weights;
  if ($("#option").value) body.option = $("#option").value;
  if ($("#moments").checked) body.moments = true;
  if ($("#collapse").checked) body.collapse_duplicates = true;
  return body;
}

async function runSearch(event) {
  if (event) event.preventDefault();
  const body = searchBody();
  await show("/v1/search", { method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json" } }, `“${body.text || body.clip_url || body.image_url || ""}”`);
}

async function moreLike(url) {
  const params = new URLSearchParams({ url, top_k: String(Number($("#top-k").value) || 12) });
  await show(`/v1/videos/similar?${params}`, {}, `more like ${url.split("/").pop()}`);
}

async function show(path, options, label) {
  const status = $("#search-status");
  status.textContent = "Searching…";
  status.className = "status";
  const started = performance.now();
  try {
    const { body, response } = await api(path, options);
    const cache = response.headers.get("x-vidsearch-cache");
    const ms = Math.round(performance.now() - started);
    status.textContent = `${body.length} result(s) for ${label} in ${ms} ms${cache === "hit" ? " (cached)" : ""}`;
    renderCards(body);
  } catch (error) {
    status.textContent = error.message;
    status.className = "status error";
    $("#results").replaceChildren();
  }
}

function renderCards(hits) {
  const cards = hits.map((hit) => {
    const card = $("#card").content.firstElementChild.cloneNode(true);
    const video = card.querySelector("video");
    video.src = `${hit.url}#t=${hit.start_s},${hit.end_s}`;
    video.title = `${hit.title || hit.url} at ${fmtTime(hit.start_s)}`;
    const title = card.querySelector(".title");
    title.textContent = hit.title || hit.url.split("/").pop();
    title.href = `${hit.url}#t=${hit.start_s},${hit.end_s}`;
    card.querySelector(".category").textContent = hit.category;
    card.querySelector(".time").textContent = `${fmtTime(hit.start_s)}–${fmtTime(hit.end_s)}`;
    card.querySelector(".score").textContent = `score ${hit.score.toFixed(3)}`;
    card.querySelector(".more").addEventListener("click", () => moreLike(hit.url));
    card.dataset.url = hit.url;
    return card;
  });
  $("#results").replaceChildren(...cards);
  const known = new Set([...$("#known-categories").options].map((o) => o.value));
  hits.forEach((h) => known.add(h.category));
  $("#known-categories").replaceChildren(...[...known].sort().map((c) => new Option(c, c)));
}

// --- jobs -----------------------------------------------------------------------------------------
function jobRow(job) {
  const row = document.createElement("tr");
  row.dataset.job = job.id;
  row.dataset.status = job.status;
  const pct = Math.round(job.progress * 100);
  const cells = [
    job.id, job.name || "", job.status, null,
    job.rate_per_s === null || job.rate_per_s === undefined ? "—" : `${job.rate_per_s.toFixed(2)}/s`,
    job.status === "running" ? fmtDuration(job.eta_s) : "—",
    String(job.failed), String(job.rejected),
  ];
  cells.forEach((value, i) => {
    const cell = document.createElement("td");
    if (i === 3) {
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = pct;
      cell.append(bar, ` ${pct}% (${job.done + job.failed}/${job.queued})`);
    } else {
      cell.textContent = value;
    }
    cell.className = ["id", "name", "status", "progress", "rate", "eta", "failed", "rejected"][i];
    row.append(cell);
  });
  row.addEventListener("click", () => showJob(job));
  return row;
}

async function refreshJobs() {
  try {
    const { body } = await api("/v1/jobs?limit=20");
    $("#jobs tbody").replaceChildren(...body.map(jobRow));
    $("#jobs-status").className = "status";
    if ($("#jobs-status").dataset.sticky !== "1") $("#jobs-status").textContent = `${body.length} job(s)`;
  } catch (error) {
    $("#jobs-status").textContent = error.message;
    $("#jobs-status").className = "status error";
  }
}

async function showJob(job) {
  const detail = $("#job-detail");
  detail.replaceChildren();
  const heading = document.createElement("h3");
  heading.textContent = `Job ${job.id}: failures and rejected lines`;
  const list = document.createElement("ul");
  list.className = "failures";
  try {
    const [failures, rejects] = await Promise.all([
      api(`/v1/jobs/${job.id}/failures`), api(`/v1/jobs/${job.id}/rejects?limit=200`)]);
    failures.body.forEach((f) => list.append(item(`${f.url}: ${f.reason} (attempts ${f.attempts})`)));
    rejects.body.forEach((r) => list.append(item(`${r.file}:${r.line}: ${r.reason}`)));
    if (!list.children.length) list.append(item("none"));
  } catch (error) {
    list.append(item(error.message));
  }
  detail.append(heading, list);
}

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

async function submitJob(event) {
  event.preventDefault();
  const file = $("#manifest").files[0];
  const status = $("#jobs-status");
  if (!file) {
    status.textContent = "choose a manifest file first";
    return;
  }
  const params = new URLSearchParams({ filename: file.name, name: file.name });
  const category = $("#job-category").value.trim();
  if (category) params.set("category", category);
  const type = /\.(jsonl|ndjson|json)$/i.test(file.name) ? "application/x-ndjson" : "text/csv";
  try {
    const { body } = await api(`/v1/jobs?${params}`, { method: "POST", body: file, headers: { "Content-Type": type } });
    status.textContent = `job ${body.job_id}: ${body.queued} queued, ${body.rejected} rejected, ${body.skipped} already ingested`;
    status.dataset.sticky = "1";
    status.className = "status";
    await refreshJobs();
  } catch (error) {
    status.textContent = error.message;
    status.className = "status error";
  }
}

// --- analytics ------------------------------------------------------------------------------------
function analyticsParams() {
  const k = $("#an-k").value.trim();
  const category = $("#an-category").value.trim();
  const clusters = new URLSearchParams(k ? { k } : { auto: "true" });
  if (category) clusters.set("category", category);
  const trends = new URLSearchParams({ by: $("#an-by").value });
  if (k) trends.set("k", k);
  const threshold = $("#an-threshold").value.trim();
  const duplicates = new URLSearchParams(threshold ? { threshold } : {});
  const outliers = new URLSearchParams({ limit: "10" });
  if (category) outliers.set("category", category);
  return { clusters, trends, duplicates, outliers };
}

async function loadImage(img, path) {
  // fetched with the key header (an <img src> cannot send it), shown from a blob URL
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(`${response.status} ${problem.title || ""}: ${problem.detail || response.statusText}`);
  }
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  const loaded = new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; });
  img.src = URL.createObjectURL(await response.blob());
  await loaded;
  if (!img.naturalWidth) throw new Error(`${path}: the image did not load`);
}

function fillList(list, entries, empty) {
  const items = entries.map((text) => item(text));
  if (!items.length) {
    items.push(item(empty));
    items[0].className = "note";
  }
  list.replaceChildren(...items);
}

async function runAnalytics(event) {
  if (event) event.preventDefault();
  const status = $("#analytics-status");
  status.textContent = "Analysing…";
  status.className = "status";
  const p = analyticsParams();
  const started = performance.now();
  try {
    const [clusters, outliers, duplicates] = await Promise.all([
      api(`/v1/analytics/clusters?${p.clusters}`), api(`/v1/analytics/outliers?${p.outliers}`),
      api(`/v1/analytics/duplicates?${p.duplicates}`)]);
    fillList($("#clusters-list"), clusters.body.clusters.map((c) =>
      `${c.label}: ${c.size} video(s), cohesion ${c.cohesion.toFixed(2)}`), "no clusters");
    fillList($("#outliers-list"), outliers.body.outliers.map((o) =>
      `${o.title || o.url}: filed under ${o.category}, closer to ${o.suggested} (+${o.score.toFixed(3)})`),
    "none: every video is closest to its own category");
    fillList($("#duplicates-list"), duplicates.body.groups.map((g) =>
      `${g.urls.length} videos (similarity ${g.similarity_min.toFixed(3)}–${g.similarity_max.toFixed(3)}): ${g.urls.join(", ")}`),
    `none at similarity ≥ ${duplicates.body.threshold}`);
    await Promise.all([loadImage($("#cluster-map"), `/v1/analytics/clusters/map.svg?${p.clusters}`),
      loadImage($("#trends-plot"), `/v1/analytics/trends/plot.svg?${p.trends}`)]);
    const ms = Math.round(performance.now() - started);
    status.textContent = `${clusters.body.videos.length} videos, k = ${clusters.body.k} (${clusters.body.criterion}) in ${ms} ms`;
    document.body.dataset.analytics = "1";
  } catch (error) {
    status.textContent = error.message;
    status.className = "status error";
  }
}

// --- views ----------------------------------------------------------------------------------------
function selectView(name) {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.view === name));
  $("#view-search").hidden = name !== "search";
  $("#view-jobs").hidden = name !== "jobs";
  $("#view-analytics").hidden = name !== "analytics";
  if (name === "analytics" && document.body.dataset.analytics !== "1") runAnalytics();
  clearInterval(jobsTimer);
  if (name === "jobs") {
    refreshJobs();
    jobsTimer = setInterval(refreshJobs, 1000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#api-key").value = sessionStorage.getItem(KEY_STORE) || "";
  $("#api-key").addEventListener("change", () => sessionStorage.setItem(KEY_STORE, $("#api-key").value.trim()));
  $("#search-form").addEventListener("submit", runSearch);
  $("#job-form").addEventListener("submit", submitJob);
  $("#analytics-form").addEventListener("submit", runAnalytics);
  document.querySelectorAll(".tab").forEach((t) => t.addEventListener("click", () => selectView(t.dataset.view)));
  document.body.dataset.ready = "1";
});
