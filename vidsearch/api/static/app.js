// vidsearch web page: search (text, category, clip/image URL, weights), result cards that play each
// video at its moment (media fragment #t=start,end), "more like this", the jobs view, and the
// analytics view (cluster map, trends plot, clusters, outliers and duplicate groups).
// Every view keeps its state in the address (?q=...&top_k=..., ?like=URL, ?view=jobs&job=ID,
// ?view=analytics&k=...): a submit or a click pushes it (history.pushState), and a load, a reload
// or back/forward (popstate) reads it, fills the forms and shows that view.
// Plain browser JavaScript, no build step. Talks to the same server's /v1 API.
"use strict";

const $ = (sel) => document.querySelector(sel);
const KEY_STORE = "vidsearch.apiKey";
const NEAR_MISSES = 3;
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
  const floor = $("#min-score").value.trim();
  if (floor) body.min_score = Number(floor);
  return body;
}

function lifted(body) {
  // the same search with the floor lifted, for the best few below it
  return { ...body, min_score: -1, top_k: NEAR_MISSES };
}

function post(body) {
  return ["/v1/search", { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } }];
}

async function runSearch() {
  const body = searchBody();
  await show(post(body), post(lifted(body)), `“${body.text || body.clip_url || body.image_url || ""}”`);
}

async function moreLike(url) {
  const params = new URLSearchParams({ url, top_k: String(Number($("#top-k").value) || 12) });
  const floor = $("#min-score").value.trim();
  if (floor) params.set("min_score", floor);
  const near = new URLSearchParams({ url, top_k: String(NEAR_MISSES), min_score: "-1" });
  await show([`/v1/videos/similar?${params}`, {}], [`/v1/videos/similar?${near}`, {}],
    `more like ${url.split("/").pop()}`);
}

let searchSeq = 0; // only the latest search may fill the page (back/forward can overtake one)

async function show([path, options], nearRequest, label) {
  const seq = ++searchSeq;
  const status = $("#search-status");
  status.textContent = "Searching…";
  status.className = "status";
  $("#near").hidden = true;
  const started = performance.now();
  try {
    const { body, response } = await api(path, options);
    if (seq !== searchSeq) return;
    const cache = response.headers.get("x-vidsearch-cache");
    const floor = response.headers.get("x-vidsearch-min-score");
    const below = Number(response.headers.get("x-vidsearch-below-min-score") || 0);
    const ms = Math.round(performance.now() - started);
    status.textContent = `${body.length} result(s) for ${label} in ${ms} ms${cache === "hit" ? " (cached)" : ""}`
      + (below ? `; ${below} scored below the relevance floor ${floor} and are not shown` : "");
    $("#results").replaceChildren(...renderCards(body));
    rememberCategories(body);
    if (!body.length && below) await showNearMisses(nearRequest, floor);
  } catch (error) {
    if (seq !== searchSeq) return;
    status.textContent = error.message;
    status.className = "status error";
    $("#results").replaceChildren();
  }
}

async function showNearMisses([path, options], floor) {
  const seq = searchSeq;
  const { body } = await api(path, options);
  if (seq !== searchSeq) return;
  $("#near-title").textContent = `Nothing cleared the relevance floor (score ${floor}). `
    + `The nearest misses, probably unrelated:`;
  $("#near-misses").replaceChildren(...renderCards(body));
  $("#near").hidden = false;
}

function renderCards(hits) {
  return hits.map((hit) => {
    const card = $("#card").content.firstElementChild.cloneNode(true);
    const video = card.querySelector("video");
    video.src = `${hit.url}#t=${hit.start_s},${hit.end_s}`;
    video.title = `${hit.title || hit.url} at ${fmtTime(hit.start_s)}`;
    // a server without range requests ignores #t=: seek there once the metadata is in
    video.addEventListener("loadedmetadata", () => {
      if (video.currentTime < hit.start_s) video.currentTime = hit.start_s;
    }, { once: true });
    const title = card.querySelector(".title");
    title.textContent = hit.title || hit.url.split("/").pop();
    title.href = `${hit.url}#t=${hit.start_s},${hit.end_s}`;
    card.querySelector(".category").textContent = hit.category;
    card.querySelector(".time").textContent = `${fmtTime(hit.start_s)}–${fmtTime(hit.end_s)}`;
    card.querySelector(".score").textContent = `score ${hit.score.toFixed(3)}`;
    card.querySelector(".more").addEventListener("click", () => navigate(new URLSearchParams(
      { like: hit.url, top_k: String(Number($("#top-k").value) || 12) })));
    card.dataset.url = hit.url;
    loadPoster(card, video, hit);
    return card;
  });
}

async function loadPoster(card, video, hit) {
  // after the cards are shown: the frame at the moment, or the placeholder the server answers
  // when the video cannot be fetched (fetched with the key header, shown from a blob URL)
  const params = new URLSearchParams({ url: hit.url, t: String(hit.start_s) });
  try {
    const response = await fetch(`/v1/posters?${params}`, { headers: headers() });
    if (!response.ok) throw new Error(String(response.status));
    const kind = response.headers.get("x-vidsearch-poster") || "placeholder";
    const url = URL.createObjectURL(await response.blob());
    const image = new Image();
    image.src = url;
    await image.decode();
    video.poster = url;
    card.dataset.poster = kind;
  } catch (error) {
    card.dataset.poster = "none";
  }
}

function rememberCategories(hits) {
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
  row.addEventListener("click", () => navigate(new URLSearchParams({ view: "jobs", job: job.id })));
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

async function runAnalytics() {
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

// --- the address: every view's state ------------------------------------------------------------
// field id -> URL parameter, per view; a parameter is written only when it differs from the default
const SEARCH_FIELDS = { q: "q", category: "category", "top-k": "top_k", "clip-url": "clip",
  "image-url": "image", "w-text": "w_text", "w-clip": "w_clip", "w-image": "w_image", option: "option",
  moments: "moments", collapse: "collapse", "min-score": "min_score" };
const ANALYTICS_FIELDS = { "an-k": "k", "an-category": "category", "an-by": "by", "an-threshold": "threshold" };
const DEFAULTS = {};

function fieldValue(el) {
  if (el.type === "checkbox") return el.checked ? "1" : "";
  return el.value.trim();
}

function setField(el, value) {
  if (el.type === "checkbox") el.checked = value === "1";
  else el.value = value;
}

function formParams(view) {
  const params = new URLSearchParams();
  if (view !== "search") params.set("view", view);
  const fields = view === "analytics" ? ANALYTICS_FIELDS : view === "search" ? SEARCH_FIELDS : {};
  for (const [id, name] of Object.entries(fields)) {
    const value = fieldValue(document.getElementById(id));
    if (value !== DEFAULTS[id]) params.set(name, value);
  }
  return params;
}

function fillForms(params) {
  const view = params.get("view") || "search";
  const fields = view === "analytics" ? ANALYTICS_FIELDS : view === "search" ? SEARCH_FIELDS : {};
  for (const [id, name] of Object.entries(fields)) {
    setField(document.getElementById(id), params.has(name) ? params.get(name) : DEFAULTS[id]);
  }
}

function navigate(params) {
  // a new entry in the history unless the address already says this (then just show it again)
  const search = params.toString();
  if (search !== location.search.replace(/^\?/, "")) history.pushState(null, "", search ? `/?${search}` : "/");
  render();
}

let lastAnalytics = null;

async function render() {
  const params = new URLSearchParams(location.search);
  const view = ["jobs", "analytics"].includes(params.get("view")) ? params.get("view") : "search";
  fillForms(params);
  selectView(view);
  if (view === "analytics") {
    const wanted = params.toString();
    if (wanted !== lastAnalytics) {
      lastAnalytics = wanted;
      await runAnalytics();
    }
  } else if (view === "jobs") {
    if (params.get("job")) await showJob({ id: params.get("job") });
    else $("#job-detail").replaceChildren();
  } else if (params.get("like")) {
    await moreLike(params.get("like"));
  } else if (params.get("q") || params.get("clip") || params.get("image")) {
    await runSearch();
  } else {
    $("#results").replaceChildren();
    $("#search-status").textContent = "";
  }
  document.body.dataset.rendered = location.search || "?";
}

// --- views ----------------------------------------------------------------------------------------
function selectView(name) {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.view === name));
  $("#view-search").hidden = name !== "search";
  $("#view-jobs").hidden = name !== "jobs";
  $("#view-analytics").hidden = name !== "analytics";
  clearInterval(jobsTimer);
  if (name === "jobs") {
    refreshJobs();
    jobsTimer = setInterval(refreshJobs, 1000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#api-key").value = sessionStorage.getItem(KEY_STORE) || "";
  $("#api-key").addEventListener("change", () => sessionStorage.setItem(KEY_STORE, $("#api-key").value.trim()));
  for (const id of [...Object.keys(SEARCH_FIELDS), ...Object.keys(ANALYTICS_FIELDS)]) {
    DEFAULTS[id] = fieldValue(document.getElementById(id));
  }
  const submitted = (view) => (event) => {
    event.preventDefault();
    if (view === "analytics") lastAnalytics = null; // "Show" always asks again
    navigate(formParams(view));
  };
  $("#search-form").addEventListener("submit", submitted("search"));
  $("#job-form").addEventListener("submit", submitJob);
  $("#analytics-form").addEventListener("submit", submitted("analytics"));
  document.querySelectorAll(".tab").forEach((t) => t.addEventListener("click", () => navigate(formParams(t.dataset.view))));
  window.addEventListener("popstate", render);
  document.body.dataset.ready = "1";
  render();
});
